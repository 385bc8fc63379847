"""The image formats edgesdk reads: their file suffixes, signatures, and what each header declares.

One list decides which files are images (a folder given to ``edgesdk detect``),
which encoded inputs are decoded at all, and how each is decoded. Everything
else is refused before a decoder sees it: a header is what lets an oversized
image be refused before it is decoded (a PNG of zeros a few MB long may hold
gigapixels, and decoding is what takes the memory), so a format whose header
edgesdk cannot read is not handed to a decoder.

References
----------
PNG: ISO/IEC 15948 (IHDR, eXIf); JPEG: ITU-T T.81, B.2.2 (frame header); GIF89a
(logical screen descriptor); BMP: BITMAPINFOHEADER / BITMAPCOREHEADER; WebP:
RFC 9649; TIFF 6.0 (image file directory) and BigTIFF; Netpbm (PBM, PGM, PPM);
EXIF: CIPA DC-008 (orientation, tag 0x0112).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from edgesdk.errors import InputError

# fetch(offset, n) -> up to n bytes of the encoded image from ``offset`` (fewer at its end).
Fetch = Callable[[int, int], bytes]


@dataclass(frozen=True)
class ImageFormat:
    """An encoded image format edgesdk reads.

    Attributes
    ----------
    name : str
    suffixes : tuple of str
        File suffixes (lower case) that mark a file as this format's in a folder.
    alpha : bool
        Decoded with its alpha channel, which is composited over the background
        (BMP is not: its fourth byte is unused padding in most 32-bit files).
    own_orientation : bool
        edgesdk applies the EXIF orientation itself (OpenCV applies it only when it
        drops the alpha channel); False where OpenCV applies it (JPEG, TIFF) or the
        format has none.
    """

    name: str
    suffixes: Tuple[str, ...]
    alpha: bool = False
    own_orientation: bool = False


PNG = ImageFormat("PNG", (".png",), alpha=True, own_orientation=True)
JPEG = ImageFormat("JPEG", (".jpg", ".jpeg", ".jpe"))
GIF = ImageFormat("GIF", (".gif",), alpha=True)
BMP = ImageFormat("BMP", (".bmp", ".dib"))
WEBP = ImageFormat("WebP", (".webp",), alpha=True, own_orientation=True)
TIFF = ImageFormat("TIFF", (".tif", ".tiff"), alpha=True)
PNM = ImageFormat("PNM", (".pbm", ".pgm", ".ppm", ".pnm"))
FORMATS = (PNG, JPEG, GIF, BMP, WEBP, TIFF, PNM)
SUFFIXES = frozenset(s for f in FORMATS for s in f.suffixes)


def names() -> str:
    """The readable formats, for messages: "PNG, JPEG, ..."."""
    return ", ".join(f.name for f in FORMATS)


@dataclass(frozen=True)
class Header:
    """What an encoded image's header says: its format, its stored size and its EXIF orientation (1-8)."""

    format: ImageFormat
    width: int
    height: int
    orientation: int = 1


class NeedMore(Exception):
    """The header reaches past the bytes available so far (a stream still being read)."""


# Bytes an encoded image may take per pixel it declares, at most: 4 channels of 64-bit
# floats, uncompressed (TIFF); and room for metadata (ICC profiles, EXIF, thumbnails).
MAX_BYTES_PER_PIXEL = 32
METADATA_BYTES = 64 << 20


def max_encoded_bytes(width: int, height: int) -> int:
    """The most bytes an encoded ``width`` x ``height`` image can take: more is not an image of that size."""
    return MAX_BYTES_PER_PIXEL * width * height + METADATA_BYTES


def _need(fetch: Fetch, offset: int, n: int, size: Optional[int]) -> bytes:
    """Exactly ``n`` bytes at ``offset``; NeedMore if they are not there yet, malformed if never."""
    data = fetch(offset, n)
    if len(data) < n:
        if size is None or offset + n <= size:
            raise NeedMore(offset + n)
        raise ValueError("the header ends early")
    return data


# JPEG start-of-frame markers: SOF0-3, 5-7, 9-11, 13-15 (C4 is DHT, C8 JPG, CC DAC).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


# Segments or chunks a header walk visits at most (real files have tens; a million tiny ones is an attack).
MAX_SEGMENTS = 1 << 16


def _next_step(steps: int, offset: int) -> int:
    """One more step of a header walk, at ``offset``: refused past METADATA_BYTES or MAX_SEGMENTS steps."""
    if offset > METADATA_BYTES:
        raise ValueError(f"no image data in the first {METADATA_BYTES >> 20} MB")
    if steps >= MAX_SEGMENTS:
        raise ValueError(f"more than {MAX_SEGMENTS} segments before the image data")
    return steps + 1


