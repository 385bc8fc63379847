"""Running the benchmark over many images: in memory or on folders of files."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, TypeVar

import numpy as np

from edgesdk.cpus import available_cpus
from edgesdk.errors import InputError
from edgesdk.eval.counts import ImageCounts, image_counts
from edgesdk.eval.files import (
    pair_files, prediction_map, read_ground_truth, read_prediction, write_bsds_files, write_summary_json,
)
from edgesdk.eval.metrics import Result, summarize
from edgesdk.eval.protocol import Protocol

T = TypeVar("T")


def default_workers() -> int:
    """CPUs this process may use (affinity and cgroup quota; :func:`edgesdk.cpus.available_cpus`)."""
    return available_cpus()


def _map_images(
    fn: Callable[[T], ImageCounts], items: Sequence[Tuple[str, T]], workers: int, progress: bool
) -> Dict[str, ImageCounts]:
    """fn over items on a thread pool (the kernels release the GIL).

    Every item is attempted; bad inputs are collected and reported together.
    """
    from tqdm.auto import tqdm

    workers = workers if workers > 0 else default_workers()
    results: Dict[str, ImageCounts] = {}
    errors = []
    with ThreadPoolExecutor(max_workers=workers) as pool, tqdm(
        total=len(items), desc="eval", unit="img", disable=not progress, leave=False
    ) as bar:
        futures = {pool.submit(fn, item): name for name, item in items}
        for fut in as_completed(futures):
            try:
                results[futures[fut]] = fut.result()
            except InputError as exc:
                errors.append(str(exc))
            bar.update(1)
    if errors:
        errors.sort()
        shown = "\n  ".join(errors[:20]) + (f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else "")
        raise InputError(f"{len(errors)} of {len(items)} images could not be evaluated:\n  {shown}")
    return {name: results[name] for name, _ in items}


def evaluate(
    predictions: Mapping[str, np.ndarray],
    ground_truth: Mapping[str, Sequence[np.ndarray]],
    protocol: Protocol = Protocol(),
    workers: int = 0,
    progress: bool = False,
) -> Result:
    """Benchmark predictions held in memory (e.g. from a training loop).

    Parameters
    ----------
    predictions : mapping of name to (H, W) float array in [0, 1]
    ground_truth : mapping of name to a sequence of (H, W) binary maps
        Every prediction needs ground truth of the same size.
    protocol : Protocol
    workers : int
        Threads (0: all cores).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Result
    """
    # What the folder mode refuses, refused here too: a missing prediction (its ground truth
    # would be dropped from the score), values outside [0, 1], NaN, a map of another size.
    for what, names in (("ground truth", sorted(set(predictions) - set(ground_truth))),
                        ("prediction", sorted(set(ground_truth) - set(predictions)))):
        if names:
            shown = ", ".join(map(str, names[:10])) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            raise InputError(f"no {what} for {len(names)} images: {shown}")

    def one(name: str) -> ImageCounts:
        gts = ground_truth[name]
        if not len(gts):
            raise InputError(f"{name}: no ground-truth map")
        shape = np.shape(gts[0])
        pred = prediction_map(predictions[name], f"prediction {name}", shape if len(shape) == 2 else None)
        for g in gts:
            if np.shape(g) != pred.shape:
                raise InputError(f"{name}: prediction is {pred.shape} but its ground truth is {np.shape(g)}")
        return image_counts(pred, gts, protocol)

    names = sorted(predictions)
    counts = _map_images(one, [(n, n) for n in names], workers, progress)
    return summarize(counts, protocol.as_dict())


def evaluate_dir(
    pred_dir: str | Path,
    gt_dir: str | Path,
    protocol: Protocol = Protocol(),
    workers: int = 0,
    out_dir: Optional[str | Path] = None,
    progress: bool = False,
    plot: bool = True,
    log: Callable[[str], None] = lambda msg: None,
) -> Result:
    """Benchmark a folder of predictions against a folder of ground truth.

    Predictions are matched to ground truth by file name (``100007.png`` with
    ``100007.mat``). With ``out_dir``, writes the BSDS files
    (``eval_bdry*.txt``), ``summary.json`` (numbers, curve, per-image scores
    and protocol) and ``pr_curve.png``.

    Parameters
    ----------
    pred_dir, gt_dir : str or Path
    protocol : Protocol
    workers : int
        Threads (0: all cores).
    out_dir : str or Path, optional
    progress : bool
        Show a progress bar.
    plot : bool
        Write the PR curve (needs matplotlib).
    log : callable
        Receives notes such as predictions without ground truth.

    Returns
    -------
    Result

    Raises
    ------
    InputError
        Listing every missing, unreadable or mis-sized file.
    """
    started = time.perf_counter()
    pairs, unused = pair_files(pred_dir, gt_dir)
    if unused:
        log(f"note: {len(unused)} predictions have no ground truth and are ignored: {', '.join(unused[:5])}")

    def one(paths: Tuple[Path, Path]) -> ImageCounts:
        pred_path, gt_path = paths
        gts = read_ground_truth(gt_path)
        # The ground truth's size first: a prediction of another size is refused from its header, unread.
        pred = read_prediction(pred_path, shape=gts[0].shape)
        return image_counts(pred, gts, protocol)

    counts = _map_images(one, [(name, (p, g)) for name, p, g in pairs], workers, progress)
    result = summarize(counts, protocol.as_dict())
    if out_dir is not None:
        from edgesdk import __version__

        out = Path(out_dir)
        write_bsds_files(result, out)
        write_summary_json(
            result,
            out / "summary.json",
            extra={
                "predictions": str(Path(pred_dir).resolve()),
                "ground_truth": str(Path(gt_dir).resolve()),
                "edgesdk_version": __version__,
                "wall_time_s": round(time.perf_counter() - started, 2),
                "workers": workers if workers > 0 else default_workers(),
            },
        )
        if plot:
            from edgesdk.eval.plot import plot_pr

            plot_pr({Path(pred_dir).name or "prediction": result}, out / "pr_curve.png")
    return result


