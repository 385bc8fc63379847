"""A model's probability maps for a folder of images, written for the benchmark (``edgesdk eval --model``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List

from edgesdk.errors import EdgeSDKError
from edgesdk.eval.files import write_prediction

logger = logging.getLogger(__name__)


def predict_folder(model: str | Path, images: str | Path, out: str | Path, threads: int = 0,
                   progress: bool = False) -> Path:
    """Run ``model`` over the images in ``images`` and write ``out/<stem>.png`` (16-bit probability).

    Predictions pair with ground truth by name, so two images with one stem are
    refused before any inference. One image that fails does not cost the others
    their maps (minutes of inference): every failure is collected and the error,
    raised at the end, names each one; the good maps stay in ``out``.

    Parameters
    ----------
    model : str or Path
        What :func:`edgesdk.load` takes: ``"default"``, a bundled name, a sidecar or model path.
    images : str or Path
        A folder (or glob) of images, as ``edgesdk detect`` reads them.
    out : str or Path
        The folder to write into (made if missing).
    threads : int
        Inference threads (0: every CPU this process may use).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        ``out``, holding one map per image.

    Raises
    ------
    EdgeSDKError
        If an input names no image, two images share a stem, or any image failed.
    """
    from tqdm.auto import tqdm

    from edgesdk.inputs import expand_inputs
    from edgesdk.runtime import load

    detector = load(model, threads=threads)
    paths, problems = expand_inputs([os.fspath(images)])
    if problems:
        raise EdgeSDKError("; ".join(f"{item}: {why}" for item, why in problems))
    seen: Dict[str, Path] = {}
    for p in paths:  # x.jpg beside x.png: which one has the ground truth?
        if p.stem in seen:
            raise EdgeSDKError(f"{seen[p.stem]} and {p}: two images named {p.stem!r}; which one has the ground truth?")
        seen[p.stem] = p
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    failed: List[str] = []
    for p in tqdm(paths, desc=f"detect ({detector.info.name})", disable=not progress):
        try:
            write_prediction(out / f"{p.stem}.png", detector.probability(p))
        except Exception as exc:  # one bad image; the others go on
            failed.append(str(exc) if isinstance(exc, (EdgeSDKError, ValueError)) else f"{p}: {type(exc).__name__}: {exc}")
    if failed:
        raise EdgeSDKError(
            f"{len(failed)} of {len(paths)} images failed, so no benchmark was run "
            f"(the other {len(paths) - len(failed)} maps are in {out}):\n  " + "\n  ".join(failed)
        )
    logger.info("%d maps of %s in %s", len(paths), detector.info.name, out)
    return out
