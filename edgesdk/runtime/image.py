"""Reading any image a user may hand over into one form: (H, W, 3) uint8 in a known channel order.

Memory is bounded before anything is decoded or copied: an encoded image's size is
read from its header (:mod:`edgesdk.formats`) and refused above ``max_pixels``, a
file larger than any image of that size could be is refused from its length, a
stream is read only up to that length. Transparent pixels are composited over a
background (white by default), as image viewers show them; pixel conversions run
in bands of rows, so no full-size temporary is wider than the result.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Any, Callable, Optional, Protocol, Sequence, Tuple, TypeGuard, Union, cast

import cv2
import numpy as np

from edgesdk import formats
from edgesdk import io as fileio
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

# An RGB colour, 0-255 per channel: what transparent pixels are composited over.
Background = Tuple[int, int, int]
WHITE: Background = (255, 255, 255)

# ANYCOLOR|ANYDEPTH keeps gray as gray and 16-bit/float as such, drops alpha, and
# (unlike IMREAD_UNCHANGED) applies the EXIF orientation: a phone photo is
# processed as a viewer shows it, as training and `training.predict` read it.
# Formats that may carry alpha are decoded with IMREAD_UNCHANGED instead, and turned here.
READ_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH

# Pixel conversions work on bands of this many pixels, so their temporaries stay small.
_BAND_PIXELS = 1 << 20


def check_pixels(width: int, height: int, where: str, max_pixels: Optional[int]) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (None: no limit)."""
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(
            f"{where}: {width}x{height} is above max_pixels={max_pixels}; raise the limit (--max-pixels on the "
            "command line) to process it in tiles"
        )


def _by_rows(a: np.ndarray, channels: int, dtype, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn`` applied to bands of rows of ``a`` into a new (H, W, channels) array of ``dtype``."""
    h, w = a.shape[:2]
    out = np.empty((h, w, channels), dtype)
    step = max(1, _BAND_PIXELS // max(w, 1))
    for y in range(0, h, step):
        out[y : y + step] = fn(a[y : y + step])
    return out


def _check_float(a: np.ndarray, where: str) -> None:
    if not np.isfinite(a).all():
        raise InputError(f"{where}: image contains NaN or infinite values")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise InputError(f"{where}: float images must be in [0, 1], got [{a.min():.3g}, {a.max():.3g}]")


def to_uint8(a: np.ndarray, where: str) -> np.ndarray:
    """8-bit version of an 8/16-bit or [0, 1] float image (any number of channels)."""
    if a.dtype == np.uint8:
        return a
    b = a if a.ndim == 3 else a[:, :, None]
    if a.dtype == np.uint16:
        out = _by_rows(b, b.shape[2], np.uint8, lambda r: (r.astype(np.uint32) * 255 + 32767) // 65535)
    elif np.issubdtype(a.dtype, np.floating):
        _check_float(a, where)
        out = _by_rows(b, b.shape[2], np.uint8, lambda r: np.round(r * 255))  # in the image's own precision
    elif a.dtype == np.bool_:
        out = _by_rows(b, b.shape[2], np.uint8, lambda r: r.astype(np.uint8) * 255)
    else:
        raise InputError(f"{where}: unsupported image dtype {a.dtype} (uint8, uint16, float in [0, 1], bool)")
    return out if a.ndim == 3 else out[:, :, 0]


def composite(a: np.ndarray, background: Background, order: str, where: str) -> np.ndarray:
    """An (H, W, 4) or gray+alpha (H, W, 2) image over ``background`` -> (H, W, 3), same dtype.

    ``out = colour * alpha + background * (1 - alpha)``, rounded to the nearest level for
    integer images (alpha 0 shows the background, full alpha the colour unchanged).
    """
    kind: Any
    if a.dtype == np.uint8:
        full, kind = 255, np.uint16  # c*a + b*(255-a) <= 65025
    elif a.dtype == np.uint16:
        full, kind = 65535, np.uint32  # <= 65535**2 < 2**32
    elif np.issubdtype(a.dtype, np.floating):
        _check_float(a, where)
        full, kind = 1, a.dtype
    else:
        raise InputError(f"{where}: unsupported image dtype {a.dtype} (uint8, uint16, float in [0, 1], bool)")
    bg = np.array(background if order == "RGB" else background[::-1], np.float64) / 255 * full
    bg = (np.round(bg) if full > 1 else bg).astype(kind)

    def band(rows: np.ndarray) -> np.ndarray:
        color = rows[:, :, :-1].astype(kind)
        if color.shape[2] == 1:
            color = np.repeat(color, 3, axis=2)
        alpha = rows[:, :, -1:].astype(kind)
        if full == 1:
            return color * alpha + bg * (1 - alpha)
        return (color * alpha + bg * (full - alpha) + full // 2) // full

    return _by_rows(a, 3, a.dtype, band)


def to_three_channels(a: np.ndarray, where: str) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) -> (H, W, 3) (alpha is composited first: :func:`composite`)."""
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim == 3 and a.shape[2] == 1:
        return np.repeat(a, 3, axis=2)
    if a.ndim == 3 and a.shape[2] == 3:
        return a
    raise InputError(f"{where}: expected an (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4) image, got shape {a.shape}")


# EXIF orientation as OpenCV's ApplyExifOrientation turns a decoded image (CIPA DC-008).
_ORIENT: dict = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.flip(a, -1),
    4: lambda a: cv2.flip(a, 0),
    5: lambda a: cv2.transpose(a),
    6: lambda a: cv2.flip(cv2.transpose(a), 1),
    7: lambda a: cv2.flip(cv2.transpose(a), -1),
    8: lambda a: cv2.flip(cv2.transpose(a), 0),
}


def orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a decoded image as its EXIF ``orientation`` (1-8) says, as a viewer shows it."""
    turn = _ORIENT.get(orientation)
    if turn is None:
        return a
    if a.ndim == 3 and a.shape[2] > 4:  # pragma: no cover - OpenCV's flip takes up to 4 channels
        raise InputError(f"cannot turn an image of {a.shape[2]} channels")
    return turn(a)


def is_pillow_image(image: object) -> TypeGuard[PillowImage]:
    """Whether ``image`` looks like a ``PIL.Image.Image`` (without importing Pillow)."""
    return (isinstance(getattr(image, "mode", None), str) and callable(getattr(image, "convert", None))
            and hasattr(type(image), "__array_interface__"))  # the type's: the instance's would load the pixels


# Pillow modes whose pixels numpy reads as an array of a kind `to_uint8` takes, meaning what an
# array of that kind means: bilevel (bool), 8-bit gray, RGB, RGBA, float ([0, 1] or refused).
_PILLOW_AS_ARRAY = {"1", "L", "RGB", "RGBA", "F"}
# 16-bit gray in any byte order, and 32-bit integer gray (how Pillow < 10 opened 16-bit PNGs).
_PILLOW_SIXTEEN_BIT = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
# Modes with an alpha channel, converted to RGBA to be composited.
_PILLOW_ALPHA = {"LA", "La", "PA", "RGBa"}


def pillow_pixels(image: PillowImage, where: str, max_pixels: Optional[int]) -> np.ndarray:
    """The pixels of a PIL image as an array `read_image` takes, RGB(A) for color.

    The size is checked before the pixels are loaded (Pillow opens files lazily). Images
    with transparency (an alpha channel, or a transparent palette entry or colour) come as
    RGBA, to be composited; palette, CMYK, YCbCr, LAB and HSV images are converted to RGB by
    Pillow; the EXIF orientation is not applied (use ``PIL.ImageOps.exif_transpose``).
    """
    width, height = image.size
    check_pixels(width, height, where, max_pixels)
    mode = image.mode
    info = getattr(image, "info", None)
    transparent = mode in _PILLOW_ALPHA or (isinstance(info, dict) and "transparency" in info)
    try:
        if transparent and mode != "RGBA":
            a = np.asarray(image.convert("RGBA"))
        elif mode in _PILLOW_AS_ARRAY or mode in _PILLOW_SIXTEEN_BIT:
            a = np.asarray(image)
        else:
            a = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:  # a truncated file Pillow opened lazily, a mode it cannot convert
        raise InputError(f"{where}: Pillow could not give its pixels ({exc})") from None
    if mode in _PILLOW_SIXTEEN_BIT and not transparent:
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise InputError(f"{where}: integer pixels must be in [0, 65535], got [{a.min()}, {a.max()}]")
        return a.astype(np.uint16)
    return a


def _finish_decoded(a: Optional[np.ndarray], header: formats.Header, where: str) -> np.ndarray:
    if a is None:
        raise InputError(f"{where}: not a readable image (OpenCV could not decode it)")
    if header.format.own_orientation:
        a = orient(a, header.orientation)
    return a


def _flags(header: formats.Header) -> int:
    return cv2.IMREAD_UNCHANGED if header.format.alpha else READ_FLAGS


def decode(data: Union[bytes, bytearray, memoryview], where: str, max_pixels: Optional[int] = None) -> np.ndarray:
    """Decode an encoded image held in memory (BGR(A) as OpenCV gives it); one too large is refused from its header."""
    try:
        buf = np.frombuffer(data, np.uint8)
    except (BufferError, ValueError):  # a memoryview that is not contiguous: copied out in its logical order
        buf = np.frombuffer(bytes(data), np.uint8)
    if buf.size == 0:
        raise InputError(f"{where}: empty (0 bytes)")
    header = formats.header_of_bytes(buf.data, where)
    check_pixels(header.width, header.height, where, max_pixels)
    return _finish_decoded(cv2.imdecode(buf, _flags(header)), header, where)


def read_file(path: Union[str, os.PathLike], where: str, max_pixels: Optional[int]) -> np.ndarray:
    """Decode an image file: its header and length checked first, then decoded through its descriptor."""
    a, header = fileio.decode_image_file(path, where, _flags, max_pixels)
    return _finish_decoded(a, header, where)


def read_stream(stream: IO[bytes], where: str, max_pixels: Optional[int]) -> bytes:
    """Read an encoded image from a stream: no further than its header's size allows, refused early if too large."""
    data = bytearray()
    # Until the header says the size: as much as the largest image allowed may take (a TIFF's
    # header may sit at its end).
    limit = formats.max_encoded_bytes(max_pixels, 1) if max_pixels is not None else sys.maxsize
    need = 16
    header = None
    while True:
        if header is None and len(data) >= need:
            try:
                header = formats.read_header(lambda offset, n: bytes(data[offset : offset + n]), None, where)
            except formats.NeedMore as more:
                need = more.args[0]
            else:
                check_pixels(header.width, header.height, where, max_pixels)
                limit = formats.max_encoded_bytes(header.width, header.height)
        chunk = stream.read(1 << 20)
        if not isinstance(chunk, (bytes, bytearray)):
            raise InputError(f"{where}: a stream must be opened in binary mode (its read() gave {type(chunk).__name__})")
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            what = f"a {header.width}x{header.height} {header.format.name} image" if header else "an image header"
            raise InputError(f"{where}: more than {limit} bytes, more than {what} can take")


