"""Photos for tests: made with Pillow here, never committed files."""

from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

GPS_MAKER = "ZqCameraMaker-5521"


def photo_bytes(
    size: tuple[int, int] = (1200, 900), *, fmt: str = "JPEG", with_location: bool = True
) -> bytes:
    """A striped test picture with EXIF camera make, orientation and a GPS position."""
    image = Image.new("RGB", size, (250, 250, 250))
    for x in range(0, size[0], 40):
        image.paste((200, 30, 30), (x, 0, x + 20, size[1]))
    out = io.BytesIO()
    if with_location and fmt == "JPEG":
        exif = Image.Exif()
        exif[0x010F] = GPS_MAKER  # Make
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = "N", (52.0, 22.0, 11.0)
        gps[3], gps[4] = "E", (4.0, 53.0, 22.0)
        image.save(out, format=fmt, exif=exif)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


def upload(data: bytes | None = None, name: str = "photo.jpg") -> SimpleUploadedFile:
    """A file as a browser's form sends it."""
    return SimpleUploadedFile(name, photo_bytes() if data is None else data, "image/jpeg")
