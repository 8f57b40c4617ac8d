"""Production refuses insecure settings at start-up, with a message that names the problem and
never repeats a secret. Each case imports the settings in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "Zq8-kV3xP0s9LmT2wB7nR4yC6dF1gH5jK8eA3uI0oP2qW9zX7cV4bN6mM1lL5kJ8hG"
APP_DB_PASSWORD = "app-db-password-Xf9Qm2"
PRODUCTION = {
    "CUSTODIA_ENV": "production",
    "CUSTODIA_SECRET_KEY": SECRET,
    "CUSTODIA_PUBLIC_URL": "https://custodia.example.com",
    "CUSTODIA_SMTP_HOST": "smtp.example.com",
    "CUSTODIA_APP_DB_PASSWORD": APP_DB_PASSWORD,
    "CUSTODIA_VAULT_SIGNING_SECRET": "vault-signing-secret-" + SECRET[:30],
}

# PATH, and PYTHONPATH when set, so the fresh interpreter imports the code under test.
BASE_ENV = {
    name: os.environ[name] for name in ("PATH", "PYTHONPATH") if os.environ.get(name) is not None
}


def import_settings(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import custodia.settings with only `env` (plus PATH) set; print a few values on success."""
    clean = {**BASE_ENV, "CUSTODIA_VAR_DIR": str(tmp_path), **env}
    code = (
        "import custodia.settings as s; "
        "print(s.ALLOWED_HOSTS, s.SECURE_HSTS_PRELOAD, getattr(s, 'EMAIL_USE_TLS', None), s.DEBUG)"
    )
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )


def refused(tmp_path: Path, env: dict[str, str]) -> str:
    """The ImproperlyConfigured message the import stops with."""
    result = import_settings(tmp_path, env)
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr
    return last.removeprefix("django.core.exceptions.ImproperlyConfigured: ")


def test_complete_production_settings_load(tmp_path):
    result = import_settings(tmp_path, PRODUCTION)
    assert result.returncode == 0, result.stderr
    # The public URL's host is the one allowed host; HSTS preload and STARTTLS are on.
    assert result.stdout.strip() == "['custodia.example.com'] True True False"


def test_development_needs_no_configuration(tmp_path):
    result = import_settings(tmp_path, {})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secrets" / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"CUSTODIA_DEBUG": "1"}, "CUSTODIA_DEBUG cannot be on when CUSTODIA_ENV=production."),
        (
            {"CUSTODIA_SECRET_KEY": None},
            "CUSTODIA_SECRET_KEY (or CUSTODIA_SECRET_KEY_FILE) must be set.",
        ),
        (
            {"CUSTODIA_PUBLIC_URL": "http://custodia.example.com"},
            "CUSTODIA_PUBLIC_URL must be an https:// URL in production.",
        ),
        ({"CUSTODIA_SMTP_HOST": None}, "CUSTODIA_SMTP_HOST must be set in production."),
        (
            {"CUSTODIA_SMTP_STARTTLS": "0"},
            "Mail must travel over TLS in production: CUSTODIA_SMTP_SSL or CUSTODIA_SMTP_STARTTLS.",
        ),
        ({"CUSTODIA_APP_DB_PASSWORD": None}, "CUSTODIA_APP_DB_PASSWORD must be set in production."),
        (
            {"CUSTODIA_VAULT_SIGNING_SECRET": None},
            "CUSTODIA_VAULT_SIGNING_SECRET (or CUSTODIA_VAULT_SIGNING_SECRET_FILE) must be set.",
        ),
        (
            {"CUSTODIA_VAULT_SIGNING_SECRET": "a" * 40},
            "CUSTODIA_VAULT_SIGNING_SECRET must be at least 32 random characters.",
        ),
        (
            {"CUSTODIA_VAULT_URL": "http://vault.example.com"},
            "CUSTODIA_VAULT_URL must be an https:// URL.",
        ),
        (
            {"CUSTODIA_SSL_REDIRECT": "0"},
            "CUSTODIA_SSL_REDIRECT cannot be off when CUSTODIA_ENV=production.",
        ),
        ({"CUSTODIA_ALLOWED_HOSTS": "*"}, "CUSTODIA_ALLOWED_HOSTS cannot be '*' in production."),
        (
            {"CUSTODIA_WEBHOOKS_ALLOW_PRIVATE": "1"},
            "CUSTODIA_WEBHOOKS_ALLOW_PRIVATE cannot be on when CUSTODIA_ENV=production.",
        ),
        ({"CUSTODIA_ENV": "prod"}, "CUSTODIA_ENV must be 'development' or 'production'."),
    ],
)
def test_production_refuses_insecure_settings(tmp_path, change, message):
    env = {**PRODUCTION, **change}
    env = {name: value for name, value in env.items() if value is not None}
    assert refused(tmp_path, env) == message


