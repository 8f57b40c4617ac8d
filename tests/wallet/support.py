"""Reading and checking .pkpass archives in the wallet tests."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any


def files_of(pkpass: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(pkpass)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pass_json(pkpass: bytes) -> dict[str, Any]:
    return json.loads(files_of(pkpass)["pass.json"])  # type: ignore[no-any-return]


def manifest_matches(files: dict[str, bytes]) -> bool:
    """Every file but the manifest and signature is in the manifest with its SHA-256, and
    nothing else is."""
    manifest = json.loads(files["manifest.json"])
    listed = {name for name in files if name not in ("manifest.json", "signature")}
    return set(manifest) == listed and all(
        manifest[name] == hashlib.sha256(files[name]).hexdigest() for name in listed
    )


def openssl_verifies(files: dict[str, bytes], ca_file: Path, workdir: Path) -> bool:
    """`openssl smime -verify` of the detached signature over manifest.json, trusting `ca_file`."""
    (workdir / "manifest.json").write_bytes(files["manifest.json"])
    (workdir / "signature").write_bytes(files["signature"])
    result = subprocess.run(  # noqa: S603
        [  # noqa: S607
            "openssl",
            "smime",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-content",
            str(workdir / "manifest.json"),
            "-CAfile",
            str(ca_file),
            "-in",
            str(workdir / "signature"),
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode == 0


def manifest_of_files(files: dict[str, bytes]) -> bytes:
    """A manifest made anew for these files (what a forger would write)."""
    listed = {n: d for n, d in files.items() if n not in ("manifest.json", "signature")}
    return json.dumps(
        {n: hashlib.sha256(d).hexdigest() for n, d in sorted(listed.items())}
    ).encode()
