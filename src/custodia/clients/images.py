"""Photos as Custodia keeps them (visits' photos, pets' photos): checked to be an image, turned
upright, re-encoded as a JPEG of at most MAX_DIMENSION pixels a side (which drops every metadata
block, EXIF location included), with a THUMBNAIL_DIMENSION thumbnail. Anything Pillow cannot
read as one of ACCEPTED is refused."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_DIMENSION = 2048
THUMBNAIL_DIMENSION = 320
# A small file can claim a huge canvas ("decompression bomb"): refused before decoding.
MAX_PIXELS = 50_000_000
# What phones and cameras send ("MPO" is a JPEG with a second picture, as some phones save).
ACCEPTED = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF"})
CONTENT_TYPE = "image/jpeg"
QUALITY = 85
THUMBNAIL_QUALITY = 80
NOT_AN_IMAGE = "This file is not a photo we can read (JPEG, PNG, WebP or GIF)."


@dataclass(frozen=True)
class PreparedPhoto:
    """The bytes to store: the re-encoded image and its thumbnail, both JPEG."""

    image: bytes
    thumbnail: bytes
    width: int
    height: int
    content_type: str = CONTENT_TYPE


def prepare_photo(data: bytes) -> PreparedPhoto:
    """`data` as Custodia keeps it, or ValidationError (too big, empty, not an image)."""
    if not data:
        raise ValidationError({"photo": "Choose a photo to upload."})
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError({"photo": "A photo may be at most 10 MB."})
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ACCEPTED:
                raise ValidationError({"photo": NOT_AN_IMAGE})
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise ValidationError({"photo": "This photo has too many pixels."})
            probe.verify()
        # verify() leaves the image unusable: open it again to decode it.
        with Image.open(io.BytesIO(data)) as source:
            source.seek(0)
            upright = ImageOps.exif_transpose(source)
            picture = _opaque_rgb(upright)
    except ValidationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise ValidationError({"photo": NOT_AN_IMAGE}) from None
    # Bicubic for the large image (cheaper than Lanczos, and alike at this mild a reduction);
    # Lanczos for the thumbnail, which is small and shrinks far.
    picture.thumbnail((MAX_DIMENSION, MAX_DIMENSION), Image.Resampling.BICUBIC)
    thumbnail = picture.copy()
    thumbnail.thumbnail((THUMBNAIL_DIMENSION, THUMBNAIL_DIMENSION), Image.Resampling.LANCZOS)
    return PreparedPhoto(
        image=_jpeg(picture, QUALITY),
        thumbnail=_jpeg(thumbnail, THUMBNAIL_QUALITY),
        width=picture.width,
        height=picture.height,
    )


def _opaque_rgb(image: Image.Image) -> Image.Image:
    """The picture as RGB, transparency laid on white (JPEG has no alpha)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    """A fresh JPEG: nothing is passed on but pixels (no EXIF, XMP, ICC or comment)."""
    # A new image from the pixels alone, so no `info` of the source can reach the encoder.
    clean = Image.frombytes("RGB", image.size, image.tobytes())
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()
