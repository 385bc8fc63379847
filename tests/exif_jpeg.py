"""A JPEG with an EXIF orientation tag, written byte by byte (no EXIF library needed)."""

import struct


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an APP1 Exif segment holding only the Orientation tag (0x0112), written by hand.

    TIFF little-endian header, one IFD with one entry (tag, type 3 = SHORT, count 1, value), no next IFD.
    """
    assert jpeg[:2] == b"\xff\xd8"
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