def _jpeg(fetch: Fetch, size: Optional[int]) -> Tuple[int, int, int]:
    i, steps = 2, 0
    while True:
        steps = _next_step(steps, i)
        head = _need(fetch, i, 2, size)
        if head[0] != 0xFF:
            raise ValueError("a marker was expected")
        marker = head[1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # TEM, RSTn, SOI: no length
            i += 2
            continue
        (length,) = struct.unpack(">H", _need(fetch, i + 2, 2, size))
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", _need(fetch, i + 5, 4, size))
            return width, height, 1  # OpenCV applies the EXIF orientation of a JPEG itself
        if marker == 0xDA or length < 2:  # a scan before any frame header
            raise ValueError("no frame header before the first scan")
        i += 2 + length


def _tiff_ifd0(fetch: Fetch, base: int, size: Optional[int], tags: Tuple[int, ...]) -> dict:
    """The values of ``tags`` (SHORT/LONG/LONG8, first value) in the first IFD of the TIFF structure at ``base``."""
    order = _need(fetch, base, 4, size)
    if order[:2] == b"II":
        e = "<"
    elif order[:2] == b"MM":
        e = ">"
    else:
        raise ValueError("not a TIFF byte order")
    (version,) = struct.unpack(e + "H", order[2:4])
    if version == 42:
        (ifd,) = struct.unpack(e + "I", _need(fetch, base + 4, 4, size))
        count_fmt, entry_fmt, entry_size, count_size = "H", "HHI4s", 12, 2
    elif version == 43:  # BigTIFF
        (ifd,) = struct.unpack(e + "Q", _need(fetch, base + 8, 8, size))
        count_fmt, entry_fmt, entry_size, count_size = "Q", "HHQ8s", 20, 8
    else:
        raise ValueError("not a TIFF version")
    (n,) = struct.unpack(e + count_fmt, _need(fetch, base + ifd, count_size, size))
    if n > 4096:
        raise ValueError("an implausible directory")
    entries = _need(fetch, base + ifd + count_size, n * entry_size, size)
    found = {}
    for k in range(n):
        tag, kind, _, value = struct.unpack(e + entry_fmt, entries[k * entry_size : (k + 1) * entry_size])
        if tag in tags:
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt is None:
                raise ValueError(f"tag {tag} has type {kind}")
            found[tag] = struct.unpack(e + fmt, value[: struct.calcsize(fmt)])[0]
    return found


def _exif_orientation(fetch: Fetch, base: int, size: Optional[int]) -> int:
    """The Orientation (1-8) of an EXIF block (a TIFF structure) at ``base``; 1 if absent or unreadable."""
    try:
        value = _tiff_ifd0(fetch, base, size, (0x0112,)).get(0x0112, 1)
    except (ValueError, struct.error):
        return 1  # a broken EXIF block is ignored, as OpenCV ignores it
    return value if 1 <= value <= 8 else 1


def _tiff(fetch: Fetch, size: Optional[int]) -> Tuple[int, int, int]:
    tags = _tiff_ifd0(fetch, 0, size, (256, 257))
    if 256 not in tags or 257 not in tags:
        raise ValueError("the first directory has no ImageWidth/ImageLength")
    return tags[256], tags[257], 1  # OpenCV's TIFF decoder applies the orientation itself


def _png(fetch: Fetch, size: Optional[int]) -> Tuple[int, int, int]:
    width, height = struct.unpack(">II", _need(fetch, 16, 8, size))
    # The eXIf chunk, where OpenCV's decoder reads it: before the first IDAT. A file that
    # ends before then is the decoder's to refuse; its size is known already.
    i, steps = 8, 0
    try:
        while True:
            steps = _next_step(steps, i)
            length, kind = struct.unpack(">I4s", _need(fetch, i, 8, size))
            if kind in (b"IDAT", b"IEND"):
                return width, height, 1
            if kind == b"eXIf":
                return width, height, _exif_orientation(fetch, i + 8, size)
            i += 12 + length
    except ValueError:
        return width, height, 1


def _webp(fetch: Fetch, size: Optional[int]) -> Tuple[int, int, int]:
    chunk = _need(fetch, 12, 18, size)
    kind = chunk[:4]
    if kind == b"VP8X":
        width = int.from_bytes(chunk[12:15], "little") + 1
        height = int.from_bytes(chunk[15:18], "little") + 1
    elif kind == b"VP8 " and chunk[11:14] == b"\x9d\x01\x2a":  # the key frame's start code
        w, h = struct.unpack("<HH", chunk[14:18])
        width, height = w & 0x3FFF, h & 0x3FFF
    elif kind == b"VP8L" and chunk[8] == 0x2F:
        bits = int.from_bytes(chunk[9:13], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    else:
        raise ValueError("no VP8X, VP8 or VP8L chunk first")
    if kind != b"VP8X" or not chunk[8] & 0x08:  # only an extended file has an EXIF chunk (flag E)
        return width, height, 1
    (riff_size,) = struct.unpack("<I", _need(fetch, 4, 4, size))
    i, steps = 12, 0
    try:
        while i + 8 <= riff_size + 8:
            steps = _next_step(steps, i)
            name, length = struct.unpack("<4sI", _need(fetch, i, 8, size))
            if name == b"EXIF":
                start = i + 8
                if fetch(start, 6) == b"Exif\x00\x00":  # some writers keep the JPEG APP1 prefix
                    start += 6
                return width, height, _exif_orientation(fetch, start, size)
            i += 8 + length + (length & 1)
    except ValueError:  # the file ends early: the decoder's to refuse
        pass
    return width, height, 1


def _bmp(fetch: Fetch, size: Optional[int]) -> Tuple[int, int, int]:
    (header_size,) = struct.unpack("<I", _need(fetch, 14, 4, size))
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        w, h = struct.unpack("<HH", _need(fetch, 18, 4, size))
        return w, h, 1
    w, h = struct.unpack("<ii", _need(fetch, 18, 8, size))
    return abs(w), abs(h), 1  # a negative height: rows stored top-down


def _pnm(fetch: Fetch, size: Optional[int]) -> Tuple[int, int, int]:
    # "P5 <w> <h> ...": whitespace-separated numbers, '#' comments to the end of a line.
    numbers: list = []
    i, token, comment = 2, b"", False
    while len(numbers) < 2:
        if i > 4096:
            raise ValueError("no size in the first 4 KB")
        c = _need(fetch, i, 1, size)
        i += 1
        if comment:
            comment = c not in b"\r\n"
        elif c == b"#":
            comment = True
        elif c.isdigit():
            token += c
        elif c in b" \t\r\n\x0b\x0c":
            if token:
                numbers.append(int(token))
                token = b""
        else:
            raise ValueError("a size was expected")
    return numbers[0], numbers[1], 1


def _sniff(head: bytes) -> Optional[Tuple[ImageFormat, Callable[[Fetch, Optional[int]], Tuple[int, int, int]]]]:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return PNG, _png
    if head[:2] == b"\xff\xd8":
        return JPEG, _jpeg
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF, lambda fetch, size: (*struct.unpack("<HH", _need(fetch, 6, 4, size)), 1)
    if head[:2] == b"BM":
        return BMP, _bmp
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP, _webp
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TIFF, _tiff
    if head[:1] == b"P" and head[1:2] in b"123456" and len(head) > 2 and head[2:3] in b" \t\r\n#":
        return PNM, _pnm
    return None


def read_header(fetch: Fetch, size: Optional[int], where: str) -> Header:
    """The format, stored size and EXIF orientation of an encoded image, from its header alone.

    Parameters
    ----------
    fetch : callable
        ``fetch(offset, n)`` returns up to ``n`` bytes of the image from ``offset``.
    size : int or None
        The image's length in bytes; None while a stream is still being read
        (then :class:`NeedMore` says how far the header reaches).
    where : str
        The input's name, for messages.

    Raises
    ------
    InputError
        Not a format edgesdk reads, or a header that cannot be read.
    """
    head = fetch(0, 16)
    if size is None and len(head) < 16:
        raise NeedMore(16)
    if not head:
        raise InputError(f"{where}: empty (0 bytes)")
    found = _sniff(head)
    if found is None:
        raise InputError(f"{where}: not a readable image (not a format edgesdk reads: {names()})")
    fmt, parse = found
    try:
        width, height, orientation = parse(fetch, size)
    except (ValueError, struct.error) as exc:
        raise InputError(f"{where}: not a readable image (its {fmt.name} header: {exc})") from None
    if width < 1 or height < 1:
        raise InputError(f"{where}: its {fmt.name} header declares an empty image ({width}x{height})")
    return Header(fmt, width, height, orientation)


def header_of_bytes(data: bytes | bytearray | memoryview, where: str) -> Header:
    """:func:`read_header` of an encoded image held in memory."""
    view = memoryview(data).cast("B")
    return read_header(lambda offset, n: bytes(view[offset : offset + n]), len(view), where)
