"""Reading and writing files safely: the one place edgesdk touches the file system through.

- Any path the OS accepts works, whatever its encoding: paths go to the OS as
  they are (Python's ``os`` functions take names with undecodable bytes), never
  to OpenCV's ``imread``/``imwrite``, which crash on them; images are encoded and
  decoded in memory (or through an open descriptor).
- Reading: only regular files (a FIFO would block forever, a device never end),
  with their size checked before anything is read.
- Writing: every file goes to a temporary name in its folder, is written whole
  (each ``write`` checked: a full disk is an error, never a short file) and is then
  renamed over its final name with ``os.replace``, so a reader, a killed process or
  a concurrent run never sees a partial file under a final name. A symlink planted
  at a final name is replaced, not followed. Files written together (an image's
  ``_edges`` and ``_prob``) are renamed under a lock on their folder, so concurrent
  runs writing the same names leave a matching set: the last run to finish wins.

Not done: ``fsync``. The writes survive the process being killed (the data is in the
kernel's cache), not necessarily a power cut; ``edgesdk detect --skip-existing``
redoes an output that does not decode.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from edgesdk.errors import EdgeSDKError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from edgesdk import formats

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
TEMP_PREFIX = ".edgesdk-"
TEMP_SUFFIX = ".tmp"


class WriteError(EdgeSDKError):
    """A file could not be written (the message names it and says why); nothing was left under its name."""


# -- reading ------------------------------------------------------------------
def open_regular(path: PathLike, what: str = "file") -> int:
    """Open ``path`` for reading and return the descriptor; refuse anything but a regular file.

    Opened non-blocking, so that a FIFO is refused instead of waiting for a writer.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, socket or device)"
        raise InputError(f"{path}: {kind}, not a {what}")
    return fd


