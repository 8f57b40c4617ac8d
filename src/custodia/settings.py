"""Custodia settings: one file, read from the environment, secure by default."""

from __future__ import annotations

import base64
import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from babel.numbers import is_currency
from django.core.exceptions import ImproperlyConfigured

from custodia.core.config import (
    env_bool,
    env_email_address,
    env_int,
    env_list,
    env_origins,
    env_redis_url,
    env_str,
    env_time_zone,
    generated_secret,
    parse_database_url,
)
from custodia.core.logs import logging_settings

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent.parent
VAR_DIR = Path(env_str("CUSTODIA_VAR_DIR", str(PROJECT_DIR / "var"))).resolve()

ENVIRONMENT = env_str("CUSTODIA_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("CUSTODIA_ENV must be 'development' or 'production'.")
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("CUSTODIA_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("CUSTODIA_DEBUG cannot be on when CUSTODIA_ENV=production.")


def _is_webhook_secret(secret: str) -> bool:
    """A Standard Webhooks secret: `whsec_` and base64 of 24 to 64 bytes."""
    if not secret.startswith("whsec_"):
        return False
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        return False
    return 24 <= len(raw) <= 64


def _weak_secret_key(key: str) -> bool:
    return len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-")


if PRODUCTION:
    SECRET_KEY = env_str("CUSTODIA_SECRET_KEY")
    # The message never repeats the value: it may be a real secret typed into the wrong place.
    if _weak_secret_key(SECRET_KEY):
        raise ImproperlyConfigured("CUSTODIA_SECRET_KEY must be at least 50 random characters.")
else:
    SECRET_KEY = env_str("CUSTODIA_SECRET_KEY", "") or generated_secret(
        VAR_DIR / "secrets" / "secret_key"
    )
# Previous secret keys, newest first (comma- or line-separated; a _FILE holds one a line): what
# they signed, sealed or digested still verifies while start-up re-seals the two-factor secrets
# and use re-digests the API tokens under SECRET_KEY (docs/operations.md, "Rotating the secret
# key").
SECRET_KEY_FALLBACKS = [
    key.strip()
    for key in env_str("CUSTODIA_SECRET_KEY_FALLBACKS", "").replace("\n", ",").split(",")
    if key.strip()
]
if PRODUCTION and any(_weak_secret_key(key) for key in SECRET_KEY_FALLBACKS):
    raise ImproperlyConfigured(
        "Every key in CUSTODIA_SECRET_KEY_FALLBACKS must be at least 50 random characters."
    )

PUBLIC_URL = env_str("CUSTODIA_PUBLIC_URL", "https://localhost:8443").rstrip("/")
_public = urlsplit(PUBLIC_URL)
if _public.scheme not in {"https", "http"} or not _public.hostname:
    raise ImproperlyConfigured("CUSTODIA_PUBLIC_URL must be an absolute URL like https://host.")
if PRODUCTION and _public.scheme != "https":
    raise ImproperlyConfigured("CUSTODIA_PUBLIC_URL must be an https:// URL in production.")
# In production the public URL names the one host to answer for; locally, the loopback names.
ALLOWED_HOSTS = env_list(
    "CUSTODIA_ALLOWED_HOSTS",
    [_public.hostname] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"],
)
if PRODUCTION and any(host == "*" for host in ALLOWED_HOSTS):
    raise ImproperlyConfigured("CUSTODIA_ALLOWED_HOSTS cannot be '*' in production.")
SECURITY_CONTACT = env_str("CUSTODIA_SECURITY_CONTACT", "mailto:security@localhost")
if not SECURITY_CONTACT.startswith(("mailto:", "https://")):
    raise ImproperlyConfigured("CUSTODIA_SECURITY_CONTACT must be a mailto: or https:// URI.")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",  # allauth's mfa and usersessions templates load it
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "ninja",
    "csp",
    "custodia.cache",
    "custodia.tenancy",
    "custodia.accounts",
    "custodia.clients",
    "custodia.scheduling",
    "custodia.payments",
    # Wallet passes of clients' passes (docs/wallet.md).
    "custodia.wallet",
    "custodia.audit",
    "custodia.crypto",
    # Platform operators and vulnerability reports (docs/operators.md).
    "custodia.platform",
    # Background jobs (docs/operations.md, "Jobs"): procrastinate's tables and the job pages.
    "procrastinate.contrib.django",
    "custodia.jobs",
    # Outgoing webhooks of a business's own integrations (docs/webhooks.md).
    "custodia.webhooks",
    # Alerts over the audit trail and the sign-in events (docs/detection.md).
    "custodia.detection",
    "custodia.lifecycle.export",
    "custodia.transparency",
    "custodia.web",
    # Metrics, readiness and error reports (docs/operations.md, "Metrics, health and errors").
    "custodia.telemetry",
    # Every `custodia` command (setup, serve, demo, token, keys, audit, ...).
    "custodia.ops",
]

# The request pipeline, in order: web/middleware.py describes each step (and Custodia's own are
# all importable from there).
MIDDLEWARE = [
    # First: the request id and client address that logs and the audit trail name.
    "custodia.web.middleware.RequestContextMiddleware",
    # Counts and times every answer, whatever below answers it (docs/operations.md, "Metrics").
    "custodia.web.middleware.MetricsMiddleware",
    "custodia.web.middleware.RefuseUnsafeMethodsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "custodia.web.middleware.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    # /healthz, /readyz and /metrics: with the headers above, before the host check, sessions
    # and the tenant's transaction (no cookie, session or audit row for a probe).
    "custodia.web.middleware.ProbeMiddleware",
    # Before the app reads the Host (inside the headers above, so its 400 page carries them): an
    # allowed name, and no port but the public URL's.
    "custodia.web.middleware.PublicHostMiddleware",
    # Static files answer here, below the header middleware (HSTS, nosniff, CSP, CORP and the
    # rest apply to them as to pages) and above sessions and the tenant (no database touched).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Refuses a login or signup while the hashing pool is full, before it costs any work.
    "custodia.web.middleware.HashingDoorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Replaces allauth's UserSessionsMiddleware (same tracking, at most once a minute) and ends
    # idle and over-age sessions before a tenant context is made (accounts/sessions.py).
    "custodia.web.middleware.SessionLifetimeMiddleware",
    # Before TenantMiddleware: counts API requests in a statement of its own (a row lock held
    # for the whole request would queue a token's parallel requests) and refuses before any work.
    "custodia.web.middleware.ApiRateLimitMiddleware",
    "custodia.web.middleware.TenantMiddleware",
    # After TenantMiddleware: reads request.actor, queries inside the request's transaction.
    "custodia.web.middleware.MFAPolicyMiddleware",
    "custodia.web.middleware.BusyMiddleware",
    "custodia.web.middleware.StepUpMiddleware",
    "custodia.web.middleware.CryptoErrorMiddleware",
    "custodia.web.middleware.BusinessClosedMiddleware",
]

ROOT_URLCONF = "custodia.urls"
WSGI_APPLICATION = "custodia.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "custodia.web.tenancy.context_processors.tenancy",
            ],
        },
    },
]

