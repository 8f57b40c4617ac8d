"""An Apple Wallet pass (`.pkpass`): a zip of pass.json, the icons, manifest.json (the SHA-256
of every other file) and `signature`, a detached PKCS#7 (CMS) signature of manifest.json by the
pass certificate, carrying Apple's WWDR intermediate (docs/wallet.md).

What a pass shows is what the portal's pass page shows: the business's name, the pass's name,
credits left and in all, its expiry and status. Never the client's name or any client field.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from django.conf import settings

from custodia.payments.models import ClientPass, PassStatus
from custodia.wallet.config import AppleCredentials
from custodia.wallet.icon import icon_png

CONTENT_TYPE = "application/vnd.apple.pkpass"
BACKGROUND = "rgb(31, 95, 139)"
FOREGROUND = "rgb(255, 255, 255)"
LABEL = "rgb(214, 228, 240)"
STATUS_LABELS = {
    PassStatus.ACTIVE: "Active",
    PassStatus.USED_UP: "Used up",
    PassStatus.EXPIRED: "Expired",
    PassStatus.VOID: "Void",
}


@dataclass(frozen=True)
class PassContent:
    """What a wallet pass shows, and nothing more (shared by Apple's and Google's)."""

    business_name: str
    pass_name: str
    credits_left: int
    credits_total: int
    expires_at: str  # ISO 8601
    status: str

    @classmethod
    def of(cls, client_pass: ClientPass, business_name: str) -> PassContent:
        return cls(
            business_name=business_name,
            pass_name=client_pass.name,
            credits_left=client_pass.credits_left,
            credits_total=client_pass.credits_total,
            expires_at=client_pass.expires_at.isoformat(),
            status=STATUS_LABELS.get(PassStatus(client_pass.status), client_pass.status),
        )


def web_service_url() -> str:
    """Where devices ask for updates: `<public URL>/wallet/` (Apple adds `v1/...`)."""
    return f"{settings.PUBLIC_URL}/wallet/"


def pass_json(
    content: PassContent,
    *,
    serial: str,
    token: str,
    credentials: AppleCredentials,
    voided: bool,
) -> dict[str, Any]:
    """pass.json of a store card."""
    return {
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
        "expirationDate": content.expires_at,
        "voided": voided,
        "sharingProhibited": True,
        "storeCard": {
            "primaryFields": [
                {
                    "key": "credits",
                    "label": "Credits left",
                    "value": content.credits_left,
                    "changeMessage": "Credits left: %@",
                }
            ],
            "secondaryFields": [{"key": "pass", "label": "Pass", "value": content.pass_name}],
            "auxiliaryFields": [
                {
                    "key": "expires",
                    "label": "Expires",
                    "value": content.expires_at,
                    "dateStyle": "PKDateStyleMedium",
                    "timeStyle": "PKDateStyleNone",
                },
                {
                    "key": "status",
                    "label": "Status",
                    "value": content.status,
                    "changeMessage": "Pass %@",
                },
            ],
            "backFields": [
                {"key": "total", "label": "Credits in all", "value": content.credits_total},
                {"key": "business", "label": "Issued by", "value": content.business_name},
            ],
        },
    }


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
    voided: bool = False,
) -> bytes:
    """The signed .pkpass archive."""
    document = pass_json(
        content, serial=serial, token=token, credentials=credentials, voided=voided
    )
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