def read_fd(fd: int, size: int, where: str) -> bytes:
    """All ``size`` bytes of an open regular file, from its start."""
    chunks, offset = [], 0
    while offset < size:
        try:
            chunk = os.pread(fd, min(size - offset, 1 << 24), offset)
        except OSError as exc:
            raise InputError(f"{where}: cannot be read ({exc.strerror or exc})") from None
        if not chunk:  # the file shrank while it was read
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def read_file(path: PathLike, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file no larger than ``max_bytes`` (checked before reading)."""
    fd = open_regular(path, what)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise InputError(f"{path}: {size} bytes, more than a {what} may have ({max_bytes})")
        return read_fd(fd, size, str(path))
    finally:
        os.close(fd)


# -- writing ------------------------------------------------------------------
def _write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data)
        if n <= 0:  # pragma: no cover - os.write raises rather than return 0 for a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = data[n:]


# What a file is made of: its bytes, or a function that writes them to a binary file
# (so that a large output is encoded straight into its file, never held whole in memory).
Content = Union[bytes, bytearray, memoryview, Callable[[BinaryIO], None]]


def _write_temp(path: Path, data: Content) -> Path:
    """Write ``data`` whole to a new temporary file beside ``path``; returns its name."""
    folder = path.parent
    for _ in range(100):
        tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}"
        try:
            # O_EXCL: never an existing file, never through a symlink; the umask sets the mode.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise WriteError(f"could not write {path}: {exc.strerror or exc}") from None
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise WriteError(f"could not write {path}: no free temporary name in {folder}")
    try:
        if callable(data):
            # The file object's close flushes and closes, reporting any failed write.
            with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
                data(fh)
        else:
            try:
                _write_all(fd, memoryview(data).cast("B"))
            finally:
                os.close(fd)  # may report a deferred write error (NFS)
    except OSError as exc:
        _remove(tmp)
        raise WriteError(f"could not write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on a folder while files are renamed into it (flock on the folder itself)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:  # a file system without locks: renames stay atomic one by one
            log.debug("no lock on %s (%s); files are renamed one by one", folder, exc)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_files(items: Sequence[Tuple[PathLike, Content]]) -> List[Path]:
    """Write several files as a set: each to a temporary name, then all renamed into place.

    Nothing is renamed unless every file was written whole; the renames happen under
    a lock on the folder, so two processes writing the same names leave one
    process's complete set. A process killed between the renames (microseconds) leaves
    the set with its last file missing, never new files beside old ones. A symlink at
    a final name is replaced, not followed.

    Raises
    ------
    WriteError
        Naming the file that could not be written, and why; its temporary file is removed.
    """
    paths = [Path(p) for p, _ in items]
    temps: List[Path] = []
    try:
        for path, (_, data) in zip(paths, items):
            temps.append(_write_temp(path, data))
        for path in paths:
            if path.is_dir() and not path.is_symlink():
                raise WriteError(f"could not write {path}: a folder is in the way")
        folders = {p.parent for p in paths}
        with contextlib.ExitStack() as stack:
            for folder in sorted(folders, key=str):
                stack.enter_context(_folder_lock(folder))
            try:
                # The set's last file goes first and comes back last: a process killed between two
                # renames leaves a set with a file missing (which --skip-existing redoes), never
                # new files beside an old one.
                if len(paths) > 1 and os.path.lexists(paths[-1]):
                    os.unlink(paths[-1])
                for tmp, path in zip(temps, paths):
                    os.replace(tmp, path)
            except OSError as exc:
                raise WriteError(f"could not write {path}: {exc.strerror or exc}") from None
    finally:
        for tmp in temps:
            if os.path.lexists(tmp):
                _remove(tmp)
    return paths


def write_bytes(path: PathLike, data: Content) -> Path:
    """Write one file atomically (see :func:`write_files`)."""
    return write_files([(path, data)])[0]


def write_text(path: PathLike, text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    return write_bytes(path, text.encode("utf-8"))


def append_text(path: PathLike, text: str, max_bytes: int = 64 << 20) -> Path:
    """Append ``text`` to a text file (a log) by writing the whole new file atomically: a run killed
    mid-write leaves the file as it was, never a torn last line."""
    try:
        old = read_file(path, max_bytes, "text file")
    except InputError:
        if os.path.lexists(path):
            raise
        old = b""
    return write_bytes(path, old + text.encode("utf-8"))


@contextlib.contextmanager
def replacing(path: PathLike) -> Iterator[Path]:
    """For a tool that writes a file by name (an exporter): yields a temporary name beside ``path``,
    renamed over it if the block succeeds and wrote something, removed otherwise."""
    path = Path(path)
    tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}{path.suffix}"
    try:
        yield tmp
        if not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
            raise WriteError(f"could not write {path}: nothing was written")
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


def write_json(path: PathLike, doc: object) -> Path:
    """Write a JSON document (indented, newline-terminated) atomically."""
    return write_text(path, json.dumps(doc, indent=2) + "\n")


# -- encoding -----------------------------------------------------------------
def encode_image(array: np.ndarray, suffix: str = ".png", params: Optional[Sequence[int]] = None) -> bytes:
    """An image encoded in memory by OpenCV (PNG by default; 8- or 16-bit)."""
    import cv2

    try:
        ok, buf = cv2.imencode(suffix, array, list(params or []))
    except cv2.error as exc:
        raise EdgeSDKError(f"could not encode a {array.dtype} {array.shape} image as {suffix}: {exc}") from None
    if not ok:
        raise EdgeSDKError(f"could not encode a {array.dtype} {array.shape} image as {suffix}")
    return buf.tobytes()


def image_writer(array: np.ndarray, suffix: str = ".png", params: Optional[Sequence[int]] = None) -> Callable[[BinaryIO], None]:
    """A writer (for :func:`write_files`) of ``array`` encoded as ``suffix``; the encoding is released once written."""
    def write(fh: BinaryIO) -> None:
        fh.write(encode_image(array, suffix, params))

    return write


def npy_writer(array: np.ndarray) -> Callable[[BinaryIO], None]:
    """A writer (for :func:`write_files`) of ``array`` in NumPy's ``.npy`` format, streamed (no copy of it)."""
    return lambda fh: np.save(fh, array, allow_pickle=False)


def _levels(probability: np.ndarray, bits: int) -> np.ndarray:
    """``round(probability * (2**bits - 1))`` as uint8/uint16, computed in bands of rows (no float temporary of the map)."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    top, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    out = np.empty(probability.shape, dtype)
    step = max(1, (1 << 20) // max(probability.shape[1] if probability.ndim > 1 else 1, 1))
    for y in range(0, probability.shape[0], step):
        out[y : y + step] = np.round(probability[y : y + step] * top)
    return out


def probability_writer(probability: np.ndarray, bits: int = 8) -> Callable[[BinaryIO], None]:
    """A writer of a probability map in [0, 1] as a gray PNG of ``bits`` (8 or 16) bits, rounded to the nearest level.

    The one place a probability map is encoded: :meth:`EdgeMap.save` writes it at 8 bits beside
    the edges, :func:`edgesdk.eval.write_prediction` alone (16 bits for the benchmark);
    :func:`edgesdk.eval.read_prediction` reads either back.
    """
    if bits not in (8, 16):  # checked now, not when the file is written
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    # The levels are made when the file is written: a pair's second map is not held beside the first's.
    return lambda fh: image_writer(_levels(probability, bits))(fh)


def edges_writer(edges: np.ndarray) -> Callable[[BinaryIO], None]:
    """A writer of a binary edge map as an 8-bit PNG of 0 and 255."""
    return lambda fh: image_writer(np.multiply(edges, 255, dtype=np.uint8))(fh)


def readable_png(path: PathLike, max_bytes: int = 1 << 31) -> Optional[Tuple[int, int]]:
    """(width, height) of a PNG file that decodes, or None (missing, not a regular file, truncated, corrupt)."""
    import cv2

    try:
        data = read_file(path, max_bytes, "PNG file")
    except InputError:
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    return None if image is None else (image.shape[1], image.shape[0])


def npy_header(fh: BinaryIO) -> Tuple[Tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of the ``.npy`` file ``fh`` is at the start of, leaving it after the header."""
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fh)
    return tuple(shape), np.dtype(dtype)


