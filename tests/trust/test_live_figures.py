"""/security/ is computed from the live system: a failed drill, an overdue key and members'
second factors change it, and it names no business, person or id."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from custodia.crypto import keystore
from custodia.lifecycle import backups, retention
from custodia.transparency.figures import forget_cached, platform_figures
from tests.factories import TenantMatrix

PUBLIC_PAGES = ("/security/", "/security/subprocessors/", "/security/retention/", "/privacy/")


def flat(response: Any) -> str:
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def figure(page: str, name: str) -> str:
    return page.split(f'id="figure-{name}"', 1)[1].split("</div>", 1)[0]


@pytest.fixture
def drill_log(tmp_path: Path, settings: Any) -> Path:
    settings.BACKUP_DRILL_LOG_FILE = tmp_path / "drills.jsonl"
    settings.OPERATOR_EMAILS = []
    return Path(settings.BACKUP_DRILL_LOG_FILE)


def test_a_failed_drill_shows_as_failed(web: Any, drill_log: Path, tmp_path: Path) -> None:
    assert "No restore drill has run yet." in figure(flat(web.get("/security/")), "drill")
    # A real drill, of a store that holds no backup to restore: it fails, and is recorded so.
    empty = backups.LocalStore(tmp_path / "no-backups")
    result = backups.drill(empty, [], notify=False)
    assert not result.ok
    drill = figure(flat(web.get("/security/")), "drill")
    assert "<strong>failed</strong>" in drill and "passed" not in drill
    # The backup figure reads the configured store (empty in tests): it says so, not "passed".
    assert "No backup has been made yet." in figure(flat(web.get("/security/")), "backup")


def test_an_unreadable_backup_store_is_said_without_its_message(
    web: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's error names its bucket or directory: the public page says only that it could
    not be read."""
    # An S3 store nobody answers for (a closed port on this machine): listing it fails.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    settings.BACKUP_S3_BUCKET = "secret-backup-place"
    settings.BACKUP_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    page = flat(web.get("/security/"))
    assert "secret-backup-place" not in page and "127.0.0.1:9" not in page
    assert "unreadable" in figure(page, "backup")


def test_an_overdue_key_shows_as_overdue(web: Any, matrix: TenantMatrix, settings: Any) -> None:
    before = figure(flat(web.get("/security/")), "keys")
    # The keystore of this test process keeps the keys of earlier tests' businesses too.
    overdue_before = platform_figures().keys.overdue

    business = matrix.a.owner.tenant_id
    key_file = keystore.read(business)
    aged = dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.KEY_ROTATION_DAYS + 1)
    key_file.primary.created_at = aged.isoformat()
    keystore.write(key_file)
    forget_cached()

    after = figure(flat(web.get("/security/")), "keys")
    assert after != before
    count = overdue_before + 1
    assert f"{count} key{'s' if count != 1 else ''} overdue for rotation</strong>" in after
    assert f"older than {settings.KEY_ROTATION_DAYS} days" in after


def test_the_mfa_share_is_the_real_one(web: Any, matrix: TenantMatrix) -> None:
    page = flat(web.get("/security/"))
    mfa = figure(page, "mfa")
    assert "Owners: 0% (0 of 2)" in mfa
    assert "Managers: 0% (0 of 2)" in mfa
    assert "Staff: 0% (0 of 4)" in mfa

    TOTP.activate(matrix.a.owner.user, generate_totp_secret())
    TOTP.activate(matrix.b.staff.user, generate_totp_secret())
    TOTP.activate(matrix.a.client_login.user, generate_totp_secret())  # clients are not counted
    forget_cached()
    mfa = figure(flat(web.get("/security/")), "mfa")
    assert "Owners: 50% (1 of 2)" in mfa
    assert "Managers: 0% (0 of 2)" in mfa
    assert "Staff: 25% (1 of 4)" in mfa


def test_the_figures_are_kept_briefly_not_recomputed_per_request(
    web: Any, matrix: TenantMatrix
) -> None:
    assert "Owners: 0% (0 of 2)" in figure(flat(web.get("/security/")), "mfa")
    TOTP.activate(matrix.a.owner.user, generate_totp_secret())
    # Within CACHE_SECONDS the kept counts answer; forgetting them shows the change.
    assert "Owners: 0% (0 of 2)" in figure(flat(web.get("/security/")), "mfa")
    forget_cached()
    assert "Owners: 50% (1 of 2)" in figure(flat(web.get("/security/")), "mfa")


