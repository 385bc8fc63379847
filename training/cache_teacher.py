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
from training.evaluate import network_input
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
) -> Path:
    """Write ``<id>.png`` (8-bit probabilities) and ``features.npz`` (id -> pooled last-layer features).

    The teacher runs in float32 on ``device`` (``cpu`` or ``cuda``); it is moved there.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    teacher = teacher.to(device).eval()
    feats = {}
    items = list_split(Path(root or bsds500_dir()), splits)[: limit or None]
    for name, img, _ in tqdm(items, desc="teacher", disable=not progress):
        bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
        # Padded as for evaluation: unpadded, the teacher's side outputs land pixels off its
        # edges and the cached targets score below the teacher (see network_input).
        h, w = bgr.shape[:2]
        out = teacher(network_input(teacher, bgr), with_features=True)
        prob = torch.sigmoid(out.fused)[0, 0, :h, :w].float().cpu().numpy()
        cv2.imwrite(str(out_dir / f"{name}.png"), np.round(prob * 255).astype(np.uint8))
        feats[name] = out.features.float().mean(dim=(2, 3))[0].cpu().numpy()
    np.savez(out_dir / "features.npz", **feats)
    return out_dir
