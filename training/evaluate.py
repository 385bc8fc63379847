"""Predict a BSDS500 split with a model and score it with edgesdk.eval."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import nn


from edgesdk.eval import Protocol, Result, evaluate, read_ground_truth, write_prediction
from edgesdk.runtime.geometry import STRIDE_MULTIPLE, pad_to, round_up
from training.data import list_split, to_input
from training.models.fusion import SideFusion
from training.paths import bsds500_dir


def network_input(model: nn.Module, bgr: np.ndarray) -> torch.Tensor:
    """The (1, 3, H', W') input of `model` for a BGR uint8 image, on the model's device.

    The image is reflection-padded to a multiple of the stride, exactly as the
    runtime does; crop the outputs back to the image. At 321x481 unpadded, a
    stride-32 side output has 11x16 cells stretched over 321x481 and lands a few
    pixels off the edges it found (the distilled Model: BSDS500 test ODS 0.702
    unpadded, 0.732 padded).
    """
    h, w = bgr.shape[:2]
    padded = pad_to(bgr, (round_up(h, STRIDE_MULTIPLE), round_up(w, STRIDE_MULTIPLE)))
    device = next(model.parameters()).device  # where the model was trained (a GPU run evaluates there)
    return torch.from_numpy(to_input(padded, type(model).INPUT))[None].to(device).contiguous(memory_format=torch.channels_last)


MULTI_SCALES = (0.5, 1.0, 1.5)
"""The image pyramid of RCF's multi-scale test (Liu et al., CVPR 2017, Sec. 3.3): maps averaged."""


@contextmanager
def side_outputs(model: nn.Module) -> Iterator[None]:
    """Within the block, `model` in eval mode returns its full-size side outputs beside the fused map.

    A model whose fusion is a `SideFusion` returns them only when asked; HED always does.
    """
    fusions = [m for m in model.modules() if isinstance(m, SideFusion)]
    for f in fusions:
        f.keep_sides = True
    try:
        yield
    finally:
        for f in fusions:
            f.keep_sides = False


@torch.inference_mode()
def forward_scales(
    model: nn.Module, bgr: np.ndarray, scales: Sequence[float] = (1.0,), with_features: bool = False,
    flip: bool = False, merge_sides: bool = False,
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Edge probabilities (H, W) float32, averaged over image scales, and optionally pooled features.

    Parameters
    ----------
    model : an edge network (fp32; it stays on its device).
    bgr : (H, W, 3) uint8 image.
    scales : factors the image is resized by (bilinear); each map is resized back to (H, W) and the
        maps are averaged. ``(1.0,)`` is the single-scale protocol, bit for bit as before.
    with_features : also return the last layer's globally pooled features, averaged over the scales.
    flip : also run the horizontally mirrored image at every scale and average its map, mirrored back
        (two forwards a scale).
    merge_sides : a forward's map is the mean of the fused and every side output's probabilities
        (HED's "late merging") instead of the fused one alone.

    Returns
    -------
    (probabilities, features or None)

    References
    ----------
    Y. Liu et al., "Richer Convolutional Features for Edge Detection", CVPR 2017 (multi-scale test).
    S. Xie and Z. Tu, "Holistically-Nested Edge Detection", ICCV 2015, Sec. 4 (late merging).
    """
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive factors, got {tuple(scales)}")
    model.eval()
    h, w = bgr.shape[:2]
    prob = np.zeros((h, w), np.float32)
    feats = None
    with side_outputs(model) if merge_sides else nullcontext():
        for s in scales:
            img = bgr if s == 1 else cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))),
                                                interpolation=cv2.INTER_LINEAR)
            sh, sw = img.shape[:2]
            for mirrored in (False, True) if flip else (False,):
                x = network_input(model, np.ascontiguousarray(img[:, ::-1]) if mirrored else img)
                out = model(x, with_features=True) if with_features else model(x)
                if merge_sides:
                    if not out.sides:
                        raise ValueError(f"{type(model).__name__} has no side outputs to merge")
                    logits = torch.cat([out.fused, *out.sides], 1).float()
                    p = torch.sigmoid(logits).mean(1)[0, :sh, :sw].cpu().numpy()
                else:
                    p = torch.sigmoid(out.fused)[0, 0, :sh, :sw].float().cpu().numpy()
                if mirrored:
                    p = np.ascontiguousarray(p[:, ::-1])
                prob += p if s == 1 else cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
                if with_features:
                    f = out.features.float().mean(dim=(2, 3))[0].cpu().numpy()
                    feats = f if feats is None else feats + f
    n = len(scales) * (2 if flip else 1)  # dividing by 1 is exact: single scale stays bit for bit
    return prob / n, (None if feats is None else feats / n)


def predict(model: nn.Module, bgr: np.ndarray, scales: Sequence[float] = (1.0,), flip: bool = False,
            merge_sides: bool = False) -> np.ndarray:
    """Edge probabilities (H, W) float32 for a BGR uint8 image, full resolution, fp32.

    See :func:`network_input` for the padding and :func:`forward_scales` for ``scales``, ``flip`` and
    ``merge_sides``.
    """
    return forward_scales(model, bgr, scales, flip=flip, merge_sides=merge_sides)[0]


def evaluate_split(
    model: nn.Module,
    split: str = "val",
    thresholds: int = 99,
    limit: int = 0,
    root: Optional[Path] = None,
    save_dir: Optional[Path] = None,
    progress: bool = False,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    merge_sides: bool = False,
) -> Result:
    """Run `model` over a BSDS500 split (every image at full size; ``scales``, ``flip``, ``merge_sides``:
    see :func:`forward_scales`) and benchmark the maps."""
    items = list_split(Path(root or bsds500_dir()), [split])[: limit or None]
    preds: Dict[str, np.ndarray] = {}
    gts = {}
    from tqdm.auto import tqdm

    for name, img, gt in tqdm(items, desc=f"predict {split}", disable=not progress, leave=False):
        bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
        preds[name] = predict(model, bgr, scales, flip, merge_sides)
        gts[name] = read_ground_truth(gt)
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            write_prediction(save_dir / f"{name}.png", preds[name])
    return evaluate(preds, gts, Protocol(thresholds=thresholds), progress=progress)