def rgb_triple(value: Any) -> Optional[Background]:
    """``value`` as an (R, G, B) of integers 0-255 if it is three of them (a tuple, list or array), else None."""
    from edgesdk.arguments import is_int

    if isinstance(value, (tuple, list, np.ndarray)) and len(value) == 3 and all(is_int(v, 0) and v <= 255 for v in value):
        return tuple(int(v) for v in value)  # type: ignore[return-value]
    return None


def check_background(value: Any) -> Background:
    """``value`` as an RGB background: a gray level 0-255 or three of them; otherwise an InputError."""
    from edgesdk.arguments import is_int

    if is_int(value, 0) and value <= 255:
        return (int(value),) * 3  # type: ignore[return-value]
    rgb = rgb_triple(value)
    if rgb is not None:
        return rgb
    raise InputError(f"background must be a gray level 0-255 or an (R, G, B) of them, got {value!r}")


def read_image(
    image: ImageLike, color: str = "BGR", max_pixels: Optional[int] = None, background: Sequence[int] = WHITE,
) -> tuple[np.ndarray, str, str]:
    """Load ``image`` as (H, W, 3) uint8; returns (pixels, their channel order, a name for messages).

    Parameters
    ----------
    image : path, ndarray, bytes, binary stream or PIL image
        A file in a format of :mod:`edgesdk.formats` (8/16-bit, gray, color, alpha),
        turned as its EXIF orientation says (CIPA DC-008, tag 0x0112); the same encoded
        bytes in memory, or a stream opened in binary mode (read to its end); an array
        of pixels; or a ``PIL.Image.Image`` (its pixels as they are).
    color : {"BGR", "RGB"}
        Channel order of an array argument: BGR(A) by default, as ``cv2.imread`` and
        ``cv2.VideoCapture`` give them (OpenCV's convention, Ultralytics' too); "RGB" for
        arrays from Pillow, imageio or matplotlib. Encoded and PIL images are always read
        correctly whatever it says.
    max_pixels : int, optional
        Refuse larger images; encoded ones from their header, before they are decoded.
    background : (R, G, B)
        What transparent pixels are composited over (white by default, as viewers show them).
    """
    if color not in ("RGB", "BGR"):  # checked for every input: a typo must not wait for the first array
        raise InputError(f"color must be 'RGB' or 'BGR', got {color!r}")
    bg = check_background(background)
    pixels: Optional[np.ndarray] = None
    order = color
    if isinstance(image, (str, os.PathLike)) and not isinstance(image, (bytes, bytearray)):
        where = os.fsdecode(image)
        pixels, order = read_file(image, where, max_pixels), "BGR"
    elif isinstance(image, np.ndarray):
        where, pixels = f"array{image.shape}", image
        if image.ndim not in (2, 3):
            raise InputError(f"{where}: expected an (H, W) or (H, W, C) image, got {image.ndim} dimensions")
    elif isinstance(image, (bytes, bytearray, memoryview)):
        size = image.nbytes if isinstance(image, memoryview) else len(image)
        where = f"{type(image).__name__} of {size} bytes"
        pixels, order = decode(image, where, max_pixels), "BGR"
    elif is_pillow_image(image):
        filename = getattr(image, "filename", "")  # set when Pillow opened a file
        where = str(filename) if isinstance(filename, (str, Path)) and str(filename) else (
            f"{type(image).__name__}({image.size[0]}x{image.size[1]}, {image.mode})")
        pixels, order = pillow_pixels(image, where, max_pixels), "RGB"
    elif callable(getattr(image, "read", None)):
        name = getattr(image, "name", None)
        where = os.fsdecode(name) if isinstance(name, (str, bytes, Path)) else f"{type(image).__name__} stream"
        pixels, order = decode(read_stream(cast(IO[bytes], image), where, max_pixels), where, max_pixels), "BGR"
    else:
        raise InputError(
            f"expected a path, a numpy array, encoded bytes, a binary stream or a PIL image, got {type(image).__name__}")
    if pixels.size == 0 or min(pixels.shape[:2]) < 1:
        raise InputError(f"{where}: empty image (shape {pixels.shape})")
    check_pixels(pixels.shape[1], pixels.shape[0], where, max_pixels)
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):  # gray or colour with alpha
        pixels = composite(pixels, bg, order, where)
    pixels = to_three_channels(to_uint8(pixels, where), where)
    return np.ascontiguousarray(pixels), order, where
