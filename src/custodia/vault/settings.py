"""The vault process's own Django settings: only what the vault needs, never the app's apps.

Read from the environment like the app's (core/config.py); the vault shares the app's var/
directory, TLS certificate and PostgreSQL server, but has its own database and role
(`custodia_vault`), its own key-encryption key and keystore, and the request-signing secret it
shares with the app (docs/payments.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from custodia.core.config import (
    env_bool,
    env_int,
    env_str,
    generated_secret,
    parse_database_url,
)
from custodia.core.logs import logging_settings

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent.parent.parent
VAR_DIR = Path(env_str("CUSTODIA_VAR_DIR", str(PROJECT_DIR / "var"))).resolve()

ENVIRONMENT = env_str("CUSTODIA_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("CUSTODIA_ENV must be 'development' or 'production'.")
PRODUCTION = ENVIRONMENT == "production"
DEBUG = False


def _secret(name: str, file_name: str) -> str:
    """A secret from the environment (required in production) or a development file."""
    if PRODUCTION:
        value = env_str(name)
    else:
        value = env_str(name, "") or generated_secret(VAR_DIR / "secrets" / file_name)
    if len(value) < 32 or len(set(value)) < 10:
        raise ImproperlyConfigured(f"{name} must be at least 32 random characters.")
    return value


# Django's own signing (the hosted form's CSRF cookie): the vault's, never the app's key.
SECRET_KEY = _secret("CUSTODIA_VAULT_SECRET_KEY", "vault_secret_key")
# The secret the app signs its requests to the vault with (HMAC-SHA256, vault/auth.py).
VAULT_SIGNING_SECRET = _secret("CUSTODIA_VAULT_SIGNING_SECRET", "vault_signing_secret")

# The app's origin: the only one that may frame the hosted form and receive its result.
PUBLIC_URL = env_str("CUSTODIA_PUBLIC_URL", "https://localhost:8443").rstrip("/")
_public = urlsplit(PUBLIC_URL)
if _public.scheme not in {"https", "http"} or not _public.hostname:
    raise ImproperlyConfigured("CUSTODIA_PUBLIC_URL must be an absolute URL like https://host.")
APP_ORIGIN = f"{_public.scheme}://{_public.netloc}"

VAULT_PORT = env_int("CUSTODIA_VAULT_PORT", 8444, minimum=1, maximum=65535)
VAULT_URL = env_str("CUSTODIA_VAULT_URL", f"https://localhost:{VAULT_PORT}").rstrip("/")
_vault = urlsplit(VAULT_URL)
if _vault.scheme != "https" or not _vault.hostname:
    raise ImproperlyConfigured("CUSTODIA_VAULT_URL must be an https:// URL.")
ALLOWED_HOSTS = [_vault.hostname] if PRODUCTION else [_vault.hostname, "localhost", "127.0.0.1"]

# Which gateway moves the money (vault/gateways/__init__.py): the sandbox unless told otherwise.
VAULT_GATEWAY = env_str("CUSTODIA_VAULT_GATEWAY", "sandbox")
if PRODUCTION and VAULT_GATEWAY == "sandbox" and not env_bool("CUSTODIA_VAULT_SANDBOX", False):
    raise ImproperlyConfigured(
        "CUSTODIA_VAULT_GATEWAY is the sandbox in production: name a real gateway, or set"
        " CUSTODIA_VAULT_SANDBOX=true to run a demonstration install on purpose."
    )
# The Stripe gateway (CUSTODIA_VAULT_GATEWAY=stripe; docs/stripe-gateway.md): its API key, its
# API's address (empty: Stripe's own) and the signing secret of the webhook endpoint.
STRIPE_API_KEY = env_str("CUSTODIA_STRIPE_API_KEY", "")
STRIPE_API_BASE = env_str("CUSTODIA_STRIPE_API_BASE", "")
STRIPE_WEBHOOK_SECRET = env_str("CUSTODIA_STRIPE_WEBHOOK_SECRET", "")
# Incoming gateway webhooks (POST /gateway-events/<gateway>/): each gateway's signing secret; a
# gateway without one has no endpoint (404).
GATEWAY_WEBHOOK_SECRETS = {"stripe": STRIPE_WEBHOOK_SECRET} if STRIPE_WEBHOOK_SECRET else {}
if VAULT_GATEWAY == "stripe" and not STRIPE_API_KEY:
    raise ImproperlyConfigured("CUSTODIA_VAULT_GATEWAY=stripe needs CUSTODIA_STRIPE_API_KEY.")
# Lifetimes: the hosted form, and the one-time reference it hands back to the app.
FORM_TTL_SECONDS = env_int("CUSTODIA_VAULT_FORM_TTL_SECONDS", 900, minimum=60, maximum=3600)
REFERENCE_TTL_SECONDS = 600

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.postgres",
    "custodia.vault",
]
MIDDLEWARE = [
    "custodia.vault.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "custodia.vault.urls"
WSGI_APPLICATION = "custodia.vault.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# --- Keys: the same keyring design as the app's field encryption (crypto/keyring.py), with a
# key-encryption key and keystore of the vault's own (docs/payments.md, "Keys").
KEK_PROVIDER = env_str("CUSTODIA_VAULT_KEK_PROVIDER", "file")
if KEK_PROVIDER not in {"file", "env", "aws-kms"}:
    raise ImproperlyConfigured("CUSTODIA_VAULT_KEK_PROVIDER must be file, env or aws-kms.")
KEK_KEYRING_FILE = Path(
    env_str("CUSTODIA_VAULT_KEK_KEYRING_FILE", str(VAR_DIR / "secrets" / "vault-kek-keyring.json"))
)
KEK_VALUE = env_str("CUSTODIA_VAULT_KEK", "") if KEK_PROVIDER == "env" else ""
KEK_PREVIOUS = (
    [item.strip() for item in env_str("CUSTODIA_VAULT_KEK_PREVIOUS", "").split(",") if item.strip()]
    if KEK_PROVIDER == "env"
    else []
)
KMS_KEY_ID = env_str("CUSTODIA_VAULT_KMS_KEY_ID", "")
KMS_REGION = env_str("CUSTODIA_VAULT_KMS_REGION", os.environ.get("AWS_REGION", ""))
KMS_ENDPOINT_URL = env_str("CUSTODIA_VAULT_KMS_ENDPOINT_URL", "")
KEYSTORE_DIR = Path(env_str("CUSTODIA_VAULT_KEYSTORE_DIR", str(VAR_DIR / "vault-keys")))
FIELD_ENCRYPTION = True  # never off in the vault

# --- Database: custodia_vault, owned by and used as the role custodia_vault -------------------
VAULT_DB_ROLE = "custodia_vault"
EMBEDDED_PGDATA = VAR_DIR / "pgdata"
DATABASE_URL = env_str("DATABASE_URL", "")
EMBEDDED_DATABASE = not DATABASE_URL
if DATABASE_URL:
    ADMIN_DATABASE = parse_database_url(DATABASE_URL)
else:
    from custodia.embedded import embedded_socket_dir

    ADMIN_DATABASE = {
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(embedded_socket_dir(EMBEDDED_PGDATA)),
        "PORT": "",
    }
VAULT_DB_NAME = env_str("CUSTODIA_VAULT_DB_NAME", "custodia_vault")
if PRODUCTION:
    VAULT_DB_PASSWORD = env_str("CUSTODIA_VAULT_DB_PASSWORD")
else:
    VAULT_DB_PASSWORD = env_str("CUSTODIA_VAULT_DB_PASSWORD", "") or generated_secret(
        VAR_DIR / "secrets" / "vault_db_password"
    )
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": VAULT_DB_NAME,
        "USER": VAULT_DB_ROLE,
        "PASSWORD": VAULT_DB_PASSWORD,
        "HOST": ADMIN_DATABASE["HOST"],
        "PORT": ADMIN_DATABASE["PORT"],
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"pool": {"min_size": 1, "max_size": 4, "timeout": 10}},
    }
}
# The sandbox gateway's own connection (vault/gateways/sandbox.py): its writes commit at once,
# apart from the vault's transaction, like a gateway outside the vault.
DATABASES["gateway"] = {
    **DATABASES["default"],
    "OPTIONS": {"pool": {"min_size": 1, "max_size": 4, "timeout": 10}},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Transport and headers -------------------------------------------------------------------
SECURE_SSL_REDIRECT = False  # the vault speaks TLS only: there is no plain port to redirect
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"  # the form URL (a one-time secret) never leaves; the
# form POST still carries its Origin, which CSRF checks (no-referrer would make it "null")
SECURE_CROSS_ORIGIN_OPENER_POLICY = None  # the form redirects the app's top window
# The hosted form is framed by the app's page (another origin, often another site): its CSRF
# cookie must travel in that frame, so SameSite=None (with Secure and the __Host- prefix).
CSRF_COOKIE_NAME = "__Host-vault-csrftoken"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "None"
CSRF_FAILURE_VIEW = "custodia.vault.views.csrf_failure"
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

TLS_DIR = VAR_DIR / "tls"
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
LANGUAGE_CODE = "en-us"

LOG_LEVEL, LOG_FORMAT, LOGGING = logging_settings()

# Vault code reads the settings above that are its own (VAULT_*, APP_ORIGIN, the lifetimes)
# from this module directly (`from custodia.vault import settings as vault_settings`): in the
# vault process it is the settings module Django loaded, and mypy's Django plugin, which knows
# the app's settings only, can check them.
