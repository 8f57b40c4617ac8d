"""/.well-known/security.txt follows RFC 9116 and names the configured contact."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.test import Client, override_settings


def fields_of(text: str) -> dict[str, str]:
    """Each field's value; `Contact`, which RFC 9116 lets appear more than once (in order of
    preference), as its values joined by a space."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, separator, value = line.partition(": ")
        assert separator, f"not a field line: {line!r}"
        if name == "Contact" and name in fields:
            fields[name] += f" {value}"
            continue
        assert name not in fields, f"{name} appears twice"
        fields[name] = value
    return fields


def test_security_txt_has_every_field_rfc_9116_asks_for(web):
    response = web.get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    text = response.content.decode()
    assert text.endswith("\n")
    fields = fields_of(text)
    # The report form first (tracked against a 24-hour first response), then the address.
    assert (
        fields["Contact"] == f"{settings.PUBLIC_URL}/security/report/ {settings.SECURITY_CONTACT}"
    )
    assert fields["Policy"] == f"{settings.PUBLIC_URL}/security/"
    assert fields["Canonical"] == f"{settings.PUBLIC_URL}/.well-known/security.txt"
    assert fields["Preferred-Languages"] == "en"
    expires = dt.datetime.fromisoformat(fields["Expires"].replace("Z", "+00:00"))
    now = dt.datetime.now(dt.UTC)
    # RFC 9116: required, in the future, and recommended to be less than a year ahead.
    assert now < expires < now + dt.timedelta(days=365)


@override_settings(
    SECURITY_CONTACT="https://example.com/report", PUBLIC_URL="https://app.example.com"
)
def test_security_txt_follows_the_settings(web):
    fields = fields_of(web.get("/.well-known/security.txt").content.decode())
    assert fields["Contact"] == (
        "https://app.example.com/security/report/ https://example.com/report"
    )
    assert fields["Canonical"] == "https://app.example.com/.well-known/security.txt"


def test_security_txt_is_read_only(web):
    assert web.post("/.well-known/security.txt").status_code == 405
    assert web.head("/.well-known/security.txt").status_code == 200


def test_security_txt_over_plain_http_redirects_to_https(db):
    response = Client().get("/.well-known/security.txt")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/.well-known/security.txt"