# --- Encryption at rest (docs/keys.md) -----------------------------------------------------------
# The key-encryption key (KEK) wraps each business's data keys, which live in KEYSTORE_DIR, one
# file per business, outside the database: destroying a file shreds that business everywhere.
KEK_PROVIDER = env_str("CUSTODIA_KEK_PROVIDER", "file")
if KEK_PROVIDER not in {"file", "env", "aws-kms"}:
    raise ImproperlyConfigured("CUSTODIA_KEK_PROVIDER must be file, env or aws-kms.")
KEK_KEYRING_FILE = Path(
    env_str("CUSTODIA_KEK_KEYRING_FILE", str(VAR_DIR / "secrets" / "kek-keyring.json"))
)
KEK_VALUE = env_str("CUSTODIA_KEK", "") if KEK_PROVIDER == "env" else ""
KEK_PREVIOUS = (
    [item.strip() for item in env_str("CUSTODIA_KEK_PREVIOUS", "").split(",") if item.strip()]
    if KEK_PROVIDER == "env"
    else []
)
KMS_KEY_ID = env_str("CUSTODIA_KMS_KEY_ID", "")
KMS_REGION = env_str("CUSTODIA_KMS_REGION", os.environ.get("AWS_REGION", ""))
KMS_ENDPOINT_URL = env_str("CUSTODIA_KMS_ENDPOINT_URL", "")
KEYSTORE_DIR = Path(env_str("CUSTODIA_KEYSTORE_DIR", str(VAR_DIR / "keys")))
# A data key older than this is rotated by `custodia keys rotate-all` (and the daily maintenance).
KEY_ROTATION_DAYS = env_int("CUSTODIA_KEY_ROTATION_DAYS", 365, minimum=1, maximum=3650)
# A retired data key is kept this long so that backups made before its rotation still restore
# (backups are kept a year), then destroyed.
RETIRED_KEY_RETENTION_DAYS = env_int(
    "CUSTODIA_RETIRED_KEY_RETENTION_DAYS", 400, minimum=1, maximum=3650
)
# Sensitive fields are encrypted. Not an environment setting: only the benchmark's plaintext
# baseline (bench/settings_plaintext.py) turns it off, to measure its cost.
FIELD_ENCRYPTION = True

# Uploads (visit photos, docs/visits.md) stay in memory, never in a temporary file: they are
# plaintext until sealed. A photo may be 10 MB; the rest of the form fits in the slack.
FILE_UPLOAD_HANDLERS = ["custodia.web.uploads.MemoryOnlyUploadHandler"]
FILE_UPLOAD_MAX_BYTES = 10 * 1024 * 1024 + 256 * 1024

# --- Audit trail (docs/audit.md) ---------------------------------------------------------------
# Events older than this are purged by `custodia audit purge` (and the daily maintenance that
# `custodia serve` runs), after a signed checkpoint keeps verification going.
# Every read and write of customer data is recorded. Not an environment setting: only the
# benchmark's baseline server (bench/settings_no_audit.py) turns it off, to measure its cost.
AUDIT_ENABLED = True
AUDIT_RETENTION_DAYS = env_int("CUSTODIA_AUDIT_RETENTION_DAYS", 365, minimum=30, maximum=3650)
# The Ed25519 key that signs checkpoints: outside the database (a 0600 file, created on first
# use if missing); keep a copy apart from the database's backups.
AUDIT_SIGNING_KEY_FILE = Path(
    env_str("CUSTODIA_AUDIT_SIGNING_KEY_FILE", str(VAR_DIR / "secrets" / "audit_signing_key.pem"))
)
# Every checkpoint is also appended here (JSON lines), outside the database: a checkpoint
# deleted from the database, the newest included, is then still seen by `audit verify`.
AUDIT_CHECKPOINT_LOG_FILE = Path(
    env_str(
        "CUSTODIA_AUDIT_CHECKPOINT_LOG_FILE",
        str(AUDIT_SIGNING_KEY_FILE.parent / "audit_checkpoints.jsonl"),
    )
)

# The public keys that verify checkpoints, with their validity (rotation keeps old ones); default
# beside the signing key. A host that only verifies needs this file, not the private key.
_AUDIT_KEY_RING = env_str("CUSTODIA_AUDIT_KEY_RING_FILE", "")
AUDIT_KEY_RING_FILE: Path | None = Path(_AUDIT_KEY_RING) if _AUDIT_KEY_RING else None
# Who signs checkpoints: `local` (the key file above) or `remote` (`custodia audit signer serve`
# on another host, at AUDIT_SIGNER_URL, requests authenticated with the shared secret's HMAC).
AUDIT_SIGNER = env_str("CUSTODIA_AUDIT_SIGNER", "local")
if AUDIT_SIGNER not in ("local", "remote"):
    raise ImproperlyConfigured("CUSTODIA_AUDIT_SIGNER is `local` or `remote`.")
AUDIT_SIGNER_URL = env_str("CUSTODIA_AUDIT_SIGNER_URL", "")
if AUDIT_SIGNER == "remote" and not AUDIT_SIGNER_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("CUSTODIA_AUDIT_SIGNER=remote needs CUSTODIA_AUDIT_SIGNER_URL.")
AUDIT_SIGNER_SECRET_FILE = Path(
    env_str(
        "CUSTODIA_AUDIT_SIGNER_SECRET_FILE",
        str(AUDIT_SIGNING_KEY_FILE.parent / "audit_signer_secret"),
    )
)

# --- Background jobs (docs/operations.md, "Jobs") ------------------------------------------------
# procrastinate keeps its queue in PostgreSQL (no broker); `custodia worker` runs the jobs and the
# periodic tasks, and `custodia serve` starts one. Only ids travel through procrastinate's table:
# a job's parameters stay in its own row (jobs.Job), under the business's row-level security.
PROCRASTINATE_DATABASE_ALIAS = "default"
# Modules that define jobs and periodic tasks (jobs/registry.py) besides each installed app's
# `tasks.py`; every process loads them at start (jobs/apps.py), the worker and the pages alike.
PROCRASTINATE_IMPORT_PATHS = ["custodia.jobs.builtin", "custodia.lifecycle.tasks"]
# A running worker says it is alive this often; one silent for JOB_STALLED_SECONDS is taken for
# dead (kill -9, a lost host) and its jobs start again on a live worker.
JOB_HEARTBEAT_SECONDS = env_int("CUSTODIA_JOB_HEARTBEAT_SECONDS", 10, minimum=1, maximum=600)
JOB_STALLED_SECONDS = env_int("CUSTODIA_JOB_STALLED_SECONDS", 60, minimum=2, maximum=3600)
if JOB_STALLED_SECONDS <= JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "CUSTODIA_JOB_STALLED_SECONDS must be longer than CUSTODIA_JOB_HEARTBEAT_SECONDS."
    )
# How often a worker looks for new jobs besides being told by LISTEN/NOTIFY.
JOB_POLL_SECONDS = env_int("CUSTODIA_JOB_POLL_SECONDS", 5, minimum=1, maximum=300)