def readable_npy(path: PathLike) -> Optional[Tuple[int, ...]]:
    """The shape of a whole ``.npy`` file (its header read, its length checked against it), or None."""
    try:
        fd = open_regular(path, ".npy file")
    except InputError:
        return None
    try:
        with os.fdopen(os.dup(fd), "rb") as fh:
            shape, dtype = npy_header(fh)
            expected = fh.tell() + int(np.prod(shape)) * dtype.itemsize
        return tuple(shape) if os.fstat(fd).st_size == expected else None
    except (ValueError, OSError, EOFError):
        return None
    finally:
        os.close(fd)


# -- images -------------------------------------------------------------------
def fd_name(fd: int) -> Optional[str]:
    """A name OpenCV can open the descriptor by (ASCII whatever the file's own name), if the OS has one."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return f"{folder}/{fd}"
    return None


def decode_image_file(
    path: PathLike, where: str, flags: Callable[["formats.Header"], int], max_pixels: Optional[int] = None,
    check: Optional[Callable[["formats.Header"], None]] = None,
) -> Tuple[np.ndarray, "formats.Header"]:
    """Decode an image file, checking its header and length first; returns (pixels as OpenCV gives them, header).

    Parameters
    ----------
    path : path
        Any path the OS accepts.
    where : str
        The name for messages.
    flags : callable
        OpenCV ``imread`` flags for the file's header.
    max_pixels : int, optional
        Refuse a larger image from its header.
    check : callable, optional
        Called with the header before decoding, to refuse the file (e.g. a prediction
        whose size is not its ground truth's) by raising InputError.

    Raises
    ------
    InputError
        Not a regular file, not a format :mod:`edgesdk.formats` reads, too large, too long
        for its size, refused by ``check``, or not decodable.
    """
    import cv2

    from edgesdk import formats

    fd = open_regular(path, "image")
    try:
        length = os.fstat(fd).st_size
        header = formats.read_header(lambda offset, n: os.pread(fd, n, offset), length, where)
        if check is not None:
            check(header)
        if max_pixels is not None and header.width * header.height > max_pixels:
            raise InputError(
                f"{where}: {header.width}x{header.height} is above max_pixels={max_pixels}; raise the limit "
                "(--max-pixels on the command line) to process it in tiles")
        if length > formats.max_encoded_bytes(header.width, header.height):
            raise InputError(f"{where}: {length} bytes is more than a {header.width}x{header.height} "
                             f"{header.format.name} image can take")
        name = fd_name(fd)
        # Through the descriptor, OpenCV streams the file (no copy of it in memory) and never
        # sees its name, which it cannot open when it is not valid UTF-8.
        if name is not None:
            image = cv2.imread(name, flags(header))
        else:  # pragma: no cover - an OS without /proc/self/fd or /dev/fd
            image = cv2.imdecode(np.frombuffer(read_fd(fd, length, where), np.uint8), flags(header))
    finally:
        os.close(fd)
    if image is None:
        raise InputError(f"{where}: not a readable image (OpenCV could not decode it)")
    return image, header
