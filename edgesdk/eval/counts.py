"""Per-image boundary counts over the threshold sweep (the BSDS ``evaluation_bdry_image``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgesdk import postprocess
from edgesdk.eval.protocol import Protocol


@dataclass(frozen=True)
class ImageCounts:
    """Match counts of one image at every threshold.

    Recall at threshold ``k`` is ``cnt_r[k] / sum_r[k]`` (ground-truth pixels
    matched, summed over annotators) and precision ``cnt_p[k] / sum_p[k]``
    (predicted pixels matched to at least one annotator).
    """

    thresholds: np.ndarray
    cnt_r: np.ndarray
    sum_r: np.ndarray
    cnt_p: np.ndarray
    sum_p: np.ndarray


def image_counts(
    pred: np.ndarray, ground_truth: Sequence[np.ndarray], protocol: Protocol = Protocol()
) -> ImageCounts:
    """Threshold, thin and match one prediction against each annotator.

    Parameters
    ----------
    pred : (H, W) float array
        Edge probabilities in [0, 1].
    ground_truth : sequence of (H, W) arrays
        One binary boundary map per annotator.
    protocol : Protocol
        NMS, thresholds, thinning and matching tolerance.

    Returns
    -------
    ImageCounts

    References
    ----------
    D. Martin, C. Fowlkes, D. Tal and J. Malik, BSDS500 benchmark,
    ``evaluation_bdry_image.m``; P. Dollár, ``edgesEvalImg.m``.
    """
    pred = np.asarray(pred)
    if pred.ndim != 2:
        raise ValueError(f"prediction must be 2-D, got shape {pred.shape}")
    gts = [np.ascontiguousarray(np.asarray(g) != 0) for g in ground_truth]
    if not gts:
        raise ValueError("at least one ground-truth map is needed")
    for g in gts:
        if g.shape != pred.shape:
            raise ValueError(f"ground truth has shape {g.shape} but the prediction {pred.shape}")
    # Each image is evaluated on one thread; callers parallelise across images.
    pb = postprocess.nms(pred, protocol.nms, threads=1) if protocol.nms is not None else pred
    thresholds = protocol.threshold_values()
    cnt_r, sum_r, cnt_p, sum_p = postprocess.boundary_counts(
        pb, gts, thresholds, thin=protocol.thin, max_dist=protocol.max_dist, outlier_cost=protocol.outlier_cost)
    return ImageCounts(thresholds, cnt_r.astype(np.float64), sum_r.astype(np.float64), cnt_p.astype(np.float64),
                       sum_p.astype(np.float64))
