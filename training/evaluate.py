"""Predict a BSDS500 split with a model and score it with edgesdk.eval."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import nn

from edgesdk.eval import Protocol, Result, evaluate, read_ground_truth
from edgesdk.runtime.geometry import STRIDE_MULTIPLE, pad_to, round_up
from training.data import list_split, to_input
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


@torch.inference_mode()
def forward_scales(
    model: nn.Module, bgr: np.ndarray, scales: Sequence[float] = (1.0,), with_features: bool = False,
    flip: bool = False,
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

    Returns
    -------
    (probabilities, features or None)

    References
    ----------
    Y. Liu et al., "Richer Convolutional Features for Edge Detection", CVPR 2017 (multi-scale test).
    """
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive factors, got {tuple(scales)}")
    model.eval()
    h, w = bgr.shape[:2]
    prob = np.zeros((h, w), np.float32)
    feats = None
    for s in scales:
        img = bgr if s == 1 else cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))),
                                            interpolation=cv2.INTER_LINEAR)
        sh, sw = img.shape[:2]
        for mirrored in (False, True) if flip else (False,):
            x = network_input(model, np.ascontiguousarray(img[:, ::-1]) if mirrored else img)
            out = model(x, with_features=True) if with_features else model(x)
            p = torch.sigmoid(out.fused)[0, 0, :sh, :sw].float().cpu().numpy()
            if mirrored:
                p = np.ascontiguousarray(p[:, ::-1])
            prob += p if s == 1 else cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
            if with_features:
                f = out.features.float().mean(dim=(2, 3))[0].cpu().numpy()
                feats = f if feats is None else feats + f
    n = len(scales) * (2 if flip else 1)  # dividing by 1 is exact: single scale stays bit for bit
    return prob / n, (None if feats is None else feats / n)


def predict(model: nn.Module, bgr: np.ndarray, scales: Sequence[float] = (1.0,), flip: bool = False) -> np.ndarray:
    """Edge probabilities (H, W) float32 for a BGR uint8 image, full resolution, fp32.

    See :func:`network_input` for the padding and :func:`forward_scales` for ``scales`` and ``flip``.
    """
    return forward_scales(model, bgr, scales, flip=flip)[0]


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
) -> Result:
    """Run `model` over a BSDS500 split (every image at full size; ``scales``, ``flip``: see
    :func:`forward_scales`) and benchmark the maps."""
    items = list_split(Path(root or bsds500_dir()), [split])[: limit or None]
    preds: Dict[str, np.ndarray] = {}
    gts = {}
    from tqdm.auto import tqdm

    for name, img, gt in tqdm(items, desc=f"predict {split}", disable=not progress, leave=False):
        bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
        preds[name] = predict(model, bgr, scales, flip)
        gts[name] = read_ground_truth(gt)
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(save_dir / f"{name}.png"), np.round(preds[name] * 255).astype(np.uint8))
    return evaluate(preds, gts, Protocol(thresholds=thresholds), progress=progress)
