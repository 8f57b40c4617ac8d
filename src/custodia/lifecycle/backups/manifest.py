"""Signed manifests: what a backup (or an export) holds, signed with Ed25519 by the audit key.

A manifest file is `{"manifest": {...}, "signature": "<base64>"}`; the signature covers the
manifest's canonical JSON (sorted keys, no spaces), which names the signing key's id. The same
two functions sign and check database backups, keystore backups, drill records and exports.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custodia.audit.chain import ChainBroken, key_id, signing_key


class BackupError(Exception):
    """A backup could not be made, checked or restored; the message says what and where."""


def canonical(manifest: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def sign_manifest(manifest: Mapping[str, Any]) -> bytes:
    """The manifest file's bytes: `manifest` with the signing key's id, and its signature."""
    key = signing_key()
    signed = {**manifest, "signing_key_id": key_id(key.public_key())}
    signature = base64.b64encode(key.sign(canonical(signed))).decode()
    return json.dumps({"manifest": signed, "signature": signature}, indent=2).encode() + b"\n"


def public_key() -> Ed25519PublicKey:
    """The key manifests are checked with (ChainBroken if this host has none)."""
    return signing_key(create=False).public_key()


def verify_manifest(
    content: bytes,
    *,
    expected_format: str | None = None,
    public: Ed25519PublicKey | None = None,
) -> tuple[dict[str, Any], str | None]:
    """A manifest file's content and what is wrong with it (None: signed by this install's key,
    unaltered, and of `expected_format` when one is given). Give `public` (`public_key()`) to
    check many without reading the key file each time."""
    try:
        document = json.loads(content)
        manifest = document["manifest"]
        signature = base64.b64decode(document["signature"], validate=True)
        if not isinstance(manifest, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return {}, "the manifest is unreadable"
    if public is None:
        try:
            public = public_key()
        except ChainBroken as exc:
            return manifest, str(exc)
    if manifest.get("signing_key_id") != key_id(public):
        return manifest, "the manifest is signed by another key"
    try:
        public.verify(signature, canonical(manifest))
    except InvalidSignature:
        return manifest, "the manifest's signature does not match: it was altered"
    if expected_format is not None and manifest.get("format") != expected_format:
        return manifest, f"unknown backup format {manifest.get('format')!r}"
    return manifest, None
