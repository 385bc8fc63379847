"""Many images in one job: stages that overlap, worker processes, a mirrored output tree, resume, shards, a manifest.

    import edgesdk
    for record in edgesdk.process(["photos/**/*.jpg"], "edges", workers=2, manifest="edges.jsonl"):
        ...                                   # one dict per input, in input order, as it finishes

    detector = edgesdk.load()
    for source, result in detector.detect_many(paths):   # EdgeMap (or the input's error), in order
        ...

What `edgesdk detect` runs. Within a process, images are detected on a few threads
sharing one Detector: the model runs one at a time (its lock) while the other images
are decoded, thinned and written, which keeps the CPUs busy between model runs.
``workers=N`` runs N processes, each with its own Detector and 1/N of the CPUs. At most a
few images per thread or worker are in flight, so memory does not grow with the job.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from edgesdk.errors import EdgeSDKError, InputError
from edgesdk.inputs import STDIN, Task, plan

Record = Dict[str, Any]


def _ordered(pool: Executor, fn: Callable, items: Iterable, window: int) -> Iterator[Tuple[Any, Future]]:
    """(item, future of fn(item)) in the order of ``items``, with at most ``window`` submitted and not yet yielded."""
    pending: Deque[Tuple[Any, Future]] = deque()
    for item in items:
        pending.append((item, pool.submit(fn, item)))
        if len(pending) >= window:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


def detect_many(detector, inputs: Iterable[Any], *, lanes: int = 2, **options) -> Iterator[Tuple[Any, Any]]:
    """:meth:`Detector.detect` of each input, ``lanes`` at a time; yields ``(input, result)`` in input order.

    ``result`` is the EdgeMap, or the error that input raised (an :class:`EdgeSDKError`,
    ``ValueError`` or ``OSError``): one bad input does not end the others. Results are
    those of one-at-a-time detection, bit for bit.
    """
    if not (isinstance(lanes, int) and lanes >= 1):
        raise InputError(f"lanes must be an integer >= 1, got {lanes!r}")
    with ThreadPoolExecutor(lanes, thread_name_prefix="edgesdk-detect") as pool:
        for item, future in _ordered(pool, lambda x: detector.detect(x, **options), inputs, 2 * lanes):
            try:
                yield item, future.result()
            except (EdgeSDKError, ValueError, OSError) as exc:
                yield item, exc


@dataclass(frozen=True)
class Settings:
    """What every image of a job is detected and written with (picklable: it goes to worker processes)."""

    out: str
    format: str = "png"
    skip_existing: bool = False
    detect: Dict[str, Any] = field(default_factory=dict)
    overlay: bool = False


def _outputs_of(settings: Settings, task: Task) -> Tuple[Path, str]:
    """The folder and stem of a task's outputs: its name's folders below the output folder."""
    name = Path(task.name)
    return Path(settings.out) / name.parent, name.name


def _detect_one(detector, settings: Settings, task: Task, stdin=None) -> Record:
    """Detect one image and write its outputs; its record (never raises for a bad input or a failed write)."""
    from edgesdk.runtime.detector import saved_outputs

    record: Record = {"input": str(task.source)}
    folder, stem = _outputs_of(settings, task)
    if settings.skip_existing and str(task.source) != STDIN:
        kept = saved_outputs(folder, stem, settings.format, settings.overlay)
        if kept is not None:
            record.update(outputs=[str(p) for p in kept], skipped=True)
            return record
    source = stdin if str(task.source) == STDIN else task.source
    try:
        if settings.overlay:
            em, drawn = _detect_and_draw(detector, source, settings.detect)
        else:
            em, drawn = detector.detect(source, **settings.detect), None
        written = em.save(folder, stem, settings.format, drawn)
    except (EdgeSDKError, ValueError, OSError) as exc:
        record["error"] = str(exc)
        return record
    except MemoryError:
        record["error"] = f"{task.source}: out of memory (lower max_pixels, or use low_memory)"
        return record
    except Exception as exc:  # one image must not cost the rest of the job their results
        record["error"] = f"{task.source}: {type(exc).__name__}: {exc}"
        return record
    h, w = em.edges.shape
    record.update(outputs=[str(p) for p in written], width=w, height=h, edge_pixels=int(em.edges.sum()),
                  threshold=em.threshold, tiles=em.tiles, timings_ms={k: v * 1e3 for k, v in em.timings.items()})
    return record


def _detect_and_draw(detector, source, options: Dict[str, Any]):
    """(EdgeMap, its overlay in BGR): the image is read once and kept for drawing (3 more bytes a pixel)."""
    import time

    from edgesdk.runtime import draw
    from edgesdk.runtime.detector import MAX_PIXELS
    from edgesdk.runtime.image import WHITE, read_image

    t0 = time.perf_counter()
    pixels, order, where = read_image(source, options.get("color", "BGR"), options.get("max_pixels", MAX_PIXELS),
                                      options.get("background", WHITE))
    read = time.perf_counter() - t0
    em = detector.detect(pixels, **{**options, "color": order})
    em.source = where
    em.timings["read"] += read
    h, w = em.edges.shape
    drawn = em.overlay(pixels, order=order, thickness=draw.auto_thickness(h, w))
    return em, (drawn if order == "BGR" else np.ascontiguousarray(drawn[:, :, ::-1]))


# One Detector per worker process, made by its initializer.
_worker: Dict[str, Any] = {}


def _init_worker(options: Dict[str, Any], settings: Settings) -> None:
    from edgesdk.runtime.detector import load

    _worker["detector"] = load(options["model"], threads=options["threads"], low_memory=options["low_memory"],
                               device=options["device"])
    _worker["settings"] = settings


def _work(task: Task) -> Record:
    return _detect_one(_worker["detector"], _worker["settings"], task)


class Manifest:
    """A JSON Lines record of a job, one line appended per input as it finishes.

    Each line goes in one ``write`` to a file opened for appending, so a killed job leaves
    every finished input's line whole (and concurrent shards may share one file). The
    file grows by appending, not by replacing: it is a log, read to see what was done.
    """

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise EdgeSDKError(f"could not open the manifest {self.path}: {exc.strerror or exc}") from None

    def add(self, record: Record) -> None:
        data = (json.dumps(record) + "\n").encode()
        try:
            if os.write(self._fd, data) != len(data):
                raise OSError("a short write (disk full?)")
        except OSError as exc:
            raise EdgeSDKError(f"could not write the manifest {self.path}: {exc}") from None

    def close(self) -> None:
        os.close(self._fd)


def process(
    inputs: Union[str, Sequence[str], Sequence[Union[Task, Tuple[str, str]]]],
    out: Union[str, os.PathLike] = "edges",
    *,
    model: Union[str, os.PathLike] = "default",
    workers: int = 1,
    threads: int = 0,
    low_memory: bool = False,
    device: str = "cpu",
    format: str = "png",
    skip_existing: bool = False,
    shard: Optional[Tuple[int, int]] = None,
    manifest: Optional[Union[str, os.PathLike]] = None,
    progress: bool = False,
    stdin=None,
    on_detector: Optional[Callable[[Any], None]] = None,
    overlay: bool = False,
    **detect: Any,
) -> Iterator[Record]:
    """Detect the edges of many images and write them; yields a record per input, in input order.

    Parameters
    ----------
    inputs : str, list of str, or a plan
        Image files, folders (their images), glob patterns (``**``: any depth) and ``-``
        (one image on stdin), as ``edgesdk detect`` takes them; or :func:`edgesdk.inputs.plan`'s result.
    out : path
        The output folder: ``<name>_edges.png`` and ``<name>_prob.png`` per image, the names
        mirroring the input tree (:func:`edgesdk.inputs.plan`).
    model, threads, low_memory, device
        As :func:`edgesdk.load`; ``threads=0`` splits the CPUs between the workers.
    workers : int
        Model instances, each in its own process with its share of the CPUs (1: this process).
    format : {"png", "npy"}
    skip_existing : bool
        Keep an image's outputs when both are there and decode (to finish an interrupted job).
    shard : (i, n), optional
        Only the i-th of n shares of the images (0-based), for n machines without an engine
        (a plan given as ``inputs`` is taken as it is: shard it with :func:`edgesdk.inputs.plan`).
    manifest : path, optional
        A JSON Lines file receiving each record as it finishes.
    progress : bool
        A progress bar with images per second and the time left.
    stdin : binary stream, optional
        Where ``-`` is read from (default: ``sys.stdin.buffer``).
    on_detector : callable, optional
        Called with this process's Detector once it is loaded (workers=1), e.g. to report it.
    overlay : bool
        Also ``<name>_overlay.png``: the edges in red over the image as a viewer shows it
        (:meth:`EdgeMap.overlay`, one pixel wide per 1000 pixels of the longer side). Each
        image is then held until it is drawn: 3 more bytes a pixel in flight.
    **detect
        Passed to :meth:`Detector.detect`: ``nms``, ``thin``, ``threshold``, ``max_pixels``, ``background``.

    Yields
    ------
    dict
        ``input`` and, when detected, ``outputs``, ``width``, ``height``, ``edge_pixels``,
        ``threshold``, ``tiles``, ``timings_ms``; ``skipped`` when kept; or ``error``.
    """
    import sys

    from edgesdk.arguments import check_count, check_flag
    from edgesdk.cpus import MAX_THREADS, available_cpus
    from edgesdk.runtime.backends import check_device

    workers = check_count(workers, "workers", 1, MAX_THREADS)
    device = check_device(device)
    threads = check_count(threads, "threads", 0, MAX_THREADS)
    if format not in ("png", "npy"):
        raise InputError(f"format must be 'png' or 'npy', got {format!r}")
    entries: List[Union[Task, Tuple[str, str]]]
    if _is_plan(inputs):
        entries = list(inputs)  # type: ignore[arg-type]
    else:
        entries = plan([inputs] if isinstance(inputs, str) else [str(i) for i in inputs], shard)
    _check_detect_options(detect)
    settings = Settings(str(out), format, check_flag(skip_existing, "skip_existing"), dict(detect),
                        check_flag(overlay, "overlay"))
    tasks = [e for e in entries if isinstance(e, Task)]
    log = Manifest(manifest) if manifest is not None else None
    bar = None
    results: Iterator[Record] = iter(())
    try:
        if progress and tasks:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tasks), desc="detect", unit="img", smoothing=0.1)
        if tasks:
            Path(out).mkdir(parents=True, exist_ok=True)
            per_worker = threads or max(1, available_cpus() // workers)
            if workers == 1:
                results = _in_process(tasks, settings, model, per_worker if threads else 0, low_memory, device,
                                      stdin if stdin is not None else sys.stdin.buffer, on_detector)
            else:
                if any(str(t.source) == STDIN for t in tasks):
                    raise InputError("stdin (-) is read in the main process: use workers=1 for it")
                results = _in_workers(tasks, settings, model, per_worker, low_memory, device, workers)
        for entry in entries:
            if isinstance(entry, Task):
                record = next(results)
                if bar is not None:
                    bar.update(1)
            else:
                record = {"input": entry[0], "error": entry[1]}
            if log is not None:
                log.add(record)
            yield record
    finally:
        close = getattr(results, "close", None)
        if close is not None:  # a caller that stops early: the threads or worker processes end here
            close()
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()


def _check_detect_options(detect: Dict[str, Any]) -> None:
    """Refuse a wrong detect option before the job starts, not once per image."""
    from edgesdk.arguments import check_count, check_flag, check_threshold
    from edgesdk.runtime.image import check_background

    unknown = sorted(set(detect) - {"nms", "thin", "threshold", "max_pixels", "background", "color"})
    if unknown:
        raise InputError(f"unknown detect options {unknown} (nms, thin, threshold, max_pixels, background, color)")
    for key in ("nms", "thin"):
        if key in detect:
            check_flag(detect[key], key)
    if "threshold" in detect and detect["threshold"] != "auto":
        if isinstance(detect["threshold"], str):
            raise InputError(f"threshold must be 'auto' or a number in (0, 1], got {detect['threshold']!r}")
        check_threshold(detect["threshold"])
    if "max_pixels" in detect:
        check_count(detect["max_pixels"], "max_pixels", 1)
    if "background" in detect:
        check_background(detect["background"])
    if detect.get("color", "BGR") not in ("RGB", "BGR"):
        raise InputError(f"color must be 'RGB' or 'BGR', got {detect['color']!r}")


def _is_plan(inputs) -> bool:
    return not isinstance(inputs, str) and len(inputs) > 0 and all(isinstance(e, (Task, tuple)) for e in inputs)


def _in_process(tasks: List[Task], settings: Settings, model, threads: int, low_memory: bool, device: str, stdin,
                on_detector) -> Iterator[Record]:
    from edgesdk.runtime.detector import load

    detector = load(model, threads=threads, low_memory=low_memory, device=device)
    if on_detector is not None:
        on_detector(detector)
    lanes = 2  # one image in the model while the next is decoded and the last thinned and written
    reading_stdin = threading.Lock()  # stdin is one stream: read by one lane at a time

    def one(task: Task) -> Record:
        if str(task.source) == STDIN:
            with reading_stdin:
                return _detect_one(detector, settings, task, stdin)
        return _detect_one(detector, settings, task)

    with ThreadPoolExecutor(lanes, thread_name_prefix="edgesdk-detect") as pool:
        for _, future in _ordered(pool, one, tasks, 2 * lanes):
            yield future.result()


def _in_workers(tasks: List[Task], settings: Settings, model, threads: int, low_memory: bool, device: str,
                workers: int) -> Iterator[Record]:
    import multiprocessing

    from edgesdk.runtime.detector import resolve_model
    from edgesdk.runtime.metadata import read_model_info

    sidecar = resolve_model(model).resolve()
    read_model_info(sidecar, verify=True)  # a missing or altered model is named here, not by every worker
    options = {"model": str(sidecar), "threads": threads, "low_memory": low_memory, "device": device}
    # spawn: a fresh interpreter per worker, never a fork of threads (OpenCV's, LiteRT's) mid-state.
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(options, settings)) as pool:
            for _, future in _ordered(pool, _work, tasks, 4 * workers):
                yield future.result()
    except BrokenProcessPool as exc:  # a worker died (killed, out of memory): the job cannot go on as asked
        raise EdgeSDKError(f"a worker process ended unexpectedly ({exc}); rerun with skip_existing to finish") from None