@pytest.mark.parametrize(
    "weak",
    [
        "too-short-but-secret-Q7",
        "a" * 80,
        "django-insecure-" + "k3Jq9xLp2Vn8Rm4Ty7Wb1Zc6Hd0Gf5Se" * 2,
    ],
    ids=["short", "repetitive", "django-insecure"],
)
def test_weak_secret_key_is_refused_without_echoing_it(tmp_path, weak):
    result = import_settings(tmp_path, {**PRODUCTION, "CUSTODIA_SECRET_KEY": weak})
    assert result.returncode != 0
    assert "CUSTODIA_SECRET_KEY must be at least 50 random characters." in result.stderr
    assert weak not in result.stderr + result.stdout
    assert weak[:12] not in result.stderr + result.stdout


def test_secret_key_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(SECRET + "\n")
    env = {**PRODUCTION, "CUSTODIA_SECRET_KEY_FILE": str(secret_file)}
    del env["CUSTODIA_SECRET_KEY"]
    assert import_settings(tmp_path, env).returncode == 0


def fallbacks_of(tmp_path: Path, env: dict[str, str]) -> list[str]:
    code = "import custodia.settings as s; print('\\n'.join(s.SECRET_KEY_FALLBACKS))"
    clean = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        env={**clean, "CUSTODIA_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


OLD_KEYS = [SECRET[::-1], SECRET[10:] + SECRET[:10]]


def test_secret_key_fallbacks_come_from_the_environment_or_a_file(tmp_path):
    assert fallbacks_of(tmp_path, PRODUCTION) == []
    listed = {**PRODUCTION, "CUSTODIA_SECRET_KEY_FALLBACKS": f" {OLD_KEYS[0]} , {OLD_KEYS[1]},"}
    assert fallbacks_of(tmp_path, listed) == OLD_KEYS
    keys_file = tmp_path / "fallbacks"
    keys_file.write_text("\n".join(OLD_KEYS) + "\n")
    from_file = {**PRODUCTION, "CUSTODIA_SECRET_KEY_FALLBACKS_FILE": str(keys_file)}
    assert fallbacks_of(tmp_path, from_file) == OLD_KEYS


def test_a_weak_fallback_key_is_refused_in_production_without_echoing_it(tmp_path):
    weak = "short-old-key-4711"
    env = {**PRODUCTION, "CUSTODIA_SECRET_KEY_FALLBACKS": f"{OLD_KEYS[0]},{weak}"}
    assert refused(tmp_path, env) == (
        "Every key in CUSTODIA_SECRET_KEY_FALLBACKS must be at least 50 random characters."
    )
    assert weak not in import_settings(tmp_path, env).stderr


def test_unreadable_secret_file_is_named_not_read(tmp_path):
    env = {**PRODUCTION, "CUSTODIA_SECRET_KEY_FILE": str(tmp_path / "missing")}
    assert refused(tmp_path, env) == (
        "CUSTODIA_SECRET_KEY_FILE names a file that cannot be read: No such file or directory"
    )


def test_other_secrets_are_not_echoed_either(tmp_path):
    # A failing production start-up prints neither the secret key nor the database password.
    result = import_settings(tmp_path, {**PRODUCTION, "CUSTODIA_SMTP_HOST": ""})
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert SECRET not in output and APP_DB_PASSWORD not in output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CUSTODIA_DEBUG": "maybe"}, "CUSTODIA_DEBUG must be one of"),
        ({"CUSTODIA_DB_POOL_SIZE": "lots"}, "CUSTODIA_DB_POOL_SIZE must be an integer"),
        (
            {"CUSTODIA_SECURITY_CONTACT": "security@example.com"},
            "CUSTODIA_SECURITY_CONTACT must be a mailto: or https:// URI.",
        ),
        ({"CUSTODIA_PUBLIC_URL": "localhost:8443"}, "CUSTODIA_PUBLIC_URL must be an absolute URL"),
        ({"CUSTODIA_LOG_LEVEL": "chatty"}, "CUSTODIA_LOG_LEVEL must be"),
        ({"DATABASE_URL": "mysql://db/custodia"}, "DATABASE_URL must start with postgres://"),
        ({"CUSTODIA_TIME_ZONE": "Mars/Olympus"}, "CUSTODIA_TIME_ZONE must be an IANA time zone"),
        ({"CUSTODIA_TIME_ZONE": "../../etc/passwd"}, "CUSTODIA_TIME_ZONE must be an IANA"),
        ({"CUSTODIA_TIME_ZONE": "America"}, "CUSTODIA_TIME_ZONE must be an IANA time zone"),
        (
            {"CUSTODIA_CSRF_TRUSTED_ORIGINS": "custodia.example.com"},
            "CUSTODIA_CSRF_TRUSTED_ORIGINS must be comma-separated origins",
        ),
        (
            {"CUSTODIA_CSRF_TRUSTED_ORIGINS": "https://a.example, https://b.example/path"},
            "CUSTODIA_CSRF_TRUSTED_ORIGINS must be comma-separated origins",
        ),
        ({"CUSTODIA_MAIL_FROM": "Custodia"}, "CUSTODIA_MAIL_FROM must be an email address"),
        ({"CUSTODIA_DEFAULT_CURRENCY": "XYZ"}, "CUSTODIA_DEFAULT_CURRENCY must be an ISO 4217"),
        ({"CUSTODIA_DEFAULT_CURRENCY": "dollars"}, "CUSTODIA_DEFAULT_CURRENCY must be an ISO"),
        ({"CUSTODIA_INVITATION_TTL_HOURS": "0"}, "CUSTODIA_INVITATION_TTL_HOURS must be between"),
        (
            {"CUSTODIA_CLOSED_BUSINESS_GRACE_DAYS": "0"},
            "CUSTODIA_CLOSED_BUSINESS_GRACE_DAYS must be between 1 and 365",
        ),
        (
            {"CUSTODIA_CLOSED_BUSINESS_GRACE_DAYS": "a month"},
            "CUSTODIA_CLOSED_BUSINESS_GRACE_DAYS must be an integer",
        ),
        (
            {"CUSTODIA_WEBHOOKS_RETRY_SCHEDULE": "30,soon"},
            "CUSTODIA_WEBHOOKS_RETRY_SCHEDULE is a comma-separated list of 1 to 604800 seconds.",
        ),
        (
            {"CUSTODIA_WEBHOOKS_RETRY_SCHEDULE": "0"},
            "CUSTODIA_WEBHOOKS_RETRY_SCHEDULE is a comma-separated list of 1 to 604800 seconds.",
        ),
        (
            {"CUSTODIA_WEBHOOKS_CA_FILE": "/nonexistent/ca.pem"},
            "CUSTODIA_WEBHOOKS_CA_FILE must name a readable CA file.",
        ),
        (
            {"CUSTODIA_ALERT_WEBHOOK_URL": "http://siem.example.com/in"},
            "CUSTODIA_ALERT_WEBHOOK_URL must be an https:// URL.",
        ),
        (
            {"CUSTODIA_ALERT_WEBHOOK_URL": "https://siem.example.com/in"},
            "CUSTODIA_ALERT_WEBHOOK_SECRET (or _FILE) must be set to a whsec_ secret",
        ),
        (
            {
                "CUSTODIA_ALERT_WEBHOOK_URL": "https://siem.example.com/in",
                "CUSTODIA_ALERT_WEBHOOK_SECRET": "whsec_bm90IGJhc2U2NCE=",
            },
            "CUSTODIA_ALERT_WEBHOOK_SECRET (or _FILE) must be set to a whsec_ secret",
        ),
        (
            {"CUSTODIA_WEBHOOKS_TIMEOUT_SECONDS": "600"},
            "CUSTODIA_WEBHOOKS_TIMEOUT_SECONDS must be between 1 and 60",
        ),
        (
            {
                "CUSTODIA_SMTP_HOST": "smtp.example.com",
                "CUSTODIA_SMTP_SSL": "1",
                "CUSTODIA_SMTP_STARTTLS": "1",
            },
            "Set only one of CUSTODIA_SMTP_SSL",
        ),
    ],
)
def test_malformed_values_fail_loudly_in_any_environment(tmp_path, env, message):
    assert refused(tmp_path, env).startswith(message)


