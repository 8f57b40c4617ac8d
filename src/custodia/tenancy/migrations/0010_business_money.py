"""A business's currency and its rule for credits of cancelled visits (payments/)."""

from django.db import migrations, models

import custodia.tenancy.models


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0009_closing_work_only_gone"),
    ]

    operations = [
        migrations.AddField(
            model_name="business",
            name="credit_back_on_cancel",
            field=models.BooleanField(db_default=True, default=True),
        ),
        migrations.AddField(
            model_name="business",
            name="currency",
            field=models.CharField(
                db_default="USD", default=custodia.tenancy.models.default_currency, max_length=3
            ),
        ),
        migrations.AddConstraint(
            model_name="business",
            constraint=models.CheckConstraint(
                condition=models.Q(("currency__regex", "^[A-Z]{3}$")), name="business_currency_code"
            ),
        ),
    ]