# --- Metrics, health and errors (docs/operations.md, "Metrics, health and errors") -------------
# /metrics answers only `Authorization: Bearer <this token>`; unset, it answers 404 to everyone.
METRICS_TOKEN = env_str("CUSTODIA_METRICS_TOKEN", "")
# The message never repeats the value.
if PRODUCTION and METRICS_TOKEN and (len(METRICS_TOKEN) < 32 or len(set(METRICS_TOKEN)) < 10):
    raise ImproperlyConfigured("CUSTODIA_METRICS_TOKEN must be at least 32 random characters.")
# Errors go to Sentry (or a compatible server) when a DSN is set, scrubbed of every request and
# customer value (telemetry/sentry.py).
SENTRY_DSN = env_str("CUSTODIA_SENTRY_DSN", "")
if SENTRY_DSN:
    _dsn = urlsplit(SENTRY_DSN)
    if _dsn.scheme not in {"https", "http"} or not _dsn.username or not _dsn.hostname:
        raise ImproperlyConfigured(
            "CUSTODIA_SENTRY_DSN must be a DSN like https://PUBLIC_KEY@host/PROJECT_ID."
        )
    if PRODUCTION and _dsn.scheme != "https":
        raise ImproperlyConfigured("CUSTODIA_SENTRY_DSN must be an https:// DSN in production.")
SENTRY_ENVIRONMENT = env_str("CUSTODIA_SENTRY_ENVIRONMENT", ENVIRONMENT)

# --- Backups (docs/backups.md) -------------------------------------------------------------------
# `custodia backup run` writes here: each backup an age-encrypted pg_dump archive and a manifest
# signed with the audit signing key. Only complete backups have a manifest; only they are listed.
BACKUP_DIR = Path(env_str("CUSTODIA_BACKUP_DIR", str(VAR_DIR / "backups")))
# The age public keys (age1...) backups are encrypted to, comma-separated. The matching private
# keys (identities) stay off this host: a backup can be written here but not read. Development
# without recipients makes a key pair under var/secrets/ (with a warning); production refuses.
BACKUP_RECIPIENTS = env_list("CUSTODIA_BACKUP_RECIPIENTS", [])
BACKUP_DEV_IDENTITY_FILE = VAR_DIR / "secrets" / "backup-identity.txt"
# Backups older than this are deleted by `custodia backup prune`; nothing newer is.
BACKUP_RETENTION_DAYS = env_int("CUSTODIA_BACKUP_RETENTION_DAYS", 365, minimum=1, maximum=3650)
# S3-compatible storage instead of BACKUP_DIR when a bucket is set (boto3, `custodia[aws]`);
# credentials come the usual AWS way (AWS_ACCESS_KEY_ID..., AWS_PROFILE, an instance role).
BACKUP_S3_BUCKET = env_str("CUSTODIA_BACKUP_S3_BUCKET", "")
BACKUP_S3_PREFIX = env_str("CUSTODIA_BACKUP_S3_PREFIX", "custodia/backups/")
BACKUP_S3_ENDPOINT_URL = env_str("CUSTODIA_BACKUP_S3_ENDPOINT_URL", "")
BACKUP_S3_REGION = env_str("CUSTODIA_BACKUP_S3_REGION", os.environ.get("AWS_REGION", ""))
# Optional retention tiers within BACKUP_RETENTION_DAYS (all 0: keep every backup that long):
# every backup for KEEP_DAILY_DAYS, then the newest of each ISO week for KEEP_WEEKLY_WEEKS and
# the newest of each month for KEEP_MONTHLY_MONTHS.
BACKUP_KEEP_DAILY_DAYS = env_int("CUSTODIA_BACKUP_KEEP_DAILY_DAYS", 0, minimum=0, maximum=3650)
BACKUP_KEEP_WEEKLY_WEEKS = env_int("CUSTODIA_BACKUP_KEEP_WEEKLY_WEEKS", 0, minimum=0, maximum=530)
BACKUP_KEEP_MONTHLY_MONTHS = env_int(
    "CUSTODIA_BACKUP_KEEP_MONTHLY_MONTHS", 0, minimum=0, maximum=120
)
# The keystore's own backups (docs/keys.md): a directory of their own, or this prefix of the
# bucket above, kept this many days. A deleted business's keys survive in them that long, so
# this (plus the day between two prunes) is how long until its data is unreadable everywhere.
KEYSTORE_BACKUP_DIR = Path(
    env_str("CUSTODIA_KEYSTORE_BACKUP_DIR", str(VAR_DIR / "keystore-backups"))
)
KEYSTORE_BACKUP_S3_PREFIX = env_str("CUSTODIA_KEYSTORE_BACKUP_S3_PREFIX", "custodia/keystore/")
KEYSTORE_BACKUP_RETENTION_DAYS = env_int(
    "CUSTODIA_KEYSTORE_BACKUP_RETENTION_DAYS", 30, minimum=1, maximum=365
)
# The card vault's own backups (docs/backups.md, "The card vault"): its database (by name: the app
# never imports the vault) and its keystore (by path), made by the same tasks as the app's, into
# stores of their own: a directory (empty: BACKUP_DIR/vault and KEYSTORE_BACKUP_DIR/vault) or
# prefixes of the bucket above. The database backups keep BACKUP_RETENTION_DAYS and its tiers;
# the vault keystore's keep KEYSTORE_BACKUP_RETENTION_DAYS (the crypto-shredding promise).
VAULT_BACKUPS = env_bool("CUSTODIA_VAULT_BACKUPS", True)
VAULT_DB_NAME = env_str("CUSTODIA_VAULT_DB_NAME", "custodia_vault")
VAULT_KEYSTORE_DIR = Path(env_str("CUSTODIA_VAULT_KEYSTORE_DIR", str(VAR_DIR / "vault-keys")))
VAULT_BACKUP_DIR = env_str("CUSTODIA_VAULT_BACKUP_DIR", "")
VAULT_KEYSTORE_BACKUP_DIR = env_str("CUSTODIA_VAULT_KEYSTORE_BACKUP_DIR", "")
VAULT_BACKUP_S3_PREFIX = env_str("CUSTODIA_VAULT_BACKUP_S3_PREFIX", "custodia/vault-backups/")
VAULT_KEYSTORE_BACKUP_S3_PREFIX = env_str(
    "CUSTODIA_VAULT_KEYSTORE_BACKUP_S3_PREFIX", "custodia/vault-keystore/"
)
# The age public keys the vault's backups are encrypted to (card data: better other keys than
# the app's, held by fewer people); empty: BACKUP_RECIPIENTS.
VAULT_BACKUP_RECIPIENTS = env_list("CUSTODIA_VAULT_BACKUP_RECIPIENTS", [])
# The restore drill's signed, append-only results; the newest is shown on /security/.
BACKUP_DRILL_LOG_FILE = Path(
    env_str("CUSTODIA_BACKUP_DRILL_LOG_FILE", str(VAR_DIR / "backup-drills.jsonl"))
)
# The age identity the scheduled drill decrypts with (development: the development key). Empty
# in production: the weekly drill is skipped with a warning, and the host that keeps an identity
# runs `custodia backup drill --identity FILE` (docs/backups.md, "Restore drills").
BACKUP_DRILL_IDENTITY_FILE = env_str("CUSTODIA_BACKUP_DRILL_IDENTITY_FILE", "")
# Who is emailed when a restore drill fails (comma-separated addresses).
OPERATOR_EMAILS = env_list("CUSTODIA_OPERATOR_EMAILS", [])
# Where pg_dump and pg_restore are (empty: the embedded server's, or for an external server the
# machine's own when it has them, whose version matches the server's on Debian).
PG_BIN_DIR = env_str("CUSTODIA_PG_BIN_DIR", "")
# Which engine `custodia backup run|list|maintain` use: "logical" (pg_dump + age, above) or
# "pgbackrest" (physical backups, WAL archiving and point-in-time recovery; lifecycle/pgbackrest.py,
# docs/backups.md "Production: pgbackrest"). `custodia backup pgbackrest ...` works with either.
BACKUP_ENGINE = env_str("CUSTODIA_BACKUP_ENGINE", "logical")
if BACKUP_ENGINE not in {"logical", "pgbackrest"}:
    raise ImproperlyConfigured(
        f"CUSTODIA_BACKUP_ENGINE must be 'logical' or 'pgbackrest', not {BACKUP_ENGINE!r}."
    )
