"""The security page states what the code enforces today and calls the rest planned."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import get_hasher

import custodia
from custodia.tenancy.models import Business

# Each planned item and the app whose arrival would make it (partly) true. When one of these is
# installed, this test fails on purpose: move the item from "planned" to "in place" and say
# exactly what now holds.
PLANNED = {
    "planned-alerts": "custodia.monitoring",
}
# The app's modules that could take a card payment: only payments' own modules call the vault's
# client (the security page's "Card payments" says so).
CARD_PAYMENT_DOORS = ("payments", "web", "api")


@pytest.fixture
def page(web) -> str:
    response = web.get("/security/")
    assert response.status_code == 200
    # One space between words, so phrases can be found wherever the template wraps its lines.
    return " ".join(response.content.decode().split())


def test_page_names_the_protections_in_place(page):
    for claim in (
        "row-level security",
        "argon2id",
        "TLS 1.2 or 1.3",
        "__Host-",
        "assigned to them",
        "Content Security Policy",
    ):
        assert claim in page


@pytest.mark.parametrize(("marker", "app"), sorted(PLANNED.items()))
def test_planned_items_are_not_claimed_as_present(page, marker, app):
    planned_section = page.split('id="planned"', 1)[1]
    assert f'id="{marker}"' in planned_section
    assert app not in settings.INSTALLED_APPS, (
        f"{app} is installed: update the security page ({marker}) to say what is true now."
    )


def test_card_payments_are_in_place_only_through_the_vault(page):
    in_place, planned_section = page.split('id="planned"', 1)
    assert 'id="planned-payments"' not in page
    assert 'id="card-payments"' in in_place
    for claim in (
        "never reach this app",
        "brand, its last four digits and its expiry",
        "15 minutes without card activity",
        "no API token can hold that permission",
        "idempotency key",
    ):
        assert claim in in_place
    # The app reaches the vault only from the payments actions and their client module
    # (tests/payments/test_card_access.py: no API route, no token scope).
    source = Path(custodia.__file__).parent
    callers = sorted(
        str(path.relative_to(source))
        for door in CARD_PAYMENT_DOORS
        for path in (source / door).rglob("*.py")
        if "custodia.vault.client" in path.read_text()
    )
    assert callers == ["payments/actions/cards.py", "payments/vault.py"]


def test_mfa_is_in_place_and_no_longer_planned(page):
    in_place, planned_section = page.split('id="planned"', 1)
    assert 'id="mfa"' in in_place
    assert 'id="planned-mfa"' not in page
    assert "Two-factor authentication" not in planned_section
    for claim in ("authenticator app", "passkey", "10 recovery codes", "only once", "AES-256-GCM"):
        assert claim in in_place


def test_mfa_claims_hold_in_the_settings():
    assert "allauth.mfa" in settings.INSTALLED_APPS
    assert {"totp", "recovery_codes", "webauthn"} <= set(settings.MFA_SUPPORTED_TYPES)
    assert settings.MFA_PASSKEY_LOGIN_ENABLED
    assert settings.MFA_TOTP_PERIOD == 30 and settings.MFA_TOTP_TOLERANCE == 0
    assert settings.MFA_RECOVERY_CODE_COUNT == 10 and settings.MFA_RECOVERY_CODES_SHOW_ONCE
    assert settings.MFA_REAUTHENTICATION_REQUIRED
    assert settings.MFA_ADAPTER == "custodia.accounts.mfa.MFAAdapter"
    assert "custodia.web.middleware.MFAPolicyMiddleware" in settings.MIDDLEWARE


def test_page_numbers_match_the_configuration(page):
    before = Business._meta.get_field("access_window_before_hours").get_default()
    after = Business._meta.get_field("access_window_after_hours").get_default()
    assert f"{before} hours before it starts to {after} hours after it ends" in page
    assert f"at most {settings.SESSION_COOKIE_AGE // 86400} days" in page


def test_page_claims_hold_in_the_settings():
    # argon2id: Django's Argon2 hasher uses the "id" variant; the first hasher is the one used.
    hasher = get_hasher("default")
    assert hasher.algorithm == "argon2"
    assert hasher.encode("x", hasher.salt()).startswith("argon2$argon2id$")
    minimum = next(
        validator
        for validator in settings.AUTH_PASSWORD_VALIDATORS
        if validator["NAME"].endswith("MinimumLengthValidator")
    )
    assert minimum["OPTIONS"]["min_length"] == 12
    assert settings.SESSION_COOKIE_NAME.startswith("__Host-")
    assert settings.CSRF_COOKIE_NAME.startswith("__Host-")
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.ACCOUNT_PREVENT_ENUMERATION
    assert settings.ACCOUNT_EMAIL_VERIFICATION == "mandatory"
    assert settings.SECURE_HSTS_SECONDS >= 31536000


def test_page_has_the_report_contact_and_no_inline_code(page):
    assert f'href="{settings.SECURITY_CONTACT}"' in page
    assert "/.well-known/security.txt" in page
    assert "<script" not in page
    assert "style=" not in page


def test_page_is_the_same_for_a_signed_in_member(web_as, matrix):
    response = web_as(matrix.a.staff).get("/security/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_audit_trail_is_in_place_and_no_longer_planned(page):
    in_place, planned_section = page.split('id="planned"', 1)
    assert 'id="audit"' in in_place
    assert 'id="planned-audit"' not in page
    for claim in ("same database transaction", "Ed25519", "audit verify", "one year"):
        assert claim in in_place


def test_encryption_is_in_place_and_no_longer_planned(page):
    in_place, _planned_section = page.split('id="planned"', 1)
    assert 'id="encryption"' in in_place
    assert 'id="planned-encryption"' not in page
    for claim in (
        "AES-256-GCM) with a key that belongs to your business alone",
        "Client names are not encrypted",
        f"replaced every {settings.KEY_ROTATION_DAYS} days",
        "its keys are destroyed",
    ):
        assert claim in in_place


def test_encryption_claims_name_their_limits(page):
    in_place, _planned_section = page.split('id="planned"', 1)
    encryption = in_place.split('id="encryption"', 1)[1].split('id="audit"', 1)[0]
    # A portal client's log-in address is plain text (tests/crypto/test_dump.py shows where) ...
    assert "a client's email address is in plain text only when it is also their log-in" in (
        encryption
    )
    # ... and a deleted business is unreadable only once its keystore backups have expired
    # (docs/keys.md, "Crypto-shredding"), N days later, not at once "in a backup or anywhere else".
    days = settings.KEYSTORE_BACKUP_RETENTION_DAYS + 1
    assert f"unreadable everywhere, backups included, {days} days after deletion" in encryption
    assert "unlocks" in in_place


def test_backups_are_in_place_with_their_retention(page):
    in_place, planned_section = page.split('id="planned"', 1)
    backups = in_place.split('id="backups"', 1)[1].split('id="audit"', 1)[0]
    for claim in (
        "cannot read it back",
        "signed with Ed25519",
        "compared with the manifest",
        f"kept {settings.BACKUP_RETENTION_DAYS} days, then deleted automatically",
    ):
        assert claim in backups
    assert "Encrypted daily backups" not in planned_section


def test_export_is_in_place_and_no_longer_planned(page):
    in_place, planned_section = page.split('id="planned"', 1)
    assert 'id="export"' in in_place and 'id="planned-export"' not in page
    assert "custodia.lifecycle.export" in settings.INSTALLED_APPS
    for claim in ("downloaded once", f"within {settings.EXPORT_TTL_HOURS} hours", "Ed25519"):
        assert claim in in_place
    assert "export" not in planned_section.split("</ul>", 1)[0].lower()


def test_the_weekly_restore_drill_is_in_place(page):
    in_place, planned_section = page.split('id="planned"', 1)
    assert "procrastinate.contrib.django" in settings.INSTALLED_APPS  # its scheduler
    assert "Every week a restore drill restores the newest backup" in in_place
    assert "restore drill" not in planned_section


def test_point_in_time_recovery_is_claimed_only_with_the_engine_that_gives_it(web, settings):
    """The default (logical) engine makes daily backups: PITR stays planned. With pgbackrest the
    page says what that engine does, and no longer calls PITR planned."""
    logical = " ".join(web.get("/security/").content.decode().split())
    assert 'id="planned-pitr"' in logical.split('id="planned"', 1)[1]
    assert "age: X25519" in logical and "point-in-time recovery" not in logical
    settings.BACKUP_ENGINE = "pgbackrest"
    settings.PGBACKREST_FULL_EVERY_DAYS = 5
    pgbackrest = " ".join(web.get("/security/").content.decode().split())
    assert "a full backup every 5 days" in pgbackrest
    assert 'id="planned-pitr"' not in pgbackrest
    assert "(point-in-time recovery)" in pgbackrest and "age: X25519" not in pgbackrest


def test_erasure_and_closing_are_in_place(page):
    in_place, planned_section = page.split('id="planned"', 1)
    assert 'id="erasure"' in in_place and 'id="closing"' in in_place
    assert "erase" not in planned_section
    assert f"after {settings.CLOSED_BUSINESS_GRACE_DAYS} days every record is deleted" in in_place


def test_signed_webhooks_are_in_place_with_their_limits(page):
    in_place, planned_section = page.split('id="planned"', 1)
    assert "custodia.webhooks" in settings.INSTALLED_APPS
    assert 'id="webhooks"' in in_place and "webhook" not in planned_section
    for claim in (
        "HTTPS only",
        "HMAC-SHA256",
        f"for {settings.WEBHOOKS_ROTATION_OVERLAP_HOURS} hours, then is erased",
        "public internet addresses only",
        "redirects are not followed",
    ):
        assert claim in in_place
    assert not settings.WEBHOOKS_ALLOW_PRIVATE  # "public addresses only" is the default
