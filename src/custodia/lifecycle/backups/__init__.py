"""Backups (docs/backups.md): encrypted, signed, checked, pruned, drilled.

- `store`: where backups live (a local directory or S3), atomically, one writer at a time;
- `manifest`: signing and checking manifests (also used by exports: `sign_manifest`,
  `verify_manifest`);
- `keys`: the age recipients and identities;
- `logical`: the `pg_dump` engine, verification and restores;
- `retention`: what is due (days and optional daily/weekly/monthly tiers) and the prune;
- `keystore`: the keystore's own backups, with their short retention;
- `drill`: the restore drill, its signed log and the operators' email;
- `vault`: the card vault's database and keystore backups, their restores and drill checks.

Everything a caller needs is importable from here.
"""

from __future__ import annotations

from custodia.lifecycle.backups import drill as drill_module
from custodia.lifecycle.backups.drill import (
    DrillResult,
    DrillStatus,
    drill,
    drill_records,
    latest_drill,
    vault_drill,
)
from custodia.lifecycle.backups.keys import (
    default_identity,
    development_identity,
    load_identity,
    recipients,
    uses_development_key,
    vault_recipients,
)
from custodia.lifecycle.backups.keystore import (
    restore_keystore,
    run_keystore_backup,
    unreadable_everywhere_days,
    verify_keystore_backup,
)
from custodia.lifecycle.backups.logical import (
    ENGINE,
    SCHEMA_SQL,
    TABLES_SQL,
    connect,
    database_name,
    drop_database,
    pg_programs_dir,
    program,
    restore_backup,
    row_counts,
    run_backup,
    verify_backup,
)
from custodia.lifecycle.backups.manifest import (
    BackupError,
    canonical,
    sign_manifest,
    verify_manifest,
)
from custodia.lifecycle.backups.retention import Policy, PruneResult, prune
from custodia.lifecycle.backups.store import (
    DUMP_SUFFIX,
    FORMAT,
    MANIFEST_SUFFIX,
    Backup,
    BackupStore,
    LocalStore,
    S3Store,
    Store,
    database_store,
    keystore_store,
    read_manifest_file,
    vault_keystore_store,
    vault_store,
    write_file_atomically,
)
from custodia.lifecycle.backups.vault import (
    restore_vault_backup,
    restore_vault_keystore,
    run_vault_backup,
    run_vault_keystore_backup,
)

# The names the module had before it became a package (bench/backups.py, the pgbackrest
# engine's manifests, the export's signature): kept so that their code needs no change.
_program = program
_connect = connect
_signed = sign_manifest
_canonical = canonical
_write_atomically = write_file_atomically
_read_manifest = read_manifest_file

__all__ = [
    "DUMP_SUFFIX",
    "ENGINE",
    "SCHEMA_SQL",
    "TABLES_SQL",
    "FORMAT",
    "MANIFEST_SUFFIX",
    "Backup",
    "BackupError",
    "BackupStore",
    "canonical",
    "read_manifest_file",
    "write_file_atomically",
    "DrillResult",
    "DrillStatus",
    "LocalStore",
    "Policy",
    "PruneResult",
    "S3Store",
    "Store",
    "database_name",
    "database_store",
    "connect",
    "default_identity",
    "development_identity",
    "drill",
    "drill_module",
    "drill_records",
    "drop_database",
    "keystore_store",
    "latest_drill",
    "load_identity",
    "pg_programs_dir",
    "program",
    "prune",
    "recipients",
    "restore_backup",
    "restore_keystore",
    "row_counts",
    "run_backup",
    "run_keystore_backup",
    "sign_manifest",
    "unreadable_everywhere_days",
    "uses_development_key",
    "verify_backup",
    "verify_keystore_backup",
    "verify_manifest",
    "restore_vault_backup",
    "restore_vault_keystore",
    "run_vault_backup",
    "run_vault_keystore_backup",
    "vault_drill",
    "vault_keystore_store",
    "vault_recipients",
    "vault_store",
]
