"""Invitations: the invitee may check who sent theirs; the operator erases spent addresses.

- Accepting an invitation checks that its sender is still an active member allowed to grant
  its role (tenancy/actions.py). The invitee acts with no role, so they see no membership but
  their own: this policy shows them one more row, the sender's membership of the invitation
  their link (its public prefix) names, and only after the app has checked the link's secret.
  (The check cannot live in the membership insert policy itself: a policy on a table may not
  read that same table.)
- The daily `custodia audit maintain` erases the addresses of accepted, revoked and expired
  invitations of every business, on the owner connection: these policies let that role see
  those rows, and change them only into rows without an address.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

OWNER = settings.OWNER_DB_ROLE
SENDER_OF_LOOKUP = """custodia_lookup() IS NOT NULL AND id = (
    SELECT i.invited_by_id FROM tenancy_invitation i WHERE i.prefix = custodia_lookup())"""
SPENT = "accepted_at IS NOT NULL OR revoked_at IS NOT NULL OR expires_at <= now()"


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0003_business_security_policy")]

    operations = [
        migrations.RunSQL(
            [
                "CREATE POLICY tenancy_membership_invitation_sender ON tenancy_membership"
                f" FOR SELECT USING ({SENDER_OF_LOOKUP})",
                f"CREATE POLICY tenancy_invitation_erase_read ON tenancy_invitation FOR SELECT"
                f" TO {OWNER} USING ({SPENT})",
                f"CREATE POLICY tenancy_invitation_erase ON tenancy_invitation FOR UPDATE"
                f" TO {OWNER} USING ({SPENT}) WITH CHECK (email = '')",
            ],
            [
                "DROP POLICY IF EXISTS tenancy_invitation_erase ON tenancy_invitation",
                "DROP POLICY IF EXISTS tenancy_invitation_erase_read ON tenancy_invitation",
                "DROP POLICY IF EXISTS tenancy_membership_invitation_sender ON tenancy_membership",
            ],
        ),
    ]