def test_no_public_page_names_a_business_a_person_or_an_id(
    web: Any, web_as: Any, matrix: TenantMatrix
) -> None:
    secrets: set[str] = set()
    for side in (matrix.a, matrix.b):
        business = side.owner.business
        secrets |= {business.name, business.slug, str(business.pk)}
        for actor in (side.owner, side.manager, side.staff, side.other_staff, side.client_login):
            secrets |= {actor.user.email, actor.user.full_name, str(actor.user.pk)}
            secrets.add(str(actor.membership.pk))
        for client in (side.client, side.other_client):
            secrets |= {client.name, str(client.pk)}
        secrets.add(f"client@{business.name.lower()}.test")
    secrets.discard("")
    for path in PUBLIC_PAGES:
        for reader in (web, web_as(matrix.a.owner)):
            page = reader.get(path).content.decode()
            leaked = sorted(secret for secret in secrets if secret in page)
            # A signed-in owner's header names their business and them; the page body does not.
            if reader is not web:
                page = page.split("<main", 1)[1].split("</main>", 1)[0]
                leaked = sorted(secret for secret in secrets if secret in page)
            assert leaked == [], (path, leaked)


def test_the_transport_settings_shown_are_the_ones_in_force(web: Any, settings: Any) -> None:
    page = flat(web.get("/security/"))
    assert "TLS 1.2 or 1.3 only" in page
    assert f"max-age {settings.SECURE_HSTS_SECONDS // 86400} days, includeSubDomains" in page
    assert "script-src &#x27;self&#x27;" in page and "frame-ancestors &#x27;none&#x27;" in page
    assert "<code>__Host-sessionid</code></dt> <dd>Secure, HttpOnly, SameSite=Lax" in page
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_HSTS_SECONDS = 2 * 86400
    settings.TLS_MIN_VERSION = "tls1.3"
    settings.SECURE_SSL_REDIRECT = False
    page = flat(web.get("/security/"))
    assert "max-age 2 days, includeSubDomains, preload" in page
    assert "use HTTPS for 2 days" in page
    assert "TLS 1.3 or newer only" in page
    assert "Plain HTTP is not redirected to HTTPS on this installation" in page


def test_the_subprocessors_follow_the_configuration(
    web: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EMAIL_HOST = "smtp.mail.example"
    settings.KEK_PROVIDER = "aws-kms"
    settings.KMS_REGION = "eu-west-1"
    settings.KMS_ENDPOINT_URL = ""
    settings.VAULT_GATEWAY = "stripe"
    settings.STRIPE_API_BASE = ""
    settings.BACKUP_S3_BUCKET = "backups"
    settings.BACKUP_S3_ENDPOINT_URL = "https://objects.storage.example:9000"
    if hasattr(settings, "SENTRY_DSN"):
        settings.SENTRY_DSN = "https://k3ypart@o1.ingest.sentry.example/42"
    monkeypatch.setenv("CUSTODIA_SENTRY_DSN", "https://k3ypart@o1.ingest.sentry.example/42")
    page = flat(web.get("/security/subprocessors/"))
    for host in (
        "smtp.mail.example",
        "kms.eu-west-1.amazonaws.com",
        "api.stripe.com",
        "objects.storage.example",
        "o1.ingest.sentry.example",
    ):
        assert f"Where: {host} (a third party)" in page
    assert "k3ypart" not in page  # the DSN's key never leaves the configuration
    settings.EMAIL_HOST = ""
    settings.KEK_PROVIDER = "file"
    settings.VAULT_GATEWAY = "sandbox"
    settings.BACKUP_S3_BUCKET = ""
    if hasattr(settings, "SENTRY_DSN"):
        settings.SENTRY_DSN = ""
    monkeypatch.delenv("CUSTODIA_SENTRY_DSN")
    page = flat(web.get("/security/subprocessors/"))
    assert "(a third party)" not in page
    assert "Sentry" not in page


def test_retention_and_privacy_pages(web: Any, settings: Any) -> None:
    page = flat(web.get("/security/retention/"))
    for rule in retention.policy():
        assert f'id="retention-{rule.key}"' in page
    settings.OPERATOR_NAME = "Example Pet Care Ltd"
    settings.OPERATOR_CONTACT = "mailto:privacy@example.com"
    page = flat(web.get("/privacy/"))
    assert "<strong>Example Pet Care Ltd</strong>" in page
    assert 'href="mailto:privacy@example.com"' in page
    assert 'href="/security/subprocessors/"' in page and 'href="/security/retention/"' in page
    # Linked from every page's footer and from /security/.
    assert '<a href="/privacy/">Privacy</a>' in page
    assert 'href="/privacy/"' in flat(web.get("/security/")).split("<footer", 1)[0]
    settings.OPERATOR_NAME = ""
    assert "has not yet given their name" in flat(web.get("/privacy/"))


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_are_read_only(web: Any, path: str) -> None:
    assert web.post(path).status_code == 405
