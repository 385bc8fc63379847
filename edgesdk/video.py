"""Edges of a video file or a camera, written as a video of the same size and frame rate.

    import edgesdk
    from edgesdk.video import detect_video
    result = detect_video(edgesdk.load(), "clip.mp4", "out")     # out/clip_edges.mp4
    result.frames, result.fps, result.frames_per_second

What ``edgesdk detect clip.mp4`` and ``edgesdk detect --source 0`` run. Frames are read one
at a time (a few in flight, so memory does not grow with the clip), detected as OpenCV
gives them (BGR) and written as white edges on black; ``overlay=True`` also writes the
edges drawn over each frame. Each video is written to a temporary name in its folder,
checked (it must open again with as many frames as were written) and renamed into
place: a killed run leaves no partial file under the final name. A camera is read until
``max_frames`` or Ctrl-C, after which what was recorded is finished and kept.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np

from edgesdk import io as fileio
from edgesdk.errors import InputError

logger = logging.getLogger(__name__)

# Containers OpenCV's FFmpeg reads; a path with one of these suffixes is a video to `edgesdk detect`.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"})
# Written as MPEG-4 Part 2 in .mp4: the encoder every OpenCV wheel's FFmpeg has (H.264 is often missing).
FOURCC = "mp4v"
# A rate the container does not state (a camera, a stream) is taken as this.
DEFAULT_FPS = 30.0


def is_video_name(path: Union[str, os.PathLike]) -> bool:
    """Whether a file name has the suffix of a video container edgesdk reads."""
    return Path(os.fsdecode(path)).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoResult:
    """What :func:`detect_video` did.

    Attributes
    ----------
    source : str
        The file, or ``camera N``.
    outputs : list of Path
        The videos written (``<name>_edges.mp4``, and ``<name>_overlay.mp4`` on request).
    frames : int
        Frames read and written.
    failed : int
        Frames whose detection failed (written black, recorded in the manifest).
    fps : float
        The frame rate written (the source's).
    seconds : float
        Wall time of the whole run.
    width, height : int
        The frame size.
    skipped : bool
        The outputs were there, whole, and were kept (``skip_existing``).
    short_by : int
        Frames the file's container states but that could not be read (a damaged or
        truncated file ends early; 0 when all were read).
    """

    source: str
    outputs: List[Path] = field(default_factory=list)
    frames: int = 0
    failed: int = 0
    fps: float = DEFAULT_FPS
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    skipped: bool = False
    short_by: int = 0

    @property
    def frames_per_second(self) -> float:
        """Frames processed per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own warnings (a camera index it cannot open) off while a source is opened: the error says it."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:  # pragma: no cover - an OpenCV without the utils.logging binding
        yield
        return
    level = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_api.setLogLevel(level)


def _open_source(source: Union[str, os.PathLike, int]) -> Tuple[Any, str, Optional[int]]:
    """(capture, name for messages, descriptor to close) for a video file or camera index."""
    if isinstance(source, bool):
        raise InputError(f"a video source is a path or a camera index, got {source!r}")
    if isinstance(source, (int, np.integer)):
        where = f"camera {int(source)}"
        if source < 0:
            raise InputError(f"{where}: a camera index is >= 0")
        with _quiet_opencv():
            cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            cap.release()
            raise InputError(f"{where}: no such camera (OpenCV could not open it)")
        return cap, where, None
    where = os.fsdecode(source)
    fd = fileio.open_regular(source, "video")
    # Through the descriptor: FFmpeg never sees the file's own name, which may not be UTF-8.
    name = fileio.fd_name(fd) or os.fspath(source)
    with _quiet_opencv():
        cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        os.close(fd)
        raise InputError(f"{where}: not a video OpenCV can read")
    return cap, where, fd


