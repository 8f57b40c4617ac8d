"""An Apple Wallet pass (`.pkpass`): a zip of pass.json, the icons, manifest.json (the SHA-256
of every other file) and `signature`, a detached PKCS#7 (CMS) signature of manifest.json by the
pass certificate, carrying Apple's WWDR intermediate (docs/wallet.md).

What a pass shows is what the portal shows of the punch pass or membership (wallet/content.py):
the business's name, its name, credits left and in all (a month), its expiry (or renewal) and
status. Never the client's name or any client field.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from django.conf import settings

from custodia.wallet.config import AppleCredentials
from custodia.wallet.content import PassContent
from custodia.wallet.icon import icon_png

CONTENT_TYPE = "application/vnd.apple.pkpass"
BACKGROUND = "rgb(31, 95, 139)"
FOREGROUND = "rgb(255, 255, 255)"
LABEL = "rgb(214, 228, 240)"


def web_service_url() -> str:
    """Where devices ask for updates: `<public URL>/wallet/` (Apple adds `v1/...`)."""
    return f"{settings.PUBLIC_URL}/wallet/"


def pass_json(
    content: PassContent,
    *,
    serial: str,
    token: str,
    credentials: AppleCredentials,
) -> dict[str, Any]:
    """pass.json of a store card."""
    document: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": credentials.pass_type_id,
        "teamIdentifier": credentials.team_id,
        "serialNumber": serial,
        "authenticationToken": token,
        "webServiceURL": web_service_url(),
        "organizationName": content.business_name,
        "description": f"{content.pass_name}, {content.business_name}",
        "logoText": content.business_name,
        "backgroundColor": BACKGROUND,
        "foregroundColor": FOREGROUND,
        "labelColor": LABEL,
        "voided": content.voided,
        "sharingProhibited": True,
        "storeCard": {
            "primaryFields": [
                {
                    "key": "credits",
                    "label": content.credits_left_label,
                    "value": content.credits_left,
                    "changeMessage": f"{content.credits_left_label}: %@",
                }
            ],
            "secondaryFields": [{"key": "pass", "label": content.kind, "value": content.pass_name}],
            "auxiliaryFields": [
                {
                    "key": "expires",
                    "label": content.date_label,
                    "value": content.date,
                    "dateStyle": "PKDateStyleMedium",
                    "timeStyle": "PKDateStyleNone",
                },
                {
                    "key": "status",
                    "label": "Status",
                    "value": content.status,
                    "changeMessage": f"{content.kind} %@",
                },
            ],
            "backFields": [
                {
                    "key": "total",
                    "label": content.credits_total_label,
                    "value": content.credits_total,
                },
                {"key": "business", "label": "Issued by", "value": content.business_name},
            ],
        },
    }
    if content.expires_at is not None:
        # A membership that renews has none: Wallet would grey it out at its period's end.
        document["expirationDate"] = content.expires_at
    return document


def manifest_of(files: dict[str, bytes]) -> bytes:
    """manifest.json: each file's SHA-256 in hex."""
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    return json.dumps(sums, indent=2, sort_keys=True).encode()


def sign_manifest(manifest: bytes, credentials: AppleCredentials) -> bytes:
    """The detached PKCS#7 signature (DER) of manifest.json by the pass certificate, with the
    WWDR intermediate among its certificates."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(credentials.certificate, credentials.key, hashes.SHA256())
        .add_certificate(credentials.wwdr)
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )


def build_pkpass(
    content: PassContent,
    *,
    serial: str,
    token: str,
    credentials: AppleCredentials,
) -> bytes:
    """The signed .pkpass archive."""
    document = pass_json(content, serial=serial, token=token, credentials=credentials)
    files = {
        "pass.json": json.dumps(document, indent=2, ensure_ascii=False).encode(),
        "icon.png": icon_png(29),
        "icon@2x.png": icon_png(58),
        "logo.png": icon_png(50),
    }
    manifest = manifest_of(files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", manifest)
        archive.writestr("signature", sign_manifest(manifest, credentials))
    return buffer.getvalue()
