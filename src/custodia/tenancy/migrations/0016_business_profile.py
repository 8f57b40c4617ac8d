"""The business profile (tenancy/profile.py): opening hours and the client reminder's timing."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0015_one_trip_time_zone"),
    ]

    operations = [
        migrations.AddField(
            model_name="business",
            name="opening_hours",
            field=models.CharField(blank=True, db_default="", default="", max_length=90),
        ),
        migrations.AddField(
            model_name="business",
            name="reminder_hours_before",
            field=models.PositiveSmallIntegerField(db_default=24, default=24),
        ),
        migrations.AddConstraint(
            model_name="business",
            constraint=models.CheckConstraint(
                condition=models.Q(("reminder_hours_before__lte", 168)),
                name="business_reminder_hours_bounded",
            ),
        ),
        migrations.AddConstraint(
            model_name="business",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("opening_hours", ""),
                    (
                        "opening_hours__regex",
                        "^((([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])?,){6}(([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])?$",
                    ),
                    _connector="OR",
                ),
                name="business_opening_hours_shape",
            ),
        ),
    ]
