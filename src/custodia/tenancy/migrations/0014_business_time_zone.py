"""Each business has its own time zone (tenancy/zones.py); businesses made before take the
install's CUSTODIA_TIME_ZONE, which was the one zone of every business until now."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations, models

import custodia.tenancy.zones


def install_zone(apps: Any, schema_editor: Any) -> None:
    Business = apps.get_model("tenancy", "Business")
    Business.objects.using(schema_editor.connection.alias).update(time_zone=settings.TIME_ZONE)


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0013_one_trip_cards")]

    operations = [
        migrations.AddField(
            model_name="business",
            name="time_zone",
            field=models.CharField(
                db_default="UTC", default=custodia.tenancy.zones.default_time_zone, max_length=64
            ),
        ),
        migrations.RunPython(install_zone, migrations.RunPython.noop),
    ]
