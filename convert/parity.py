"""How far an exported file is from the eager fp32 model, and its own BSDS500 score through the runtime.

Everything about the exported file is measured by running it with
``edgesdk.runtime`` (LiteRT / TorchScript), never through the torch model that
produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping

import numpy as np

from edgesdk.eval import Result, read_ground_truth
from edgesdk.runtime import Detector
from training.data import list_split


def runtime_predictions(detector: Detector, root: Path, split: str, limit: int = 0, progress: bool = False) -> Dict[str, np.ndarray]:
    """Probability maps of a BSDS500 split computed by the runtime (no NMS; the evaluator applies it)."""
    from tqdm.auto import tqdm

    items = list_split(root, [split])[: limit or None]
    return {name: detector.probability(img) for name, img, _ in tqdm(items, desc=f"runtime {split}", disable=not progress, leave=False)}


def ground_truth(root: Path, split: str, names) -> Dict[str, List[np.ndarray]]:
    return {n: read_ground_truth(Path(root) / "groundTruth" / split / f"{n}.mat") for n in names}


@dataclass
class Agreement:
    """Exported vs eager on the same images."""

    images: int
    max_abs: float
    mean_abs: float
    edge_agreement: float  # |A & B| / |A | B| of the binary edge maps (Detector.edges: NMS, threshold, thin)

    def as_dict(self) -> Dict[str, float]:
        return {"images": self.images, "max_abs_diff": self.max_abs, "mean_abs_diff": self.mean_abs,
                "edge_iou": self.edge_agreement}


def agreement(exported: Mapping[str, np.ndarray], eager: Mapping[str, np.ndarray], detector: Detector, threshold: float) -> Agreement:
    max_abs, sum_abs, n_px, inter, union = 0.0, 0.0, 0, 0, 0
    for name, a in exported.items():
        b = eager[name]
        d = np.abs(a - b)
        max_abs = max(max_abs, float(d.max()))
        sum_abs += float(d.sum())
        n_px += d.size
        ea = detector.edges(a, threshold)
        eb = detector.edges(b, threshold)
        inter += int((ea & eb).sum())
        union += int((ea | eb).sum())
    return Agreement(len(exported), max_abs, sum_abs / max(n_px, 1), inter / max(union, 1))


def scores(res: Result) -> Dict[str, float]:
    return {"ods": round(res.ods_f, 4), "ois": round(res.ois_f, 4), "ap": round(res.ap, 4), "r50": round(res.r50, 4),
            "ods_threshold": round(res.ods_t, 4), "images": len(res.images)}