class _VideoFile:
    """A video written to a temporary name in its folder, checked, then renamed into place."""

    def __init__(self, path: Path, fps: float, size: Tuple[int, int]):
        self.path, self.frames = path, 0
        self._writer = cv2.VideoWriter()  # not open yet: discard() may run before the real one exists
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dir = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise fileio.WriteError(f"could not write {path}: {exc.strerror or exc}") from None
        # Named through the folder's descriptor: an ASCII path FFmpeg can open whatever the folder's
        # name, ending in .mp4 so that it picks the container. O_EXCL first: never through a planted link.
        self.temp = f"{fileio.TEMP_PREFIX}{secrets.token_hex(6)}.mp4"
        try:
            fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666,
                         dir_fd=self._dir)
        except OSError as exc:
            os.close(self._dir)
            raise fileio.WriteError(f"could not write {path}: {exc.strerror or exc}") from None
        os.close(fd)
        self._name = f"/proc/self/fd/{self._dir}/{self.temp}" if os.path.isdir("/proc/self/fd") else \
            os.fspath(path.parent / self.temp)
        self._writer = cv2.VideoWriter(self._name, cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*FOURCC), fps, size)
        if not self._writer.isOpened():
            self.discard()
            raise fileio.WriteError(f"could not write {path}: OpenCV could not open a {FOURCC} video writer")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def commit(self) -> Path:
        """Finish the file, check it holds every frame, rename it into place."""
        self._writer.release()
        try:
            size = os.stat(self.temp, dir_fd=self._dir).st_size
            cap = cv2.VideoCapture(self._name, cv2.CAP_FFMPEG)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
            cap.release()
            if size == 0 or count != self.frames:
                raise fileio.WriteError(f"could not write {self.path}: the written file holds {max(count, 0)} of "
                                        f"{self.frames} frames (disk full?)")
            # A symlink at the final name is replaced, not followed.
            os.replace(self.temp, self.path.name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
        except OSError as exc:
            raise fileio.WriteError(f"could not write {self.path}: {exc.strerror or exc}") from None
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        """Drop the temporary file (after a commit, there is none) and the folder's descriptor; idempotent."""
        self._writer.release()
        if self._dir < 0:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.temp, dir_fd=self._dir)
        os.close(self._dir)
        self._dir = -1


def _frame_count(path: Path) -> int:
    """Frames an existing video file states it holds (-1: missing, a link, unreadable)."""
    try:
        cap, _, fd = _open_source(path)
    except InputError:
        return -1
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
        if fd is not None:
            os.close(fd)


def _frames(cap, limit: Optional[int]) -> Iterator[np.ndarray]:
    n = 0
    while limit is None or n < limit:
        ok, frame = cap.read()
        if not ok:
            return
        n += 1
        yield frame


