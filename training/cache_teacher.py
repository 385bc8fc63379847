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
        cv2.imwrite(str(out_dir / f"{name}.png"), np.round(prob * 255).astype(np.uint8))
    np.savez(out_dir / "features.npz", **feats)
    return out_dir
