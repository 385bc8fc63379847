"""Two free post-processing ideas for a shipped file, scored with the standard protocol (docs/results.md, stop 25).

The runtime's map of each BSDS500 val and test image (``Detector.probability``, as ``edgesdk eval --model``
computes it), then, scored beside it:

- a Gaussian blur of the map, sigma 0.5, 1, 1.5 (does the student's map gain from smoothing before NMS?);
- the horizontal flip: the mean of the map and the mirrored map of the mirrored image (2 forwards).

    python docs/scripts/flip-and-blur.py edgesdk/models/model-int8.json
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from convert.parity import ground_truth, runtime_predictions
from edgesdk.eval import Protocol, evaluate
from edgesdk.runtime import load
from training.paths import bsds500_dir


def flipped_mean(detector, split: str, maps: dict) -> dict:
    """The mean of each image's map (given) and the mirrored map of its mirrored image."""
    out = {}
    for n, a in maps.items():
        bgr = cv2.imread(str(bsds500_dir() / "images" / split / f"{n}.jpg"), cv2.IMREAD_COLOR)
        b = detector.probability(np.ascontiguousarray(bgr[:, ::-1]), color="BGR")[:, ::-1]
        out[n] = (a + b) / 2
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="an exported model's .json, or a bundled name")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    detector = load(args.model, threads=args.threads)
    for split in ("val", "test"):
        maps = runtime_predictions(detector, bsds500_dir(), split)
        gts = ground_truth(bsds500_dir(), split, maps)
        variants = {"as shipped": maps}
        for sigma in (0.5, 1.0, 1.5):
            variants[f"blur sigma {sigma}"] = {n: cv2.GaussianBlur(m, (0, 0), sigma) for n, m in maps.items()}
        variants["horizontal flip"] = flipped_mean(detector, split, maps)
        for name, v in variants.items():
            r = evaluate(v, gts, Protocol())
            print(f"{split:4s} {name:15s} ODS {r.ods_f:.4f}  OIS {r.ois_f:.4f}  AP {r.ap:.4f}  (threshold {r.ods_t:.3f})",
                  flush=True)


if __name__ == "__main__":
    main()
