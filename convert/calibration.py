"""Calibration inputs for post-training quantisation: real BSDS500 training images, as the runtime feeds them."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import cv2
import numpy as np
import torch

from edgesdk.runtime.geometry import pad_to
from training.data import list_split, to_input
from training.models.interface import InputSpec


# The TFLite signatures an export writes by default, and so the sizes its int8 ranges are calibrated at.
DEFAULT_SIZES: List[Tuple[int, int]] = [(352, 512), (512, 352), (480, 640), (640, 480), (1024, 1024)]


def calibration_batches(
    spec: InputSpec, root: Path, sizes: Sequence[Tuple[int, int]], count: int = 32, seed: int = 0
) -> Iterator[torch.Tensor]:
    """``count`` train images, each padded (reflection) to one of ``sizes`` in turn, as (1, H, W, 3) tensors.

    Padding by reflection is what the runtime does, so the activation ranges
    seen here are those met at inference.
    """
    items = list_split(Path(root), ["train"])
    order = np.random.default_rng(seed).permutation(len(items))[:count]
    for k, i in enumerate(order):
        bgr = cv2.imread(str(items[i][1]), cv2.IMREAD_COLOR)
        size = sizes[k % len(sizes)]
        h, w = bgr.shape[:2]
        if (h > size[0] or w > size[1]) and w <= size[0] and h <= size[1]:
            bgr = np.rot90(bgr)  # a landscape image into a portrait bucket, whole
        bgr = np.ascontiguousarray(bgr[: size[0], : size[1]])
        x = to_input(bgr, spec).transpose(1, 2, 0)  # HWC
        yield torch.from_numpy(np.ascontiguousarray(pad_to(x, size)))[None]


def calibration_crops(
    spec: InputSpec, root: Path, sizes: Sequence[Tuple[int, int]], count: int = 32, crop: int = 256, seed: int = 0,
    batch: int = 8,
) -> List[torch.Tensor]:
    """Random ``crop`` x ``crop`` windows of the calibration images, as NCHW batches of ``batch`` (for AdaRound).

    A bucket smaller than ``crop`` shrinks the window on that side for every image, so that crops of
    different buckets still stack into one batch.
    """
    rng = np.random.default_rng(seed)
    ch, cw = min(crop, *(s[0] for s in sizes)), min(crop, *(s[1] for s in sizes))
    crops = []
    for x in calibration_batches(spec, root, sizes, count=count, seed=seed):
        x = x.permute(0, 3, 1, 2)  # padded to its bucket, so at least ch x cw
        h, w = x.shape[-2:]
        i, j = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crops.append(x[:, :, i : i + ch, j : j + cw])
    return [torch.cat(crops[k : k + batch]) for k in range(0, len(crops), batch)]


def parse_sizes(text: str) -> List[Tuple[int, int]]:
    """"352x512,512x352" -> [(352, 512), (512, 352)] (height x width)."""
    out = []
    for part in text.split(","):
        h, _, w = part.strip().lower().partition("x")
        out.append((int(h), int(w)))
    return out
