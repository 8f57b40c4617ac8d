"""A pet's photo and its thumbnail (docs/profiles.md): sealed, NULL while there is none (the
sealed CHECK passes NULL, as for every nullable sealed column), and the plain time it was set.
The pet's row-level security (0009_profiles) covers the new columns."""

from __future__ import annotations

from django.db import migrations, models

import custodia.crypto.fields
from custodia.crypto.rows import SealedTable, sealed_constraints

PET_PHOTO = SealedTable("clients_pet", "id", ("photo", "photo_thumbnail"))


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0009_profiles"),
    ]

    operations = [
        migrations.AddField(
            model_name="pet",
            name="photo",
            field=custodia.crypto.fields.EncryptedBinaryField(blank=True, default=None, null=True),
        ),
        migrations.AddField(
            model_name="pet",
            name="photo_thumbnail",
            field=custodia.crypto.fields.EncryptedBinaryField(blank=True, default=None, null=True),
        ),
        migrations.AddField(
            model_name="pet",
            name="photo_updated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        sealed_constraints(PET_PHOTO),
    ]
