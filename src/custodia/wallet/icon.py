"""The pass's icon: Custodia's favicon (static/favicon.svg, a white shield on a blue rounded
square) drawn as a PNG with the standard library, at Apple's 29 px and 58 px (@2x)."""

from __future__ import annotations

import functools
import struct
import zlib

BLUE = (0x1F, 0x5F, 0x8B)
WHITE = (0xFF, 0xFF, 0xFF)
# The favicon's shield in its 32-unit box, its two curves flattened into points.
SHIELD = [
    (16.0, 6.0),
    (24.0, 9.0),
    (24.0, 15.0),
    (23.4, 18.6),
    (21.6, 21.8),
    (19.0, 24.4),
    (16.0, 26.0),
    (13.0, 24.4),
    (10.4, 21.8),
    (8.6, 18.6),
    (8.0, 15.0),
    (8.0, 9.0),
]
CORNER = 6.0


def _inside(x: float, y: float, polygon: list[tuple[float, float]]) -> bool:
    inside = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _in_rounded_square(x: float, y: float) -> bool:
    cx = min(max(x, CORNER), 32 - CORNER)
    cy = min(max(y, CORNER), 32 - CORNER)
    return (x - cx) ** 2 + (y - cy) ** 2 <= CORNER**2


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@functools.cache
def icon_png(size: int) -> bytes:
    """The icon as an RGBA PNG of `size` × `size` pixels."""
    rows = []
    scale = 32 / size
    for row in range(size):
        line = bytearray(b"\x00")  # filter type: none
        for column in range(size):
            x, y = (column + 0.5) * scale, (row + 0.5) * scale
            if not _in_rounded_square(x, y):
                line += bytes((0, 0, 0, 0))
            elif _inside(x, y, SHIELD):
                line += bytes((*WHITE, 255))
            else:
                line += bytes((*BLUE, 255))
        rows.append(bytes(line))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
