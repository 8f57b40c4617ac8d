"""Search by any part of a name: `clients_clientnamepart` (clients/models.py `ClientNamePart`).

- `custodia_name_parts(name)`: a name's search form from each of its word starts on, as
  `clients.models.name_parts` computes it (a word starts at a character that is not one of
  `NAME_SEPARATORS` right after one that is).
- Triggers on clients_client keep the table equal to each client's `name_search`, in the
  transaction that writes the client, whatever writes it (an action, erasure, a bulk COPY). The
  trigger function runs as the writer, so the table's own policies apply to the rows it writes.
- Row-level security forced like every client table: owners and managers of the business read
  every row; anyone else the rows of the clients they may read (clients_client's own policy,
  through EXISTS); writes as for clients. A closed business refuses writes (tenancy/0008).
- The rows of the clients already there, written here as the owner role (clients_client's
  policies are not forced on its owner for that one statement).
"""

from __future__ import annotations

import uuid
from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from custodia.core.rls import IN_TENANT, closed_guard, guard_table, same_tenant

APP = settings.APP_DB_ROLE
MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
# clients.models.NAME_SEPARATORS, as it was (tests/clients/test_name_search.py compares the two).
NAME_SEPARATORS = " -'\u2019.,()/&+_\""
SEPARATORS = "'" + NAME_SEPARATORS.replace("'", "''") + "'"
# The client's own policy decides who else reads its parts.
CLIENT_READABLE = """EXISTS (SELECT 1 FROM clients_client c
    WHERE c.tenant_id = clients_clientnamepart.tenant_id
      AND c.id = clients_clientnamepart.client_id)"""

FUNCTIONS_SQL = f"""
CREATE FUNCTION custodia_name_parts(name text) RETURNS SETOF text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT DISTINCT substr(name, i) FROM generate_series(1, char_length(name)) AS i
  WHERE i = 1 OR (strpos({SEPARATORS}, substr(name, i, 1)) = 0
    AND strpos({SEPARATORS}, substr(name, i - 1, 1)) > 0)
$$;
CREATE FUNCTION custodia_client_name_parts() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    DELETE FROM clients_clientnamepart WHERE tenant_id = OLD.tenant_id AND client_id = OLD.id;
  END IF;
  INSERT INTO clients_clientnamepart (id, tenant_id, client_id, part)
    SELECT gen_random_uuid(), NEW.tenant_id, NEW.id, part
    FROM custodia_name_parts(NEW.name_search) AS part;
  RETURN NULL;
END $$;
GRANT EXECUTE ON FUNCTION custodia_name_parts(text) TO {APP};
GRANT EXECUTE ON FUNCTION custodia_client_name_parts() TO {APP};
"""

BACKFILL_SQL: list[Any] = [
    "ALTER TABLE clients_client NO FORCE ROW LEVEL SECURITY",
    "INSERT INTO clients_clientnamepart (id, tenant_id, client_id, part)"
    " SELECT gen_random_uuid(), c.tenant_id, c.id, part"
    " FROM clients_client c, custodia_name_parts(c.name_search) AS part",
    "ALTER TABLE clients_client FORCE ROW LEVEL SECURITY",
]

TRIGGERS_SQL: list[Any] = [
    "CREATE TRIGGER clients_client_name_parts_insert AFTER INSERT ON clients_client"
    " FOR EACH ROW EXECUTE FUNCTION custodia_client_name_parts()",
    "CREATE TRIGGER clients_client_name_parts_update AFTER UPDATE OF name_search ON clients_client"
    " FOR EACH ROW WHEN (OLD.name_search IS DISTINCT FROM NEW.name_search)"
    " EXECUTE FUNCTION custodia_client_name_parts()",
]


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0007_erasure_guards"),
        ("tenancy", "0008_closing_guards"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClientNamePart",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("part", models.CharField(editable=False, max_length=120)),
                (
                    "client",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="name_parts",
                        to="clients.client",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.business",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["tenant", "part"],
                        include=("client",),
                        name="clientnamepart_tenant_part",
                        opclasses=["uuid_ops", "text_pattern_ops"],
                    ),
                    models.Index(fields=["tenant", "client"], name="clientnamepart_tenant_client"),
                ],
            },
        ),
        migrations.RunSQL(
            FUNCTIONS_SQL,
            "DROP FUNCTION IF EXISTS custodia_client_name_parts();"
            " DROP FUNCTION IF EXISTS custodia_name_parts(text);",
        ),
        migrations.RunSQL(BACKFILL_SQL, migrations.RunSQL.noop),
        guard_table(
            "clients_clientnamepart",
            select=f"{IN_TENANT} AND (custodia_is_manager() OR {CLIENT_READABLE})",
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        same_tenant("clients_clientnamepart", "client_id", "clients_client"),
        migrations.RunSQL(
            TRIGGERS_SQL,
            [
                "DROP TRIGGER IF EXISTS clients_client_name_parts_update ON clients_client",
                "DROP TRIGGER IF EXISTS clients_client_name_parts_insert ON clients_client",
            ],
        ),
        closed_guard("clients_clientnamepart"),
    ]