# The pgbackrest stanza (the name of this cluster in the repository), the directory of the
# generated pgbackrest.conf and its lock, spool and log directories, and the repository.
PGBACKREST_STANZA = env_str("CUSTODIA_PGBACKREST_STANZA", "custodia")
PGBACKREST_DIR = Path(env_str("CUSTODIA_PGBACKREST_DIR", str(VAR_DIR / "pgbackrest")))
PGBACKREST_REPO_PATH = Path(env_str("CUSTODIA_PGBACKREST_REPO_PATH", str(PGBACKREST_DIR / "repo")))
# The repository's encryption passphrase, one line in a 0600 file owned by PostgreSQL's OS user:
# never in the repository, the data directory, postgresql.conf or pgbackrest.conf. Development
# makes one here; production refuses to run without it.
PGBACKREST_PASSPHRASE_FILE = Path(
    env_str(
        "CUSTODIA_PGBACKREST_PASSPHRASE_FILE", str(VAR_DIR / "secrets" / "pgbackrest-passphrase")
    )
)
# The live cluster's data directory (empty: the embedded server's; required with DATABASE_URL),
# and the unix socket directory pgbackrest connects through (empty: DATABASE_URL's host when it
# is a directory, else /var/run/postgresql).
PGBACKREST_PG_DATA = env_str("CUSTODIA_PGBACKREST_PG_DATA", "")
PGBACKREST_PG_SOCKET_DIR = env_str("CUSTODIA_PGBACKREST_PG_SOCKET_DIR", "")
# The OS user that runs pgbackrest when Custodia runs as root (empty: the data directory's owner).
PGBACKREST_OS_USER = env_str("CUSTODIA_PGBACKREST_OS_USER", "")
# `custodia backup run` (and the daily round) makes a full backup when the newest is older than
# this, otherwise a differential one.
PGBACKREST_FULL_EVERY_DAYS = env_int(
    "CUSTODIA_PGBACKREST_FULL_EVERY_DAYS", 7, minimum=1, maximum=365
)

# --- Exports (docs/export.md) --------------------------------------------------------------------
# A finished whole-business export waits here, encrypted under the business's data key, until its
# starter downloads it (once) or it expires; then it is deleted.
EXPORT_DIR = Path(env_str("CUSTODIA_EXPORT_DIR", str(VAR_DIR / "exports")))
EXPORT_TTL_HOURS = env_int("CUSTODIA_EXPORT_TTL_HOURS", 24, minimum=1, maximum=168)

# --- Outgoing webhooks (docs/webhooks.md) --------------------------------------------------------
# Destinations must resolve to public addresses, checked when an endpoint is saved and again at
# each delivery against the address connected to. Allowing loopback and private addresses is for
# development and tests only (a receiver on this machine); production refuses it.
WEBHOOKS_ALLOW_PRIVATE = env_bool("CUSTODIA_WEBHOOKS_ALLOW_PRIVATE", False)
if PRODUCTION and WEBHOOKS_ALLOW_PRIVATE:
    raise ImproperlyConfigured(
        "CUSTODIA_WEBHOOKS_ALLOW_PRIVATE cannot be on when CUSTODIA_ENV=production."
    )
# A CA file trusted for deliveries besides the system's (development: the local CA).
WEBHOOKS_CA_FILE = env_str("CUSTODIA_WEBHOOKS_CA_FILE", "")
if WEBHOOKS_CA_FILE and not Path(WEBHOOKS_CA_FILE).is_file():
    raise ImproperlyConfigured("CUSTODIA_WEBHOOKS_CA_FILE must name a readable CA file.")
