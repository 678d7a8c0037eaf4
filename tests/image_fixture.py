"""Hand-made image files for tests: good ones in both orientations, and every kind of bad one."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image


def jpeg(width: int, height: int, colour=(200, 40, 40), orientation: int = 1, quality: int = 90) -> bytes:
    """A JPEG whose stored pixels are ``width`` x ``height``; ``orientation`` goes into its EXIF."""
    image = Image.new("RGB", (width, height), colour)
    for x in range(0, width, 8):  # some edges, so the file is not trivially small
        image.paste((20, 20, 20), (x, 0, x + 2, height))
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def png(width: int, height: int, colour=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def write(folder: Path, relative: str, data: bytes) -> str:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return relative
