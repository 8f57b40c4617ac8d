"""The record of weekly security digests sent (audit/digest.py): one row per owner, business and
week, under the business's row-level security; only an owner's reach (the worker's system actor)
reads or adds them, and nobody changes them."""

from django.db import migrations, models

from custodia.core.rls import IN_TENANT, guard_table

OWNER_HERE = f"{IN_TENANT} AND custodia_role() = 'owner'"


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_every_lane")]

    operations = [
        migrations.CreateModel(
            name="DigestSent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("tenant_id", models.UUIDField()),
                ("user_id", models.UUIDField()),
                ("week", models.DateField()),
                ("sent_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant_id", "user_id", "week"), name="audit_digest_once_a_week"
                    )
                ],
            },
        ),
        guard_table(
            "audit_digestsent",
            select=OWNER_HERE,
            insert=OWNER_HERE,
            update="false",
            delete="false",
        ),
    ]
