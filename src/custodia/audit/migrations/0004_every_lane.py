"""Every lane of a chain exists once the chain has its first event, so a long transaction
holding one lane (a background job: jobs/runner.py) never makes other writers of the business
wait for it.

An insert takes the first lane no other transaction holds (FOR UPDATE SKIP LOCKED), but only
among lanes that exist; before, a chain had only the lanes its writers' backends had made, and
a writer that found them all held waited for its own, even when that was the one a job had
held for minutes. Now the fallback makes all of the chain's lanes (committed with the first
event, as before) and looks again, and the chains that exist get their missing lanes here.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.db import migrations

integrity: Any = importlib.import_module("custodia.audit.migrations.0002_integrity")
LANES, ZERO_HASH, PLATFORM, BODY = (
    integrity.LANES,
    integrity.ZERO_HASH,
    integrity.PLATFORM,
    integrity.BODY,
)

FIND_FREE_LANE = f"""    FOR step IN 0..{LANES - 1} LOOP
        lane_no := (first_lane + step) % {LANES};
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM public.audit_chain_head h
            WHERE h.chain = chain_key AND h.lane = lane_no FOR UPDATE SKIP LOCKED;
        EXIT WHEN FOUND;
    END LOOP;"""


def chain_function(fallback: str) -> str:
    return f"""CREATE OR REPLACE FUNCTION custodia_audit_chain() RETURNS trigger
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
{FIND_FREE_LANE}
{fallback}
    NEW.lane := lane_no;
    NEW.id := nextval('public.audit_event_id_seq');
    NEW.seq := head_seq + 1;
    NEW.occurred_at := clock_timestamp();
    NEW.hash := sha256(head_hash || {BODY});
    UPDATE public.audit_chain_head SET seq = NEW.seq, hash = NEW.hash
        WHERE chain = chain_key AND lane = lane_no;
    RETURN NEW;
END $$"""


EVERY_LANE_FALLBACK = f"""    IF head_seq IS NULL THEN
        -- A chain missing lanes: make them all (a new chain's, with its first event), then
        -- look again; only if every lane is held, wait for our own.
        INSERT INTO public.audit_chain_head (chain, lane, seq, hash)
            SELECT chain_key, g, 0, {ZERO_HASH} FROM generate_series(0, {LANES - 1}) AS g
            ON CONFLICT DO NOTHING;
{FIND_FREE_LANE}
    END IF;
    IF head_seq IS NULL THEN
        lane_no := first_lane;
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM public.audit_chain_head h
            WHERE h.chain = chain_key AND h.lane = lane_no FOR UPDATE;
    END IF;"""

OWN_LANE_FALLBACK = f"""    IF head_seq IS NULL THEN
        lane_no := first_lane;
        INSERT INTO public.audit_chain_head (chain, lane, seq, hash)
            VALUES (chain_key, lane_no, 0, {ZERO_HASH}) ON CONFLICT DO NOTHING;
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM public.audit_chain_head h
            WHERE h.chain = chain_key AND h.lane = lane_no FOR UPDATE;
    END IF;"""

FILL_LANES = f"""INSERT INTO audit_chain_head (chain, lane, seq, hash)
    SELECT c.chain, g, 0, {ZERO_HASH}
    FROM (SELECT DISTINCT chain FROM audit_chain_head) AS c, generate_series(0, {LANES - 1}) AS g
    ON CONFLICT DO NOTHING"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_action_index")]

    operations = [
        migrations.RunSQL(
            [chain_function(EVERY_LANE_FALLBACK), FILL_LANES],
            # Lanes without events are harmless to the old function: it simply finds them free.
            [chain_function(OWN_LANE_FALLBACK)],
        ),
    ]
