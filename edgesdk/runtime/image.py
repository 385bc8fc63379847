"""Reading any image a user may hand over into one form: (H, W, 3) uint8 in a known channel order."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Union

import cv2
import numpy as np

from edgesdk.errors import InputError

# Encoded bytes and binary streams (an upload in a web server, io.BytesIO) are decoded
# like files, EXIF orientation included.
ImageLike = Union[str, Path, np.ndarray, bytes, bytearray, memoryview, IO[bytes]]

# ANYCOLOR|ANYDEPTH keeps gray as gray and 16-bit/float as such, drops alpha, and
# (unlike IMREAD_UNCHANGED) applies the EXIF orientation: a phone photo is
# processed as a viewer shows it, as training and `training.predict` read it.
READ_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


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


def decode(data: Union[bytes, bytearray, memoryview], where: str) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ...) held in memory, as a file of those bytes is read."""
    try:
        buf = np.frombuffer(data, np.uint8)
    except BufferError:  # a non-contiguous memoryview: copied out in its logical order
        buf = np.frombuffer(bytes(data), np.uint8)
    if buf.size == 0:
        raise InputError(f"{where}: empty (no bytes to decode)")
    a = cv2.imdecode(buf, READ_FLAGS)
    if a is None:
        raise InputError(f"{where}: not a readable image (OpenCV could not decode it)")
    return a


def read_image(image: ImageLike, color: str = "RGB") -> tuple[np.ndarray, str, str]:
    """Load ``image`` as (H, W, 3) uint8; returns (pixels, their channel order, a name for messages).

    Parameters
    ----------
    image : path, ndarray, bytes or binary stream
        A file OpenCV can read (8/16-bit, gray, color, alpha), turned as its
        EXIF orientation says (CIPA DC-008, tag 0x0112); the same encoded
        bytes in memory, or a stream opened in binary mode (read to its end);
        or an array of pixels.
    color : {"RGB", "BGR"}
        Channel order of an array argument (encoded images are always read correctly).
    """
    if color not in ("RGB", "BGR"):  # checked for every input: a typo must not wait for the first array
        raise InputError(f"color must be 'RGB' or 'BGR', got {color!r}")
    if isinstance(image, (str, Path)):
        where = str(image)
        if not Path(image).is_file():
            raise InputError(f"{where}: no such file")
        a = cv2.imread(where, READ_FLAGS)
        if a is None:
            raise InputError(f"{where}: not a readable image (OpenCV could not decode it)")
        order = "BGR"  # OpenCV's order for 3/4-channel files
    elif isinstance(image, np.ndarray):
        where, a, order = f"array{image.shape}", image, color
    elif isinstance(image, (bytes, bytearray, memoryview)):
        size = image.nbytes if isinstance(image, memoryview) else len(image)
        where = f"{type(image).__name__} of {size} bytes"
        a, order = decode(image, where), "BGR"
    elif callable(getattr(image, "read", None)):
        name = getattr(image, "name", None)
        where = str(name) if isinstance(name, (str, Path)) else f"{type(image).__name__} stream"
        data = image.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InputError(f"{where}: a stream must be opened in binary mode (its read() gave {type(data).__name__})")
        a, order = decode(data, where), "BGR"
    else:
        raise InputError(f"expected a path, a numpy array, encoded bytes or a binary stream, got {type(image).__name__}")
    if a.size == 0 or min(a.shape[:2]) < 1:
        raise InputError(f"{where}: empty image (shape {a.shape})")
    a = to_three_channels(to_uint8(a, where), where).astype(np.uint8, copy=False)
    return np.ascontiguousarray(a), order, where
