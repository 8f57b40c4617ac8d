"""Alerts under forced row-level security: a business's alerts are its owners' (and the detection
task's system actor, an owner's reach inside that one business); platform-wide alerts (no
business) are invisible to the app role and reached only through the functions below, which
check the context key the app holds (as custodia_webhook_enqueue does), so a session with the
app role's password alone can neither read nor forge them.

- `custodia_detection_sign_ins(key, since)`: the platform chain's sign-in events since a time
  (successes, failures, lockouts): id, time, user, action, hashed login name, address, kind.
- `custodia_detection_raise_platform(key, rule, severity, subject, evidence, event_ids, dedup)`:
  a platform alert, unless the same rule raised one for the same subject within `dedup`; the
  new alert's id, or NULL.
- `custodia_detection_platform_alerts(key, max_rows)`: the newest platform alerts.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
import uuid
from typing import Any

from django.conf import settings
from django.db import migrations, models

from custodia.core.rls import IN_TENANT, guard_table

APP = settings.APP_DB_ROLE
OWNER = settings.OWNER_DB_ROLE
OWNER_HERE = f"{IN_TENANT} AND custodia_role() = 'owner'"
DEFINER = "LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"

FUNCTIONS: list[Any] = [
    f"""CREATE FUNCTION custodia_detection_sign_ins(key text, since timestamptz)
  RETURNS TABLE (id bigint, occurred_at timestamptz, actor_user_id uuid, action text,
    target_id text, ip inet, kind text)
  {DEFINER} AS $$
BEGIN
  PERFORM custodia_check_context_key(key);
  RETURN QUERY SELECT e.id, e.occurred_at, e.actor_user_id, e.action::text, e.target_id::text,
      e.ip, coalesce(e.detail->>'kind', '')
    FROM public.audit_auditevent e
    WHERE e.tenant_id IS NULL AND e.occurred_at >= since
      AND e.action IN ('auth.login', 'auth.login_failed', 'auth.lockout')
    ORDER BY e.id;
END $$""",
    f"""CREATE FUNCTION custodia_detection_raise_platform(key text, p_rule text, p_severity text,
    p_subject text, p_evidence jsonb, p_event_ids bigint[], p_dedup interval)
  RETURNS uuid
  {DEFINER} AS $$
DECLARE
  new_id uuid;
BEGIN
  PERFORM custodia_check_context_key(key);
  -- One alert per rule and subject within its window, however many runs see the same events.
  PERFORM pg_advisory_xact_lock(hashtext('detection:' || p_rule || ':' || p_subject));
  IF EXISTS (SELECT 1 FROM public.detection_alert a WHERE a.tenant_id IS NULL
      AND a.rule = p_rule AND a.subject = p_subject AND a.created_at > now() - p_dedup) THEN
    RETURN NULL;
  END IF;
  INSERT INTO public.detection_alert (id, tenant_id, rule, severity, subject, evidence,
      event_ids, created_at)
    VALUES (gen_random_uuid(), NULL, p_rule, p_severity, left(p_subject, 120), p_evidence,
      coalesce(p_event_ids, '{{}}'), now())
    RETURNING detection_alert.id INTO new_id;
  RETURN new_id;
END $$""",
    f"""CREATE FUNCTION custodia_detection_platform_alerts(key text, max_rows integer)
  RETURNS SETOF detection_alert
  {DEFINER} AS $$
BEGIN
  PERFORM custodia_check_context_key(key);
  RETURN QUERY SELECT * FROM public.detection_alert a WHERE a.tenant_id IS NULL
    ORDER BY a.created_at DESC, a.id LIMIT greatest(0, least(max_rows, 1000));
END $$""",
    *(
        f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC"
        for signature in (
            "custodia_detection_sign_ins(text, timestamptz)",
            "custodia_detection_raise_platform(text, text, text, text, jsonb, bigint[], interval)",
            "custodia_detection_platform_alerts(text, integer)",
        )
    ),
    *(
        f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}"
        for signature in (
            "custodia_detection_sign_ins(text, timestamptz)",
            "custodia_detection_raise_platform(text, text, text, text, jsonb, bigint[], interval)",
            "custodia_detection_platform_alerts(text, integer)",
        )
    ),
    # The functions run as the table's owner, which forced RLS binds too: this policy is theirs
    # (and the operators' commands').
    f"CREATE POLICY detection_alert_operators ON detection_alert TO {OWNER}"
    " USING (true) WITH CHECK (true)",
]
DROP_FUNCTIONS: list[Any] = [
    "DROP POLICY IF EXISTS detection_alert_operators ON detection_alert",
    "DROP FUNCTION IF EXISTS custodia_detection_platform_alerts(text, integer)",
    "DROP FUNCTION IF EXISTS custodia_detection_raise_platform(text, text, text, text, jsonb,"
    " bigint[], interval)",
    "DROP FUNCTION IF EXISTS custodia_detection_sign_ins(text, timestamptz)",
]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('tenancy', '0017_one_trip_profile'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("audit", "0004_every_lane"),
    ]

    operations = [
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('rule', models.CharField(max_length=40)),
                ('severity', models.CharField(choices=[('low', 'Low'), ('medium', 'Medium'), ('high', 'High'), ('critical', 'Critical')], max_length=10)),
                ('subject', models.CharField(max_length=120)),
                ('evidence', models.JSONField(default=dict)),
                ('event_ids', django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), default=list, size=None)),
                ('created_at', models.DateTimeField()),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                ('acknowledged_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.business')),
            ],
            options={
                'indexes': [models.Index(fields=['tenant', '-created_at'], name='detection_alert_recent'), models.Index(fields=['tenant', 'rule', 'subject', 'created_at'], name='detection_dedup')],
            },
        ),
        guard_table(
            "detection_alert",
            select=OWNER_HERE,
            insert=OWNER_HERE,
            update=OWNER_HERE,
            # A business's deletion takes its alerts with it (no one else deletes them).
            delete=OWNER_HERE,
        ),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
    ]
