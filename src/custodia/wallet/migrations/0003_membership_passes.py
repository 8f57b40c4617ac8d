"""A wallet pass shows a client pass or a client membership, exactly one of the two.

Row-level security needs no new policy: a wallet pass's policies read its own `client_id`
(wallet/0002_rls), which is the client of either source, so a membership's wallet pass is seen
and changed by the same people as a punch pass's. Its membership must be of the same business
(a same-tenant key, as for the pass), and the closed-business guard already covers the table.
"""

import django.db.models.deletion
from django.db import migrations, models

from custodia.core.rls import same_tenant


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_rls"),
        ("wallet", "0002_rls"),
    ]

    operations = [
        migrations.AddField(
            model_name="walletpass",
            name="membership",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="wallet_pass",
                to="payments.clientmembership",
            ),
        ),
        migrations.AlterField(
            model_name="walletpass",
            name="client_pass",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="wallet_pass",
                to="payments.clientpass",
            ),
        ),
        migrations.AddConstraint(
            model_name="walletpass",
            constraint=models.CheckConstraint(
                condition=models.Q(client_pass__isnull=False, membership__isnull=True)
                | models.Q(client_pass__isnull=True, membership__isnull=False),
                name="walletpass_one_source",
            ),
        ),
        same_tenant("wallet_walletpass", "membership_id", "payments_clientmembership"),
    ]