WEBHOOKS_TIMEOUT_SECONDS = env_int("CUSTODIA_WEBHOOKS_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
# Seconds to wait before each retry; after the last one a delivery has failed.
_RETRY_SCHEDULE = env_list(
    "CUSTODIA_WEBHOOKS_RETRY_SCHEDULE", ["30", "300", "1800", "7200", "28800", "86400"]
)
if not _RETRY_SCHEDULE or not all(
    item.isdigit() and 1 <= int(item) <= 7 * 86400 for item in _RETRY_SCHEDULE
):
    raise ImproperlyConfigured(
        "CUSTODIA_WEBHOOKS_RETRY_SCHEDULE is a comma-separated list of 1 to 604800 seconds."
    )
WEBHOOKS_RETRY_SCHEDULE = [int(item) for item in _RETRY_SCHEDULE]
# After a rotation the old secret signs too (a second signature) for this long, then is erased.
WEBHOOKS_ROTATION_OVERLAP_HOURS = env_int(
    "CUSTODIA_WEBHOOKS_ROTATION_OVERLAP_HOURS", 24, minimum=0, maximum=168
)
# An endpoint whose deliveries failed this many times in a row is disabled, its owners told.
WEBHOOKS_DISABLE_AFTER = env_int("CUSTODIA_WEBHOOKS_DISABLE_AFTER", 5, minimum=1, maximum=1000)
WEBHOOKS_DELIVERY_RETENTION_DAYS = env_int(
    "CUSTODIA_WEBHOOKS_DELIVERY_RETENTION_DAYS", 90, minimum=1, maximum=3650
)

# --- Detection alerts (docs/detection.md) -------------------------------------------------------
# Every alert is also POSTed to this SIEM webhook, signed with the secret (Standard Webhooks:
# `whsec_` + base64 of 24 to 64 bytes; from a file with CUSTODIA_ALERT_WEBHOOK_SECRET_FILE).
# The URL must be https:// and, like the outgoing webhooks, resolve to a public address unless
# CUSTODIA_WEBHOOKS_ALLOW_PRIVATE is on.
ALERT_WEBHOOK_URL = env_str("CUSTODIA_ALERT_WEBHOOK_URL", "")
ALERT_WEBHOOK_SECRET = env_str("CUSTODIA_ALERT_WEBHOOK_SECRET", "")
if ALERT_WEBHOOK_URL and not ALERT_WEBHOOK_URL.startswith("https://"):
    raise ImproperlyConfigured("CUSTODIA_ALERT_WEBHOOK_URL must be an https:// URL.")
if ALERT_WEBHOOK_URL and not _is_webhook_secret(ALERT_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "CUSTODIA_ALERT_WEBHOOK_SECRET (or _FILE) must be set to a whsec_ secret (base64 of 24 to"
        " 64 bytes) when CUSTODIA_ALERT_WEBHOOK_URL is."
    )
# How many times a SIEM delivery is tried (waits doubling from 30 seconds) before it is dropped.
ALERT_WEBHOOK_ATTEMPTS = env_int("CUSTODIA_ALERT_WEBHOOK_ATTEMPTS", 8, minimum=1, maximum=20)

# --- Database -------------------------------------------------------------------------------
# Two connections to the same database: "default" is the running app as custodia_app (no
# BYPASSRLS, owns nothing); "owner" runs migrations as custodia_owner, which owns the tables.
APP_DB_ROLE = "custodia_app"
OWNER_DB_ROLE = "custodia_owner"
EMBEDDED_PGDATA = VAR_DIR / "pgdata"
DATABASE_URL = env_str("DATABASE_URL", "")
EMBEDDED_DATABASE = not DATABASE_URL

if DATABASE_URL:
    ADMIN_DATABASE = parse_database_url(DATABASE_URL)
    # CUSTODIA_DB_NAME picks another database on the same server (tests, test servers).
    ADMIN_DATABASE["NAME"] = env_str("CUSTODIA_DB_NAME", ADMIN_DATABASE["NAME"])
else:
    from custodia.embedded import embedded_socket_dir

    ADMIN_DATABASE = {
        "NAME": env_str("CUSTODIA_DB_NAME", "custodia"),
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(embedded_socket_dir(EMBEDDED_PGDATA)),
        "PORT": "",
    }

# The row-level security context is set only by a database function that checks this key
# (core/dbcontext.py): with the app role's password alone, a session sees no business's rows.
# `custodia setup` stores its SHA-256 digest in the database. Every app host needs the same key.
DB_CONTEXT_KEY = env_str("CUSTODIA_DB_CONTEXT_KEY", "") or generated_secret(
    VAR_DIR / "secrets" / "db_context_key"
)
if len(DB_CONTEXT_KEY) < 32 or len(set(DB_CONTEXT_KEY)) < 10:
    raise ImproperlyConfigured("CUSTODIA_DB_CONTEXT_KEY must be at least 32 random characters.")

APP_DB_PASSWORD = env_str("CUSTODIA_APP_DB_PASSWORD", "")
if PRODUCTION and not APP_DB_PASSWORD:
    raise ImproperlyConfigured("CUSTODIA_APP_DB_PASSWORD must be set in production.")


def _database(user: str, password: str, options: dict[str, object]) -> dict[str, object]:
    return {
        "ENGINE": "django.db.backends.postgresql",
        **ADMIN_DATABASE,
        "USER": user,
        "PASSWORD": password,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": options,
        "TEST": {"NAME": ADMIN_DATABASE["NAME"] + "_test"},
    }


DB_POOL_SIZE = env_int("CUSTODIA_DB_POOL_SIZE", 4, minimum=1, maximum=200)
DATABASES = {
    "default": _database(
        APP_DB_ROLE,
        APP_DB_PASSWORD,
        {
            "pool": {"min_size": 1, "max_size": DB_POOL_SIZE, "timeout": 10},
            # Parameters bound by the server, and psycopg prepares a statement run 5 times on a
            # pooled connection: the row-level policies expand into plans that cost more to
            # make (2 ms for home access) than to run (0.3 ms); prepared, they are made once.
            # (Needs a session-mode pooler, if any: no PgBouncer transaction mode.)
            "server_side_binding": True,
            "prepare_threshold": 5,
        },
    ),
    "owner": _database(
        ADMIN_DATABASE["USER"],
        ADMIN_DATABASE["PASSWORD"],
        {"options": f"-c role={OWNER_DB_ROLE}"},
    ),
    # A job's progress (jobs/progress.py), committed beside the job's own transaction, as the
    # same app role under the same row-level security: the page sees it while the job works.
    "jobs": _database(APP_DB_ROLE, APP_DB_PASSWORD, {}),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Emails are unique case-insensitively by a functional constraint (accounts.User.Meta).
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

# The cache holds rate limits (allauth's) and the markers of used TOTP codes (docs/operations.md,
# "Cache"): Redis when CUSTODIA_REDIS_URL is set, else an UNLOGGED table (cache/backend.py). Both
# store an HMAC of each key and JSON values, never pickles (cache/keys.py).
REDIS_URL = env_redis_url("CUSTODIA_REDIS_URL")
CACHE_KEY_FUNCTION = "custodia.cache.keys.make_key"
CACHES: dict[str, dict[str, object]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "custodia",
            "KEY_FUNCTION": CACHE_KEY_FUNCTION,
            "OPTIONS": {
                "serializer": "custodia.cache.keys.JSONSerializer",
                # A Redis that stops answering fails the request in seconds, not never.
                "socket_connect_timeout": 2,
                "socket_timeout": 2,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "custodia.cache.backend.PostgresCache",
            "LOCATION": "custodia_cache_entry",
            "KEY_PREFIX": "custodia",
            "KEY_FUNCTION": CACHE_KEY_FUNCTION,
            "OPTIONS": {"DATABASE": "default", "POOL_SIZE": DB_POOL_SIZE},
        }
    }

# --- Accounts -------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# allauth's backend alone (it extends Django's ModelBackend): with both, a failed login hashed the
# password twice.
AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
PASSWORD_HASHERS = ["custodia.accounts.hashers.OwaspArgon2PasswordHasher"]
# Concurrent argon2id hashes on this host, all workers together (accounts/hashers.py): under
# `custodia serve` the processes of its hashing pool, with at most PASSWORD_HASH_QUEUE more
# waiting (accounts/hashpool.py); elsewhere `flock` slots with a wait. A request beyond either is
# answered 503, so a login storm cannot starve the rest.
PASSWORD_HASH_CONCURRENCY = env_int(
    "CUSTODIA_HASH_CONCURRENCY", max(1, (os.cpu_count() or 2) // 2), minimum=1, maximum=256
)
PASSWORD_HASH_QUEUE = env_int(
    "CUSTODIA_HASH_QUEUE", PASSWORD_HASH_CONCURRENCY, minimum=0, maximum=4096
)
# Sign-ins (login and signup forms) one web worker works on at once, and how many more may wait
# for a turn, at most SIGN_IN_WAIT_SECONDS (accounts/hashpool.py: SignInGate). `custodia serve`
# sets both for its workers from their threads (ops/management/commands/serve.py: sign_in_limits).
SIGN_IN_SLOTS = env_int(
    "CUSTODIA_SIGN_IN_SLOTS", 2 * PASSWORD_HASH_CONCURRENCY, minimum=1, maximum=1024
)
SIGN_IN_WAITING = env_int("CUSTODIA_SIGN_IN_WAITING", 0, minimum=0, maximum=4096)
SIGN_IN_WAIT_SECONDS = 3.0
PASSWORD_HASH_WAIT_MS = env_int("CUSTODIA_HASH_WAIT_MS", 100, minimum=0, maximum=10_000)
# Set by `custodia serve` for its workers: the hashing pool's Unix socket ("" hashes in-process).
PASSWORD_HASH_SOCKET = env_str("CUSTODIA_HASH_SOCKET", "")
PASSWORD_HASH_SLOT_DIR = VAR_DIR / "run" / "hash-slots"
# Length and known-bad lists only, no composition rules (NIST SP 800-63B; accounts/validators.py).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {
        "NAME": "custodia.accounts.validators.MaximumLengthValidator",
        "OPTIONS": {"max_length": 128},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "custodia.accounts.validators.BreachedPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = False
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SIGNUP_FORM_CLASS = "custodia.web.tenancy.forms.BusinessSignupForm"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Custodia] "

# Database sessions stored under a digest of their key (accounts/sessionstore.py).
SESSION_ENGINE = "custodia.accounts.sessionstore"
# Session data is encrypted as well as signed (accounts/sessionstore.py): allauth keeps secrets
# there for a while (a TOTP secret being enrolled, a password-reset key).
SESSION_SERIALIZER = "custodia.accounts.sessionstore.EncryptedJSONSerializer"
SESSION_COOKIE_NAME = "__Host-sessionid"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 14 * 24 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Sessions (accounts/sessions.py): "remember me" keeps one for at most SESSION_COOKIE_AGE (14 days);
# a browser-length one ends at the latest this many hours after login. Both end after the idle
# minutes of their business (Business.session_idle_minutes, 5-120, default 30).
SESSION_ABSOLUTE_HOURS = env_int("CUSTODIA_SESSION_ABSOLUTE_HOURS", 12, minimum=1, maximum=336)
# allauth.usersessions lists each session with IP and last activity; SessionLifetimeMiddleware
# refreshes them.
USERSESSIONS_TRACK_ACTIVITY = True
USERSESSIONS_ADAPTER = "custodia.accounts.sessions.UserSessionsAdapter"
# Flash messages wait in the (encrypted, server-side) session, not in a cookie of their own: they
# name people ("Successfully signed in as ..."), and a signed cookie is readable by anyone.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_COOKIE_NAME = "__Host-csrftoken"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "custodia.web.views.csrf_failure"
# The public URL's origin always, plus any extra origins (README: extra origins, not instead).
CSRF_TRUSTED_ORIGINS = list(
    dict.fromkeys([PUBLIC_URL, *env_origins("CUSTODIA_CSRF_TRUSTED_ORIGINS", [])])
)

# --- Brute force, enumeration, reset, notifications (accounts/throttle.py, adapter.py) --------
ACCOUNT_ADAPTER = "custodia.accounts.adapter.AccountAdapter"
# Proxies in front of Custodia that append to X-Forwarded-For; 0 ignores the header entirely.
CUSTODIA_TRUSTED_PROXIES = env_int("CUSTODIA_TRUSTED_PROXIES", 0, minimum=0, maximum=10)
# Only a peer (and each hop walked back through) inside these networks is a trusted proxy; an
# X-Forwarded-For header from anyone else is ignored.
try:
    CUSTODIA_TRUSTED_PROXY_NETWORKS = tuple(
        ipaddress.ip_network(network)
        for network in env_list("CUSTODIA_TRUSTED_PROXY_NETWORKS", ["127.0.0.0/8", "::1/128"])
    )
except ValueError:
    raise ImproperlyConfigured(
        "CUSTODIA_TRUSTED_PROXY_NETWORKS must be comma-separated networks such as 10.0.0.0/8."
    ) from None
# allauth's limits, on the client address from client_ip(). The per-account part of failed
# sign-ins is Custodia's lockout below (back-off + unlock link) instead of allauth's fixed window,
# which an attacker could keep shut forever. The bench turns all of these off with
# ACCOUNT_RATE_LIMITS = False (bench/settings.py); the lockout stays on there.
ACCOUNT_RATE_LIMITS: dict[str, str] | bool = {
    "login": "30/m/ip",
    # Failed password sign-ins per address; over it, a right password meets an emailed code
    # instead of a refusal (accounts/challenge.py). allauth's own "login_failed" is empty: its
    # second-factor checks and password resets also consumed and wiped that per-address counter.
    "login_failed_address": "10/m/ip,60/h/ip",
    "login_failed": "",
    "signup": "10/m/ip,50/h/ip",
    "reset_password": "10/m/ip,3/m/key,10/h/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    # A stolen session guessing the password at re-authentication (the per-name pause does not
    # apply there, so that strangers cannot block the owner's step-up).
    "reauthenticate": "10/m/user,30/h/user",
    "confirm_email": "1/3m/key",
}
LOGIN_LOCKOUT_THRESHOLD = 5  # consecutive failures that pause sign-in for a login name
LOGIN_LOCKOUT_BASE_SECONDS = 60  # first pause; doubles with each pause of a series
LOGIN_LOCKOUT_MAX_SECONDS = 3600  # never longer than this
LOGIN_LOCKOUT_FORGET_SECONDS = 24 * 3600  # a day without failures ends a series
LOGIN_UNLOCK_TOKEN_SECONDS = 3600  # the emailed unlock link works once, for an hour
# The lockout notice goes out for the first pause of a series, and for a later pause only when
# the last one is this old: a few mails a day at most, each with a fresh unlock link.
LOGIN_LOCKOUT_NOTICE_SECONDS = 6 * 3600
# Wrong second-factor codes (and emailed sign-in codes) pause that user's codes with the same
# back-off (accounts/throttle.py, forms.py): allauth's own limit on codes rides on "login_failed",
# which is empty above.
MFA_FORMS = {
    "authenticate": "custodia.accounts.forms.ThrottledAuthenticateForm",
    "reauthenticate": "custodia.accounts.forms.ThrottledReauthenticateForm",
}
# A password sign-in from an address over "login_failed_address" is asked for a code emailed to
# the account (allauth's login-by-code stage, required for that login only; no sign-in by code
# alone is offered): accounts/challenge.py, forms.py.
ACCOUNT_FORMS = {
    "login": "custodia.accounts.forms.ChallengingLoginForm",
    "confirm_login_code": "custodia.accounts.forms.ThrottledConfirmLoginCodeForm",
}
ACCOUNT_LOGIN_BY_CODE_ENABLED = False
ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS = 3  # tries per emailed code; then the password again
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = 300  # seconds a code works
# Reset links: one hour, single use (the token hashes the password, which the reset changes).
PASSWORD_RESET_TIMEOUT = 3600
ACCOUNT_PASSWORD_INPUT_RENDER_VALUE = False
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = True  # an unknown address gets a mail too, so both look alike
# One address per login; a change is confirmed at the new address and reported to the old one.
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_NOTIFICATIONS = True
# A sign-in is "from a new device" when its browser family and network were not among these.
NEW_DEVICE_LOOKBACK = 20
# --- end brute force ----------------------------------------------------------------------

# --- MFA (allauth.mfa; Custodia's adapter and policy in accounts/mfa.py) ----------------------
# TOTP secrets are stored AES-256-GCM encrypted by the adapter; recovery codes as one hash each
# (accounts/recoverycodes.py, 80-bit codes; MFA_RECOVERY_CODE_DIGITS only re-derives the 8-digit
# codes of sets made from allauth's seed before, to turn them into hashes).
MFA_ADAPTER = "custodia.accounts.mfa.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_PASSKEY_SIGNUP_ENABLED = False
MFA_TOTP_ISSUER = "Custodia"
MFA_TOTP_PERIOD = 30
MFA_TOTP_DIGITS = 6
# No earlier or later time step: a code works only in its own 30 s, and only once.
MFA_TOTP_TOLERANCE = 0
MFA_RECOVERY_CODE_COUNT = 10
MFA_RECOVERY_CODE_DIGITS = 8
# Like API tokens, recovery codes are shown once; afterwards only new ones can be generated.
MFA_RECOVERY_CODES_SHOW_ONCE = True
MFA_WEBAUTHN_USER_VERIFICATION = "preferred"
# The browser tests run over real TLS on https://localhost, so WebAuthn's origin check stays on.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = False
# Adding or removing a factor asks for the password (or a factor) again; no "trust this browser".
MFA_REAUTHENTICATION_REQUIRED = True
# Email and password changes re-authenticate too (a changed email is a takeover path);
# web.middleware.StepUpMiddleware adds the second factor to these and to MFA changes.
ACCOUNT_REAUTHENTICATION_REQUIRED = True
MFA_TRUST_ENABLED = False
# --- end MFA ----------------------------------------------------------------------------------

# --- Transport and headers ------------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("CUSTODIA_SSL_REDIRECT", True)
if PRODUCTION and not SECURE_SSL_REDIRECT:
    raise ImproperlyConfigured("CUSTODIA_SSL_REDIRECT cannot be off when CUSTODIA_ENV=production.")
SECURE_PROXY_SSL_HEADER = None
if env_bool("CUSTODIA_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# Preloading only matters for a public name; production asks for it unless told otherwise.
SECURE_HSTS_PRELOAD = env_bool("CUSTODIA_HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- The card vault (docs/payments.md) ----------------------------------------------------------
# A process of its own (`custodia vault serve`, started by `custodia serve`); the app reaches it
# only through custodia.vault.client, with requests signed by VAULT_SIGNING_SECRET (the vault
# holds the same secret), and trusts its certificate through VAULT_CA_FILE (empty: the system's
# CAs).
VAULT_PORT = env_int("CUSTODIA_VAULT_PORT", 8444, minimum=1, maximum=65535)
VAULT_URL = env_str("CUSTODIA_VAULT_URL", f"https://localhost:{VAULT_PORT}").rstrip("/")
if not VAULT_URL.startswith("https://"):
    raise ImproperlyConfigured("CUSTODIA_VAULT_URL must be an https:// URL.")
if PRODUCTION:
    VAULT_SIGNING_SECRET = env_str("CUSTODIA_VAULT_SIGNING_SECRET")
else:
    VAULT_SIGNING_SECRET = env_str("CUSTODIA_VAULT_SIGNING_SECRET", "") or generated_secret(
        VAR_DIR / "secrets" / "vault_signing_secret"
    )
if len(VAULT_SIGNING_SECRET) < 32 or len(set(VAULT_SIGNING_SECRET)) < 10:
    raise ImproperlyConfigured(
        "CUSTODIA_VAULT_SIGNING_SECRET must be at least 32 random characters."
    )
VAULT_CA_FILE = env_str(
    "CUSTODIA_VAULT_CA_FILE", "" if PRODUCTION else str(VAR_DIR / "tls" / "ca.pem")
)

# --- Mail -----------------------------------------------------------------------------------
EMAIL_HOST = env_str("CUSTODIA_SMTP_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("CUSTODIA_SMTP_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("CUSTODIA_SMTP_USER", "")
    EMAIL_HOST_PASSWORD = env_str("CUSTODIA_SMTP_PASSWORD", "")
    # Port 465 speaks TLS from the first byte; other ports upgrade with STARTTLS.
    EMAIL_USE_SSL = env_bool("CUSTODIA_SMTP_SSL", EMAIL_PORT == 465)
    EMAIL_USE_TLS = env_bool("CUSTODIA_SMTP_STARTTLS", not EMAIL_USE_SSL)
    if EMAIL_USE_SSL and EMAIL_USE_TLS:
        raise ImproperlyConfigured("Set only one of CUSTODIA_SMTP_SSL and CUSTODIA_SMTP_STARTTLS.")
    if PRODUCTION and not (EMAIL_USE_SSL or EMAIL_USE_TLS):
        raise ImproperlyConfigured(
            "Mail must travel over TLS in production: CUSTODIA_SMTP_SSL or CUSTODIA_SMTP_STARTTLS."
        )
    EMAIL_TIMEOUT = 10
elif PRODUCTION:
    raise ImproperlyConfigured("CUSTODIA_SMTP_HOST must be set in production.")
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env_email_address("CUSTODIA_MAIL_FROM", "Custodia <no-reply@localhost>")

# --- Product --------------------------------------------------------------------------------
INVITATION_TTL_HOURS = env_int("CUSTODIA_INVITATION_TTL_HOURS", 72, minimum=1, maximum=720)
# A closed business stays read-only (and can be reopened) this long, then is purged
# (tenancy/closing.py).
CLOSED_BUSINESS_GRACE_DAYS = env_int(
    "CUSTODIA_CLOSED_BUSINESS_GRACE_DAYS", 30, minimum=1, maximum=365
)
# A new business's currency (ISO 4217, e.g. USD, EUR); each business can change its own
# (payments/, docs/payments-domain.md). Amounts are stored in its minor units.
DEFAULT_CURRENCY = env_str("CUSTODIA_DEFAULT_CURRENCY", "USD").strip().upper()
if not is_currency(DEFAULT_CURRENCY):
    raise ImproperlyConfigured(
        "CUSTODIA_DEFAULT_CURRENCY must be an ISO 4217 currency code such as USD or EUR."
    )
API_TOKEN_DEFAULT_DAYS = env_int("CUSTODIA_API_TOKEN_DAYS", 90, minimum=1, maximum=365)
# API requests a minute per token or signed-in session (api/ratelimit.py): up to this many at
# once after a quiet minute, then one every 60/N seconds; past that a 429 with Retry-After.
API_RATE_LIMIT_PER_MINUTE = env_int("CUSTODIA_API_RATE_LIMIT", 120, minimum=1, maximum=1_000_000)
TLS_DIR = VAR_DIR / "tls"
# The oldest TLS version `custodia serve` accepts (granian's --ssl-protocol-min); /security/
# shows it (docs/transparency.md).
TLS_MIN_VERSION = "tls1.2"
# Who runs this installation: the data controller named on /privacy/ and /security/ (empty: the
# pages say the operator has not named themselves). Contact: a mailto: or https:// URI.
OPERATOR_NAME = env_str("CUSTODIA_OPERATOR_NAME", "")
OPERATOR_CONTACT = env_str("CUSTODIA_OPERATOR_CONTACT", "") or SECURITY_CONTACT
if not OPERATOR_CONTACT.startswith(("mailto:", "https://")):
    raise ImproperlyConfigured("CUSTODIA_OPERATOR_CONTACT must be a mailto: or https:// URI.")
# The card vault's gateway and Stripe's API address: the vault's own settings
# (vault/settings.py), read here only to name the payment subprocessor on
# /security/subprocessors/ (`custodia serve` starts the vault with the same environment).
VAULT_GATEWAY = env_str("CUSTODIA_VAULT_GATEWAY", "sandbox")
STRIPE_API_BASE = env_str("CUSTODIA_STRIPE_API_BASE", "")

# --- Wallet passes (docs/wallet.md) -----------------------------------------------------------
# Apple Wallet: the pass type's certificate and key (from Apple's developer account), Apple's
# WWDR intermediate, the pass type identifier and the team identifier. In development they
# default to a local pass-signing CA and certificate that `custodia setup` makes under
# var/secrets/wallet/; in production all five are set, or none (Apple Wallet passes are then
# off). Google Wallet: the issuer id and a service account's JSON key file, both or neither.
WALLET_DEV_DIR = VAR_DIR / "secrets" / "wallet"
_WALLET_APPLE = {
    "CUSTODIA_WALLET_PASS_CERT_FILE": str(WALLET_DEV_DIR / "pass.pem"),
    "CUSTODIA_WALLET_PASS_KEY_FILE": str(WALLET_DEV_DIR / "pass-key.pem"),
    "CUSTODIA_WALLET_WWDR_CERT_FILE": str(WALLET_DEV_DIR / "ca.pem"),
    "CUSTODIA_WALLET_PASS_TYPE_ID": "pass.localhost.custodia",
    "CUSTODIA_WALLET_TEAM_ID": "DEVTEAM000",
}
_WALLET_GOOGLE = {
    "CUSTODIA_WALLET_GOOGLE_ISSUER_ID": "3388000000000000000",
    "CUSTODIA_WALLET_GOOGLE_SERVICE_ACCOUNT_FILE": str(
        WALLET_DEV_DIR / "google-service-account.json"
    ),
}


def _wallet_group(names: dict[str, str], what: str) -> dict[str, str]:
    """A group of wallet settings: every one set, or (production) none, or (development) the
    local defaults; half a configuration refuses to start."""
    given = {name: env_str(name, "").strip() for name in names}
    if any(given.values()) and not all(given.values()):
        missing = ", ".join(name for name, value in given.items() if not value)
        raise ImproperlyConfigured(f"{what} is half configured: set {missing} too, or none.")
    if all(given.values()):
        return given
    return {} if PRODUCTION else dict(names)


WALLET_APPLE = _wallet_group(_WALLET_APPLE, "Apple Wallet")
WALLET_GOOGLE = _wallet_group(_WALLET_GOOGLE, "Google Wallet")
if WALLET_APPLE and not WALLET_APPLE["CUSTODIA_WALLET_PASS_TYPE_ID"].startswith("pass."):
    raise ImproperlyConfigured("CUSTODIA_WALLET_PASS_TYPE_ID must start with 'pass.'.")
# Who carries a pass update to the devices (wallet/push.py, docs/wallet.md "Pushes"): in
# production the APNs adapter (HTTP/2 to Apple with the pass certificate as the TLS client
# certificate); in development and tests the recording adapter, which keeps them in memory. A
# production install with Apple Wallet on refuses the recording adapter: its devices would
# silently never hear of a change.
_RECORDING_PUSH = "custodia.wallet.push.RecordingPush"
WALLET_PUSH_ADAPTER = env_str(
    "CUSTODIA_WALLET_PUSH_ADAPTER",
    "custodia.wallet.push.ApnsPush" if PRODUCTION else _RECORDING_PUSH,
)
if PRODUCTION and WALLET_APPLE and WALLET_PUSH_ADAPTER == _RECORDING_PUSH:
    raise ImproperlyConfigured(
        "CUSTODIA_WALLET_PUSH_ADAPTER cannot be the recording adapter when CUSTODIA_ENV=production"
        " and Apple Wallet passes are on: use custodia.wallet.push.ApnsPush."
    )
# APNs: Apple's production server (wallet passes' push tokens are production tokens; the
# sandbox, https://api.sandbox.push.apple.com, answers BadDeviceToken to them), a CA file
# trusted for it besides the system's (tests: a local server), and seconds per request.
WALLET_APNS_URL = env_str("CUSTODIA_WALLET_APNS_URL", "https://api.push.apple.com").rstrip("/")
_apns = urlsplit(WALLET_APNS_URL)
if _apns.scheme != "https" or not _apns.hostname or _apns.path or _apns.query:
    raise ImproperlyConfigured(
        "CUSTODIA_WALLET_APNS_URL must be an https:// URL with no path, like"
        " https://api.push.apple.com."
    )
WALLET_APNS_CA_FILE = env_str("CUSTODIA_WALLET_APNS_CA_FILE", "")
if WALLET_APNS_CA_FILE and not Path(WALLET_APNS_CA_FILE).is_file():
    raise ImproperlyConfigured("CUSTODIA_WALLET_APNS_CA_FILE must name a readable CA file.")
WALLET_APNS_TIMEOUT_SECONDS = env_int(
    "CUSTODIA_WALLET_APNS_TIMEOUT_SECONDS", 5, minimum=1, maximum=30
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_time_zone("CUSTODIA_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# One way of showing dates and times everywhere: "Tue 8 Dec 2026", "09:30" (formats/en/formats.py).
FORMAT_MODULE_PATH = ["custodia.formats"]
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# FullCalendar (npm, MIT; `make fullcalendar` installs it, never committed) under
# /static/fullcalendar/: the calendar page's script and style sheets (docs/visits.md).
FULLCALENDAR_DIR = PROJECT_DIR / "var" / "fullcalendar" / "node_modules" / "fullcalendar"
STATICFILES_DIRS = [BASE_DIR / "static", ("fullcalendar", FULLCALENDAR_DIR)]
# WhiteNoise serves var/static (collected by `custodia setup`); outside production it also finds
# files in the apps, so tests and a fresh checkout need no collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 200

LOG_LEVEL, LOG_FORMAT, LOGGING = logging_settings()