def detect_video(
    detector: Any,
    source: Union[str, os.PathLike, int],
    out: Union[str, os.PathLike] = "edges",
    *,
    name: Optional[str] = None,
    overlay: bool = False,
    max_frames: Optional[int] = None,
    manifest: Optional[Union[str, os.PathLike]] = None,
    progress: bool = False,
    max_pixels: Optional[int] = None,
    skip_existing: bool = False,
    **detect: Any,
) -> VideoResult:
    """Detect the edges of every frame of a video file or camera and write them as a video.

    Parameters
    ----------
    detector : Detector
        A loaded model (:func:`edgesdk.load`).
    source : path or int
        A video file (any container OpenCV's FFmpeg reads), or a camera index.
    out : path
        The output folder: ``<name>_edges.mp4`` (white edges on black, MPEG-4, the source's
        size and frame rate).
    name : str, optional
        The outputs' name (default: the file's stem, or ``cameraN``).
    overlay : bool
        Also ``<name>_overlay.mp4``: the edges in red over each frame.
    max_frames : int, optional
        Stop after this many frames (a camera runs until then, or until Ctrl-C).
    manifest : path, optional
        A JSON Lines file receiving one record per frame as it is written.
    progress : bool
        A progress bar.
    max_pixels : int, optional
        Refuse frames larger than this (the runtime's limit by default), from the
        container's header, before any frame is decoded.
    skip_existing : bool
        For a file: keep outputs that are there and hold as many frames as the source
        (``skipped`` is then True); redo them otherwise.
    **detect
        Passed to :meth:`Detector.detect` (``nms``, ``thin``, ``threshold``).

    Returns
    -------
    VideoResult

    Raises
    ------
    InputError
        The source cannot be opened, is not a video, or its frames are too large.
    WriteError
        An output could not be written whole (nothing is left under its name).
    """
    from edgesdk.arguments import check_count, check_flag
    from edgesdk.batch import Manifest, _check_detect_options
    from edgesdk.runtime import draw
    from edgesdk.runtime.detector import MAX_PIXELS

    overlay = check_flag(overlay, "overlay")
    if max_frames is not None:
        max_frames = check_count(max_frames, "max_frames", 1)
    max_pixels = check_count(max_pixels if max_pixels is not None else MAX_PIXELS, "max_pixels", 1)
    unknown = sorted(set(detect) - {"nms", "thin", "threshold", "background"})
    if unknown:
        raise InputError(f"unknown detect options for a video {unknown} (nms, thin, threshold, background)")
    _check_detect_options(detect)
    started = time.perf_counter()
    cap, where, fd = _open_source(source)
    writers: List[_VideoFile] = []
    log = None
    try:
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise InputError(f"{where}: the video does not state its frame size")
        if width * height > max_pixels:
            raise InputError(f"{where}: {width}x{height} frames are above max_pixels={max_pixels}")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if not (math.isfinite(fps) and 0 < fps <= 1000):
            logger.info("%s: no frame rate stated (%s); writing %s frames/s", where, fps, DEFAULT_FPS)
            fps = DEFAULT_FPS
        stem = name if name is not None else (
            f"camera{int(source)}" if isinstance(source, (int, np.integer)) else Path(where).stem)
        result = VideoResult(where, fps=fps, width=width, height=height)
        folder = Path(out)
        names = [folder / f"{stem}_edges.mp4"] + ([folder / f"{stem}_overlay.mp4"] if overlay else [])
        # What the file's container states (a camera states nothing), up to max_frames.
        stated = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0) if fd is not None else 0
        total = min(stated, max_frames) if max_frames and stated > 0 else (max_frames or stated)
        if check_flag(skip_existing, "skip_existing") and stated > 0 and all(_frame_count(p) == total for p in names):
            result.outputs, result.frames, result.skipped = names, total, True
            result.seconds = time.perf_counter() - started
            return result
        for path in names:  # one at a time: a failed second leaves the first in `writers`, to be discarded
            writers.append(_VideoFile(path, fps, (width, height)))
        log = Manifest(manifest) if manifest is not None else None
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total or None, desc="video", unit="frame", smoothing=0.1)
        thickness = draw.auto_thickness(height, width)
        blank = np.zeros((height, width, 3), np.uint8)
        try:
            for frame, em in detector.detect_many(_frames(cap, max_frames), lanes=2, color="BGR",
                                                  max_pixels=max_pixels, **detect):
                record: Dict[str, Any] = {"input": where, "frame": result.frames,
                                          "time_s": round(result.frames / fps, 6)}
                if frame.shape[:2] != (height, width):
                    em = InputError(f"{where}: frame {result.frames} is {frame.shape[1]}x{frame.shape[0]}, "
                                    f"not {width}x{height}")
                if isinstance(em, Exception):
                    result.failed += 1
                    record["error"] = str(em)
                    for w in writers:
                        w.write(blank)
                else:
                    edges = np.where(em.edges[:, :, None], np.uint8(255), np.uint8(0))
                    writers[0].write(np.repeat(edges, 3, axis=2))
                    if overlay:
                        writers[1].write(em.overlay(frame, thickness=thickness))
                    record.update(edge_pixels=int(em.edges.sum()),
                                  timings_ms={k: round(v * 1e3, 3) for k, v in em.timings.items()})
                result.frames += 1
                if log is not None:
                    log.add(record)
                if bar is not None:
                    bar.update(1)
        except KeyboardInterrupt:
            if fd is not None:  # a file can be run again; a camera's frames cannot be recorded again
                raise
            logger.info("%s: stopped after %d frames; finishing the video", where, result.frames)
        finally:
            if bar is not None:
                bar.close()
        if result.frames == 0:
            raise InputError(f"{where}: no frame could be read")
        if fd is not None and 0 < result.frames < total:
            # A damaged or truncated file ends early; what could be read is written and said so.
            result.short_by = total - result.frames
            logger.info("%s: the container states %d frames, %d could be read", where, total, result.frames)
        result.outputs = [w.commit() for w in writers]
        result.seconds = time.perf_counter() - started
        return result
    finally:
        for w in writers:
            w.discard()
        cap.release()
        if fd is not None:
            os.close(fd)
        if log is not None:
            log.close()


__all__ = ["VIDEO_SUFFIXES", "VideoResult", "detect_video", "is_video_name"]
