"""A member's calendar feed (accounts/models.py: CalendarFeed), under row-level security.

- In a business's context a member sees and changes only the feeds of their own membership
  (managers included: a feed is a credential, like an API token). Owners (and a periodic task's
  system actor, which has an owner's reach) also see and delete every feed of their business,
  so that deleting or purging the business takes its members' feeds with it; they never
  change one.
- A feed request carries no session: its public prefix is the lookup context
  (`custodia_lookup()` = 'calendar-feed:<prefix>'), under which the one feed with that prefix is
  read, never changed; the app then checks the secret's digest in constant time and acts as the
  feed's member (tenancy/actors.py: actor_for_calendar_feed). A connection that sets the
  settings by hand sees nothing (tenancy/0005).
- A closed business gets no new feed (revoking one stays possible), as for API tokens.
"""

from __future__ import annotations

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from custodia.core.rls import IN_TENANT, closed_guard, guard_table, same_tenant

OWN_FEED = f"{IN_TENANT} AND membership_id = custodia_membership_id()"
BY_PREFIX = "custodia_lookup() = 'calendar-feed:' || prefix"
OWNERS = f"{IN_TENANT} AND custodia_role() = 'owner'"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_api_rate_limit"),
        ("tenancy", "0008_closing_guards"),
    ]

    operations = [
        migrations.CreateModel(
            name="CalendarFeed",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("prefix", models.CharField(max_length=16, unique=True)),
                ("digest", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "membership",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.membership",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.business",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="calendar_feeds",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["tenant", "membership"], name="calendarfeed_tenant_member")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("revoked_at__isnull", True)),
                        fields=("membership",),
                        name="calendarfeed_one_live_per_membership",
                    )
                ],
            },
        ),
        guard_table(
            "accounts_calendarfeed",
            select=f"({OWN_FEED}) OR ({OWNERS}) OR {BY_PREFIX}",
            insert=f"{OWN_FEED} AND user_id = custodia_user_id()",
            # Found by its prefix, a feed is only read: revoked only by its own member.
            update=OWN_FEED,
            delete=f"({OWN_FEED}) OR ({OWNERS})",
        ),
        same_tenant("accounts_calendarfeed", "membership_id", "tenancy_membership"),
        closed_guard("accounts_calendarfeed", "INSERT"),
    ]
