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
    n = len(thresholds)
    cnt_r, sum_r, cnt_p, sum_p = (np.zeros(n) for _ in range(4))
    gt_sums = sum(float(g.sum()) for g in gts)
    for k, t in enumerate(thresholds):
        bmap = pb >= t
        if protocol.thin:
            bmap = postprocess.thin(bmap)
        matched_pred = np.zeros(bmap.shape, dtype=bool)
        for g in gts:
            m1, m2, _ = postprocess.correspond_pixels(bmap, g, protocol.max_dist, protocol.outlier_cost)
            # A predicted pixel counts once even if several annotators match it.
            matched_pred |= m1 > 0
            cnt_r[k] += np.count_nonzero(m2)
        sum_r[k] = gt_sums
        cnt_p[k] = np.count_nonzero(matched_pred)
        sum_p[k] = np.count_nonzero(bmap)
    return ImageCounts(thresholds, cnt_r, sum_r, cnt_p, sum_p)
