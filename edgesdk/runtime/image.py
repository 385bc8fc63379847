"""Reading any image a user may hand over into one form: (H, W, 3) uint8 in a known channel order."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import IO, Any, Optional, Protocol, Tuple, TypeGuard, Union, cast

import cv2
import numpy as np

from edgesdk.errors import InputError


class PillowImage(Protocol):
    """What edgesdk uses of a ``PIL.Image.Image`` (duck-typed: the runtime never imports Pillow)."""

    @property
    def mode(self) -> str: ...

    @property
    def size(self) -> Tuple[int, int]: ...

    def convert(self, mode: str) -> Any: ...


# Encoded bytes and binary streams (an upload in a web server, io.BytesIO) are decoded
# like files, EXIF orientation included; a PIL image gives its pixels as they are.
ImageLike = Union[str, Path, np.ndarray, bytes, bytearray, memoryview, IO[bytes], PillowImage]

# ANYCOLOR|ANYDEPTH keeps gray as gray and 16-bit/float as such, drops alpha, and
# (unlike IMREAD_UNCHANGED) applies the EXIF orientation: a phone photo is
# processed as a viewer shows it, as training and `training.predict` read it.
READ_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


# JPEG start-of-frame markers: SOF0-3, 5-7, 9-11, 13-15 (C4 is DHT, C8 JPG, CC DAC).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def stored_size(data: Union[bytes, memoryview]) -> Optional[Tuple[int, int]]:
    """(width, height) from the header of a PNG, JPEG, GIF, BMP or WebP file, without decoding; None if unknown.

    What lets an oversized image be refused before it is decoded: a PNG of zeros a
    few MB long may hold gigapixels, and decoding is what takes the memory.

    References
    ----------
    PNG: ISO/IEC 15948 (IHDR); JPEG: ITU-T T.81, B.2.2 (frame header); GIF89a spec
    (logical screen descriptor); BMP: BITMAPINFOHEADER; WebP: RFC 9649.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 4 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # TEM, RSTn, SOI: no length
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if marker in _JPEG_SOF and i + 9 <= len(data):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            if marker == 0xDA or length < 2:  # start of scan before a frame header: malformed
                return None
            i += 2 + length
        return None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"BM" and len(data) >= 26:
        (header_size,) = struct.unpack("<I", data[14:18])
        if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
            return struct.unpack("<HH", data[18:22])
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)  # a negative height: rows stored top-down
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # the key frame's start code
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def check_pixels(width: int, height: int, where: str, max_pixels: Optional[int]) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (None: no limit)."""
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(
            f"{where}: {width}x{height} is above max_pixels={max_pixels}; raise the limit (--max-pixels on the "
            "command line) to process it in tiles"
        )


def to_uint8(a: np.ndarray, where: str) -> np.ndarray:
    """8-bit version of an 8/16-bit or [0, 1] float image."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return (a.astype(np.uint32) * 255 + 32767) // 65535  # exact rounding of a * 255 / 65535
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError(f"{where}: image contains NaN or infinite values")
        if a.min() < 0 or a.max() > 1:
            raise InputError(f"{where}: float images must be in [0, 1], got [{a.min():.3g}, {a.max():.3g}]")
        return np.round(a * 255)
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    raise InputError(f"{where}: unsupported image dtype {a.dtype} (uint8, uint16, float in [0, 1], bool)")