def test_the_webhook_defaults_are_the_documented_ones(tmp_path):
    assert read_settings(tmp_path, {}, "WEBHOOKS_ALLOW_PRIVATE") == "[False]"
    assert read_settings(tmp_path, {}, "WEBHOOKS_RETRY_SCHEDULE") == (
        "[[30, 300, 1800, 7200, 28800, 86400]]"
    )
    env = {"CUSTODIA_WEBHOOKS_RETRY_SCHEDULE": "5, 60"}
    assert read_settings(tmp_path, env, "WEBHOOKS_RETRY_SCHEDULE") == "[[5, 60]]"


def test_a_well_formed_alert_webhook_is_accepted(tmp_path):
    env = {
        "CUSTODIA_ALERT_WEBHOOK_URL": "https://siem.example.com/in",
        "CUSTODIA_ALERT_WEBHOOK_SECRET": "whsec_" + "QUJD" * 11,
    }
    assert read_settings(tmp_path, env, "ALERT_WEBHOOK_URL") == "['https://siem.example.com/in']"


def test_the_closed_business_grace_period_is_configurable(tmp_path):
    assert read_settings(tmp_path, {}, "CLOSED_BUSINESS_GRACE_DAYS") == "[30]"
    env = {"CUSTODIA_CLOSED_BUSINESS_GRACE_DAYS": "7"}
    assert read_settings(tmp_path, env, "CLOSED_BUSINESS_GRACE_DAYS") == "[7]"


