"""Autopay of memberships: the saved card a membership's renewals are charged to, the consent
it was set under, and the state of the renewal charge's attempts (actions/autopay.py).

Row-level security: a client may now update their own memberships, and a trigger lets a client
change only the autopay card and its consent (never status, credits, price or the attempts),
record only their own membership as the one who consented, and only with a saved card of that
membership's client that is not removed (checked for every role: the card a membership is
charged to is always its own client's). The new foreign keys stay inside the tenant.
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

from custodia.core.rls import IN_TENANT, same_tenant

RLS = importlib.import_module("custodia.payments.migrations.0002_rls")
CREDITS = importlib.import_module("custodia.payments.migrations.0003_membership_credits")

MEMBERSHIP_UPDATE = f"""{IN_TENANT} AND (custodia_is_manager() OR ({RLS.OWN_CLIENT})
    OR ({CREDITS.STAFF_VISITS_MEMBERSHIP_CLIENT}))"""

AUTOPAY_GUARD_SQL = """
CREATE FUNCTION custodia_membership_autopay_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unchanged payments_clientmembership;
BEGIN
  IF TG_OP = 'UPDATE' AND custodia_role() = 'client' THEN
    unchanged := NEW;
    unchanged.autopay_card_id := OLD.autopay_card_id;
    unchanged.autopay_consent_at := OLD.autopay_consent_at;
    unchanged.autopay_consent_by := OLD.autopay_consent_by;
    IF unchanged IS DISTINCT FROM OLD THEN
      RAISE EXCEPTION 'a client may change only the autopay of a membership'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.autopay_consent_by IS DISTINCT FROM OLD.autopay_consent_by
       AND NEW.autopay_consent_by IS DISTINCT FROM custodia_membership_id()
       AND NEW.autopay_consent_by IS NOT NULL THEN
      RAISE EXCEPTION 'a client consents only as themselves'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  IF NEW.autopay_card_id IS NOT NULL
     AND (TG_OP = 'INSERT' OR NEW.autopay_card_id IS DISTINCT FROM OLD.autopay_card_id)
     AND NOT EXISTS (SELECT 1 FROM payments_paymentmethod p
        WHERE p.tenant_id = NEW.tenant_id AND p.id = NEW.autopay_card_id
          AND p.client_id = NEW.client_id AND p.removed_at IS NULL) THEN
    RAISE EXCEPTION 'autopay needs a saved card of the membership''s client'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER payments_clientmembership_autopay_guard BEFORE INSERT OR UPDATE
  ON payments_clientmembership FOR EACH ROW EXECUTE FUNCTION custodia_membership_autopay_guard();
"""
DROP_AUTOPAY_GUARD_SQL = """
DROP TRIGGER IF EXISTS payments_clientmembership_autopay_guard ON payments_clientmembership;
DROP FUNCTION IF EXISTS custodia_membership_autopay_guard();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0007_erasure_guards"),
        ("payments", "0006_one_pending_card_payment"),
        ("tenancy", "0013_one_trip_cards"),
    ]

    operations = [
        migrations.AddField(
            model_name="clientmembership",
            name="autopay_attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="clientmembership",
            name="autopay_card",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="payments.paymentmethod",
            ),
        ),
        migrations.AddField(
            model_name="clientmembership",
            name="autopay_consent_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="clientmembership",
            name="autopay_consent_by",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="clientmembership",
            name="autopay_invoice",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="payments.invoice",
            ),
        ),
        migrations.AddField(
            model_name="clientmembership",
            name="autopay_next_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="clientmembership",
            index=models.Index(fields=["tenant", "autopay_next_at"], name="membership_autopay_due"),
        ),
        migrations.AddConstraint(
            model_name="clientmembership",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("autopay_card__isnull", True),
                        ("autopay_consent_at__isnull", True),
                        ("autopay_consent_by__isnull", True),
                    ),
                    models.Q(
                        ("autopay_card__isnull", False),
                        ("autopay_consent_at__isnull", False),
                        ("autopay_consent_by__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="membership_autopay_consented",
            ),
        ),
        same_tenant("payments_clientmembership", "autopay_card_id", "payments_paymentmethod"),
        same_tenant("payments_clientmembership", "autopay_invoice_id", "payments_invoice"),
        migrations.RunSQL(
            CREDITS.policy("payments_clientmembership_update", MEMBERSHIP_UPDATE, check=True),
            CREDITS.policy(
                "payments_clientmembership_update", CREDITS.MEMBERSHIP_UPDATE, check=True
            ),
        ),
        migrations.RunSQL(AUTOPAY_GUARD_SQL, DROP_AUTOPAY_GUARD_SQL),
    ]
