"""Visit photos are prepared as every photo is (clients/images.py, the lowest app that keeps
photos, so that pets' photos use it too)."""

from __future__ import annotations

from custodia.clients.images import (
    CONTENT_TYPE,
    MAX_UPLOAD_BYTES,
    THUMBNAIL_DIMENSION,
    PreparedPhoto,
    prepare_photo,
)

__all__ = [
    "CONTENT_TYPE",
    "MAX_UPLOAD_BYTES",
    "THUMBNAIL_DIMENSION",
    "PreparedPhoto",
    "prepare_photo",
]
