"""Run a teacher once over the training images; store its edge maps and pooled features.

Distillation then reads these files instead of running the teacher in the loop.
The maps are stored at full image size, so the training augmentation (rotation,
flip, scale, crop) applies to them exactly as to the image and its label. The
pooled features are those of the whole image: the adaptor target of a crop is
its image's global descriptor (an approximation stated in the run log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from edgesdk import io as fileio
from edgesdk.eval import read_prediction, write_prediction

from training.averaging import normalised_weights
from training.data import list_split
from training.evaluate import forward_scales
from training.paths import bsds500_dir


@torch.inference_mode()
def cache_teacher(
    teacher: nn.Module,
    out_dir: Path,
    splits: Sequence[str] = ("train", "val"),
    root: Optional[Path] = None,
    limit: int = 0,
    progress: bool = False,
    device: str = "cpu",
    scales: Sequence[float] = (1.0,),
) -> Path:
    """Write ``<id>.png`` (8-bit probabilities) and ``features.npz`` (id -> pooled last-layer features).

    The teacher runs in float32 on ``device`` (``cpu`` or ``cuda``); it is moved there. ``scales``
    other than ``(1.0,)`` cache the multi-scale teacher (maps and features averaged over the
    image pyramid, as :func:`training.evaluate.forward_scales`).
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    teacher = teacher.to(device).eval()
    feats = {}
    items = list_split(Path(root or bsds500_dir()), splits)[: limit or None]
    for name, img, _ in tqdm(items, desc="teacher", disable=not progress):
        bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
        # The evaluation's forward (padded: unpadded, the teacher's side outputs land pixels off
        # its edges and the cached targets score below the teacher; see network_input).
        prob, feats[name] = forward_scales(teacher, bgr, scales, with_features=True)
        write_prediction(out_dir / f"{name}.png", prob, bits=8)  # a cache: 8 bits, as it was trained from
    fileio.write_bytes(out_dir / "features.npz", lambda fh: np.savez(fh, **feats))
    return out_dir


def average_caches(caches: Sequence[Path], out_dir: Path, weights: Optional[Sequence[float]] = None) -> Path:
    """Write the weighted mean of several teacher caches: an ensemble teacher, run once per cache.

    Parameters
    ----------
    caches : folders written by :func:`cache_teacher`, over the same images (each image's maps must
        have one shape across them).
    out_dir : where ``<id>.png`` and ``features.npz`` of the ensemble go.
    weights : one non-negative weight per cache (normalised to sum 1); default uniform.

    Returns
    -------
    ``out_dir``. Each map is ``round(sum_k w_k * map_k)`` on the 8-bit scale. The pooled features
    are averaged alike when every cache has one width; otherwise (an RCF and a student) the first
    cache's are kept, so the knowledge adaptor keeps that member as its target.

    References
    ----------
    G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", 2015 (distilling
    an ensemble of models into one).
    """
    caches = [Path(c) for c in caches]
    if len(caches) < 2:
        raise ValueError(f"an ensemble needs at least two caches, got {len(caches)}")
    w = normalised_weights(weights, len(caches))
    feats = [dict(np.load(c / "features.npz")) for c in caches]
    names = sorted(feats[0])
    for c, f in zip(caches[1:], feats[1:]):
        if sorted(f) != names:
            raise ValueError(f"{c}: holds other images than {caches[0]} ({len(f)} vs {len(names)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        acc = None
        for c, wk in zip(caches, w):
            png = c / f"{name}.png"
            if not png.is_file():
                raise FileNotFoundError(f"{png}: missing")
            m = read_prediction(png)
            if acc is not None and m.shape != acc.shape:
                raise ValueError(f"{png}: shape {m.shape}, the first cache's is {acc.shape}")
            acc = wk * m if acc is None else acc + wk * m
        write_prediction(out_dir / f"{name}.png", np.clip(acc, 0, 1), bits=8)
    widths = {f[names[0]].shape for f in feats}
    if len(widths) == 1:
        out = {n: sum(wk * f[n] for f, wk in zip(feats, w)).astype(np.float32) for n in names}
    else:
        out = feats[0]
    fileio.write_bytes(out_dir / "features.npz", lambda fh: np.savez(fh, **out))
    return out_dir