def test_the_default_currency_is_configurable(tmp_path):
    assert read_settings(tmp_path, {}, "DEFAULT_CURRENCY") == "['USD']"
    assert read_settings(tmp_path, {"CUSTODIA_DEFAULT_CURRENCY": "eur"}, "DEFAULT_CURRENCY") == (
        "['EUR']"
    )


def test_malformed_value_message_names_the_variable_not_a_traceback_of_the_value(tmp_path):
    result = import_settings(tmp_path, {"CUSTODIA_TIME_ZONE": "Mars/Olympus"})
    # One clean ImproperlyConfigured from the settings, not zoneinfo's own error chained below it.
    assert "ZoneInfoNotFoundError" not in result.stderr
    assert "Mars/Olympus" not in result.stderr


def read_settings(tmp_path: Path, env: dict[str, str], names: str) -> str:
    """The repr of the named settings after importing them with only `env` set."""
    clean = {**BASE_ENV, "CUSTODIA_VAR_DIR": str(tmp_path), **env}
    code = f"import custodia.settings as s; print([getattr(s, n) for n in {names.split()!r}])"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_every_kind_of_variable_can_come_from_a_file(tmp_path):
    # NAME_FILE works for integers, flags and lists as it does for strings (README: Configuration).
    files = {
        "CUSTODIA_DB_POOL_SIZE": "17\n",
        "CUSTODIA_HSTS_PRELOAD": "yes\n",
        "CUSTODIA_ALLOWED_HOSTS": "a.example, b.example\n",
        "CUSTODIA_TIME_ZONE": "Europe/Paris\n",
    }
    env = {}
    for name, content in files.items():
        (tmp_path / name).write_text(content)
        env[f"{name}_FILE"] = str(tmp_path / name)
    assert (
        read_settings(tmp_path, env, "DB_POOL_SIZE SECURE_HSTS_PRELOAD ALLOWED_HOSTS TIME_ZONE")
        == "[17, True, ['a.example', 'b.example'], 'Europe/Paris']"
    )