def to_three_channels(a: np.ndarray, where: str) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W, 3); alpha is dropped."""
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        if a.shape[2] == 1:
            return np.repeat(a, 3, axis=2)
        return a[:, :, :3]
    raise InputError(f"{where}: expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got shape {a.shape}")


def is_pillow_image(image: object) -> TypeGuard[PillowImage]:
    """Whether ``image`` looks like a ``PIL.Image.Image`` (without importing Pillow)."""
    return (isinstance(getattr(image, "mode", None), str) and callable(getattr(image, "convert", None))
            and hasattr(type(image), "__array_interface__"))  # the type's: the instance's would load the pixels


# Pillow modes whose pixels numpy reads as an array of a kind `to_uint8` takes, meaning what an
# array of that kind means: bilevel (bool), 8-bit gray, RGB, RGBA, float ([0, 1] or refused).
_PILLOW_AS_ARRAY = {"1", "L", "RGB", "RGBA", "F"}
# 16-bit gray in any byte order, and 32-bit integer gray (how Pillow < 10 opened 16-bit PNGs).
_PILLOW_SIXTEEN_BIT = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def pillow_pixels(image: PillowImage, where: str, max_pixels: Optional[int]) -> np.ndarray:
    """The pixels of a PIL image as an array `read_image` takes, RGB for color.

    The size is checked before the pixels are loaded (Pillow opens files lazily). Palette,
    gray+alpha, CMYK, YCbCr, LAB and HSV images are converted to RGB by Pillow (alpha dropped,
    as it is for files); the EXIF orientation is not applied (use ``PIL.ImageOps.exif_transpose``).
    """
    width, height = image.size
    check_pixels(width, height, where, max_pixels)
    mode = image.mode
    try:
        a = np.asarray(image if mode in _PILLOW_AS_ARRAY or mode in _PILLOW_SIXTEEN_BIT else image.convert("RGB"))
    except (OSError, ValueError) as exc:  # a truncated file Pillow opened lazily, a mode it cannot convert
        raise InputError(f"{where}: Pillow could not give its pixels ({exc})") from None
    if mode in _PILLOW_SIXTEEN_BIT:
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise InputError(f"{where}: integer pixels must be in [0, 65535], got [{a.min()}, {a.max()}]")
        return a.astype(np.uint16)
    return a


def decode(data: Union[bytes, bytearray, memoryview], where: str, max_pixels: Optional[int] = None) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ...) held in memory; one too large is refused from its header."""
    try:
        buf = np.frombuffer(data, np.uint8)
    except BufferError:  # a non-contiguous memoryview: copied out in its logical order
        buf = np.frombuffer(bytes(data), np.uint8)
    if buf.size == 0:
        raise InputError(f"{where}: empty (0 bytes)")
    size = stored_size(buf.data)  # a view, not a copy: the header walk reads only the first segments
    if size is not None:
        check_pixels(*size, where, max_pixels)
    a = cv2.imdecode(buf, READ_FLAGS)
    if a is None:
        raise InputError(f"{where}: not a readable image (OpenCV could not decode it)")
    return a


def read_image(image: ImageLike, color: str = "RGB", max_pixels: Optional[int] = None) -> tuple[np.ndarray, str, str]:
    """Load ``image`` as (H, W, 3) uint8; returns (pixels, their channel order, a name for messages).

    Parameters
    ----------
    image : path, ndarray, bytes, binary stream or PIL image
        A file OpenCV can read (8/16-bit, gray, color, alpha), turned as its
        EXIF orientation says (CIPA DC-008, tag 0x0112); the same encoded
        bytes in memory, or a stream opened in binary mode (read to its end);
        an array of pixels; or a ``PIL.Image.Image`` (its pixels as they are).
    color : {"RGB", "BGR"}
        Channel order of an array argument (encoded and PIL images are always read correctly).
    max_pixels : int, optional
        Refuse larger images; encoded ones (PNG, JPEG, GIF, BMP, WebP) from their
        header, before they are decoded.
    """
    if color not in ("RGB", "BGR"):  # checked for every input: a typo must not wait for the first array
        raise InputError(f"color must be 'RGB' or 'BGR', got {color!r}")
    encoded: Union[bytes, bytearray, memoryview] = b""
    pixels: Optional[np.ndarray] = None  # given as pixels (an array, a PIL image), else decoded below
    order = color
    if isinstance(image, (str, Path)):
        where = str(image)
        if not Path(image).is_file():
            raise InputError(f"{where}: no such file")
        try:
            encoded = Path(image).read_bytes()  # decoded as bytes are: one path, and the header seen first
        except OSError as exc:
            raise InputError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    elif isinstance(image, np.ndarray):
        where, pixels = f"array{image.shape}", image
    elif isinstance(image, (bytes, bytearray, memoryview)):
        size = image.nbytes if isinstance(image, memoryview) else len(image)
        where, encoded = f"{type(image).__name__} of {size} bytes", image
    elif is_pillow_image(image):
        filename = getattr(image, "filename", "")  # set when Pillow opened a file
        where = str(filename) if isinstance(filename, (str, Path)) and str(filename) else (
            f"{type(image).__name__}({image.size[0]}x{image.size[1]}, {image.mode})")
        pixels, order = pillow_pixels(image, where, max_pixels), "RGB"
    elif callable(getattr(image, "read", None)):
        name = getattr(image, "name", None)
        where = str(name) if isinstance(name, (str, Path)) else f"{type(image).__name__} stream"
        encoded = cast(IO[bytes], image).read()
        if not isinstance(encoded, (bytes, bytearray)):
            raise InputError(f"{where}: a stream must be opened in binary mode (its read() gave {type(encoded).__name__})")
    else:
        raise InputError(
            f"expected a path, a numpy array, encoded bytes, a binary stream or a PIL image, got {type(image).__name__}")
    if pixels is None:
        pixels, order = decode(encoded, where, max_pixels), "BGR"  # OpenCV's order for 3/4-channel images
    if pixels.size == 0 or min(pixels.shape[:2]) < 1:
        raise InputError(f"{where}: empty image (shape {pixels.shape})")
    check_pixels(pixels.shape[1], pixels.shape[0], where, max_pixels)
    pixels = to_three_channels(to_uint8(pixels, where), where).astype(np.uint8, copy=False)
    return np.ascontiguousarray(pixels), order, where
