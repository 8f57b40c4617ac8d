"""The audit trail's integrity in the database: chain heads, the chaining trigger, append-only.

- `audit_chain_head` holds each lane's last sequence number and hash; only the trigger (running
  as the table owner) touches it.
- `custodia_audit_chain` (BEFORE INSERT) takes the lane's head under a row lock and sets the
  event's id, time, sequence number and hash = sha256(previous hash || canonical body), the
  body being the binary encoding of a record of every other column. It must stay identical to
  `audit.chain.BODY_SQL` (tests/audit/test_chain.py).
- `custodia_audit_append_only` refuses UPDATE, and DELETE except the retention purge (not the
  app role, and only rows older than `custodia.audit_purge_before`); TRUNCATE is refused.
- The app role may INSERT and SELECT events, SELECT checkpoints, and nothing else.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations

from custodia.core.rls import guard_table

APP = settings.APP_DB_ROLE
OWNER = settings.OWNER_DB_ROLE
LANES = 8
# The shortest retention CUSTODIA_AUDIT_RETENTION_DAYS allows (settings.py).
MIN_RETENTION_DAYS = 30
ZERO_HASH = "'\\x" + "00" * 32 + "'::bytea"
PLATFORM = "'00000000-0000-0000-0000-000000000000'::uuid"
BODY = """record_send(ROW(NEW.id, NEW.tenant_id, NEW.lane, NEW.seq, NEW.occurred_at,
    NEW.actor_user_id, NEW.actor_role, NEW.action, NEW.outcome,
    NEW.target_type, NEW.target_id, NEW.client_id, NEW.subject_ids,
    NEW.ip, NEW.user_agent, NEW.request_id, NEW.purpose, NEW.detail))"""

FORWARD: list[Any] = [
    "CREATE SEQUENCE audit_event_id_seq AS bigint",
    """CREATE TABLE audit_chain_head (
        chain uuid NOT NULL, lane smallint NOT NULL, seq bigint NOT NULL, hash bytea NOT NULL,
        PRIMARY KEY (chain, lane))""",
    f"""CREATE FUNCTION custodia_audit_chain() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    chain_key uuid := coalesce(NEW.tenant_id, {PLATFORM});
    first_lane smallint := pg_backend_pid() % {LANES};
    lane_no smallint;
    head_seq bigint;
    head_hash bytea;
BEGIN
    -- The first lane no other transaction holds, starting from this backend's own (a lane this
    -- transaction already holds is never skipped); if all are busy, wait for our own.
    FOR step IN 0..{LANES - 1} LOOP
        lane_no := (first_lane + step) % {LANES};
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM public.audit_chain_head h
            WHERE h.chain = chain_key AND h.lane = lane_no FOR UPDATE SKIP LOCKED;
        EXIT WHEN FOUND;
    END LOOP;
    IF head_seq IS NULL THEN
        lane_no := first_lane;
        INSERT INTO public.audit_chain_head (chain, lane, seq, hash)
            VALUES (chain_key, lane_no, 0, {ZERO_HASH}) ON CONFLICT DO NOTHING;
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM public.audit_chain_head h
            WHERE h.chain = chain_key AND h.lane = lane_no FOR UPDATE;
    END IF;
    NEW.lane := lane_no;
    NEW.id := nextval('public.audit_event_id_seq');
    NEW.seq := head_seq + 1;
    NEW.occurred_at := clock_timestamp();
    NEW.hash := sha256(head_hash || {BODY});
    UPDATE public.audit_chain_head SET seq = NEW.seq, hash = NEW.hash
        WHERE chain = chain_key AND lane = lane_no;
    RETURN NEW;
END $$""",
    """CREATE TRIGGER audit_event_chain BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION custodia_audit_chain()""",
    f"""CREATE FUNCTION custodia_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    -- The retention purge: never the app role, never an event younger than the shortest
    -- retention allowed ({MIN_RETENTION_DAYS} days), whatever cutoff the deleting session claims.
    IF TG_LEVEL = 'ROW' AND TG_OP = 'DELETE' AND current_user <> '{APP}' THEN
        IF OLD.occurred_at < least(
            nullif(current_setting('custodia.audit_purge_before', true), '')::timestamptz,
            now() - interval '{MIN_RETENTION_DAYS} days')
        THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$""",
    """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION custodia_audit_append_only()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION custodia_audit_append_only()""",
    """CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON audit_checkpoint FOR EACH STATEMENT EXECUTE FUNCTION custodia_audit_append_only()""",
    f"REVOKE ALL ON audit_chain_head FROM {APP}",
    f"REVOKE ALL ON SEQUENCE audit_event_id_seq FROM {APP}",
    f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_auditevent FROM {APP}",
    f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_checkpoint FROM {APP}",
    f"REVOKE ALL ON SEQUENCE audit_checkpoint_id_seq FROM {APP}",
]

BACKWARD: list[Any] = [
    "DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_checkpoint",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_event_chain ON audit_auditevent",
    "DROP FUNCTION IF EXISTS custodia_audit_append_only()",
    "DROP FUNCTION IF EXISTS custodia_audit_chain()",
    "DROP TABLE IF EXISTS audit_chain_head",
    "DROP SEQUENCE IF EXISTS audit_event_id_seq",
]

# Who reads the trail: a business's owners all of it; a client the events about their own
# record; a person their own sign-in events (the platform chain). The owner role (the `custodia
# audit` commands) reads and purges everything. Inserting is allowed into the acting business's
# chain or the platform chain, never another business's.
OWNER_READS = "tenant_id = custodia_tenant_id() AND custodia_role() = 'owner'"
CLIENT_READS = """tenant_id = custodia_tenant_id() AND custodia_role() = 'client'
    AND (client_id = custodia_client_id() OR subject_ids @> ARRAY[custodia_client_id()])"""
OWN_SIGN_INS = "tenant_id IS NULL AND actor_user_id = custodia_user_id()"


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial"), ("tenancy", "0002_rls")]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
        guard_table(
            "audit_auditevent",
            select=f"({OWNER_READS}) OR ({CLIENT_READS}) OR ({OWN_SIGN_INS})",
            insert="tenant_id IS NULL OR tenant_id = custodia_tenant_id()",
            update="false",
            delete="false",
        ),
        guard_table(
            "audit_checkpoint",
            select=OWNER_READS,
            insert="false",
            update="false",
            delete="false",
        ),
        migrations.RunSQL(
            [
                f"CREATE POLICY audit_auditevent_maintain ON audit_auditevent TO {OWNER}"
                " USING (true) WITH CHECK (true)",
                f"CREATE POLICY audit_checkpoint_maintain ON audit_checkpoint TO {OWNER}"
                " USING (true) WITH CHECK (true)",
                # `custodia audit verify --business SLUG` names chains by business.
                f"CREATE POLICY tenancy_business_audit_names ON tenancy_business FOR SELECT"
                f" TO {OWNER} USING (true)",
            ],
            [
                "DROP POLICY IF EXISTS audit_auditevent_maintain ON audit_auditevent",
                "DROP POLICY IF EXISTS audit_checkpoint_maintain ON audit_checkpoint",
                "DROP POLICY IF EXISTS tenancy_business_audit_names ON tenancy_business",
            ],
        ),
    ]