def test_a_malformed_value_from_a_file_is_refused_like_one_from_the_environment(tmp_path):
    # A file's content is not repeated: the file may be a secret named by mistake.
    (tmp_path / "pool").write_text("hunter2-secret\n")
    assert refused(tmp_path, {"CUSTODIA_DB_POOL_SIZE_FILE": str(tmp_path / "pool")}) == (
        "CUSTODIA_DB_POOL_SIZE must be an integer."
    )
    missing = {"CUSTODIA_DEBUG_FILE": str(tmp_path / "missing")}
    assert refused(tmp_path, missing) == (
        "CUSTODIA_DEBUG_FILE names a file that cannot be read: No such file or directory"
    )


def test_behind_tls_proxy_trusts_x_forwarded_proto_only_when_set(tmp_path):
    names = "SECURE_PROXY_SSL_HEADER"
    assert read_settings(tmp_path, {}, names) == "[None]"
    assert read_settings(tmp_path, {"CUSTODIA_BEHIND_TLS_PROXY": "1"}, names) == (
        "[('HTTP_X_FORWARDED_PROTO', 'https')]"
    )


def test_csrf_trusted_origins_default_to_the_public_url_and_take_extra_origins(tmp_path):
    env = {"CUSTODIA_PUBLIC_URL": "https://custodia.example.com"}
    assert read_settings(tmp_path, env, "CSRF_TRUSTED_ORIGINS") == (
        "[['https://custodia.example.com']]"
    )
    # Extra origins, as the README says: added to the public URL, not instead of it.
    env["CUSTODIA_CSRF_TRUSTED_ORIGINS"] = "https://admin.example, https://custodia.example.com"
    assert read_settings(tmp_path, env, "CSRF_TRUSTED_ORIGINS") == (
        "[['https://custodia.example.com', 'https://admin.example']]"
    )


def test_database_url_gives_two_connections_to_one_database(tmp_path):
    env = {
        "DATABASE_URL": "postgres://admin:s3cret@db.example:5433/custodia",
        "CUSTODIA_APP_DB_PASSWORD": "app-pw",
        "CUSTODIA_DB_NAME": "custodia_ci",
    }
    clean = {**BASE_ENV, "CUSTODIA_VAR_DIR": str(tmp_path), **env}
    code = (
        "import custodia.settings as s\n"
        "for alias in ('default', 'owner'):\n"
        "    d = s.DATABASES[alias]\n"
        "    print(alias, d['NAME'], d['USER'], d['PASSWORD'], d['HOST'], d['PORT'],"
        " d['TEST']['NAME'], d['OPTIONS'].get('options', ''))\n"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "default custodia_ci custodia_app app-pw db.example 5433 custodia_ci_test ",
        "owner custodia_ci admin s3cret db.example 5433 custodia_ci_test -c role=custodia_owner",
    ]
