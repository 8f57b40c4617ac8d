"""Sessions and their list entries are kept under a digest of the key (accounts/sessionstore.py).

Rows written before are rekeyed in place, so nobody is logged out: a key of fewer than 40
characters is a plain one (Django's are 32), a digest has 40.
"""

from __future__ import annotations

from django.db import migrations

REKEY = (
    "UPDATE {table} SET session_key ="
    " left(encode(sha256(convert_to(session_key, 'UTF8')), 'hex'), 40)"
    " WHERE length(session_key) < 40"
)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_business_deletion"),
        ("sessions", "0001_initial"),
        ("usersessions", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            [REKEY.format(table="django_session"), REKEY.format(table="usersessions_usersession")],
            migrations.RunSQL.noop,
        ),
    ]
