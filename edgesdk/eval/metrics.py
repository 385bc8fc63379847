"""ODS, OIS, AP and R50 from per-image counts (the BSDS ``collect_eval_bdry`` / ``edgesEvalDir``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Tuple

import numpy as np

from edgesdk.eval.counts import ImageCounts

# MATLAB's eps, which the benchmark uses to guard its divisions.
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class ImageScore:
    """Best (interpolated) operating point of one image, as in ``eval_bdry_img.txt``."""

    name: str
    threshold: float
    recall: float
    precision: float
    f: float


@dataclass
class Result:
    """A benchmark result.

    Attributes
    ----------
    ods_f, ods_p, ods_r, ods_t : float
        F-measure, precision, recall and threshold at the optimal dataset scale
        (one threshold for all images, interpolated between thresholds).
    ois_f, ois_p, ois_r : float
        The same at the optimal image scale (best threshold per image).
    ap : float
        Average precision (area under the PR curve).
    r50 : float
        Recall at 50 % precision (NaN if the curve never reaches it).
    thresholds, recall, precision, f : ndarray
        The dataset PR curve, one entry per threshold.
    images : list of ImageScore
        Per-image best operating points, in evaluation order.
    protocol : dict
        The protocol that produced the numbers (``Protocol.as_dict()``).
    """

    ods_f: float
    ods_p: float
    ods_r: float
    ods_t: float
    ois_f: float
    ois_p: float
    ois_r: float
    ap: float
    r50: float
    thresholds: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    f: np.ndarray
    images: List[ImageScore]
    protocol: Dict = field(default_factory=dict)

    def summary(self) -> Dict[str, float]:
        """The headline numbers as a plain dict."""
        return {
            "ODS": self.ods_f,
            "OIS": self.ois_f,
            "AP": self.ap,
            "R50": self.r50,
            "ODS_threshold": self.ods_t,
            "ODS_precision": self.ods_p,
            "ODS_recall": self.ods_r,
            "OIS_precision": self.ois_p,
            "OIS_recall": self.ois_r,
        }


def compute_rpf(cnt_r, sum_r, cnt_p, sum_p) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recall, precision and F-measure from counts (``computeRPF``)."""
    r = np.asarray(cnt_r, float) / np.maximum(_EPS, sum_r)
    p = np.asarray(cnt_p, float) / np.maximum(_EPS, sum_p)
    f = 2 * p * r / np.maximum(_EPS, p + r)
    return r, p, f


def best_rpf(t: np.ndarray, r: np.ndarray, p: np.ndarray) -> Tuple[float, float, float, float]:
    """Best F on the PR curve, interpolating linearly between thresholds (``findBestRPF``).

    Returns ``(recall, precision, f, threshold)``.
    """
    if len(t) == 1:
        f = 2 * p[0] * r[0] / max(_EPS, p[0] + r[0])
        return float(r[0]), float(p[0]), float(f), float(t[0])
    a = np.linspace(0, 1, 100)[None, :]
    b = 1 - a
    rj = r[1:, None] * a + r[:-1, None] * b
    pj = p[1:, None] * a + p[:-1, None] * b
    tj = t[1:, None] * a + t[:-1, None] * b
    fj = 2 * pj * rj / np.maximum(_EPS, pj + rj)
    # MATLAB keeps the first segment that reaches the maximum, and within it
    # the first sample: a row-major argmax does the same.
    k = int(np.argmax(fj))
    return float(rj.flat[k]), float(pj.flat[k]), float(fj.flat[k]), float(tj.flat[k])


def average_precision(r: np.ndarray, p: np.ndarray) -> float:
    """Area under the PR curve as ``edgesEvalDir`` computes it.

    Precision is interpolated linearly at recalls 0, 0.01, ..., 1 between the
    distinct recall values; points outside the recall range are dropped; the
    sum is divided by 100 (the toolbox's convention, which it notes should be
    101).
    """
    ru, first = np.unique(r, return_index=True)
    if len(ru) <= 1:
        return 0.0
    pu = p[first]
    grid = np.linspace(0, 1, 101)
    vals = np.interp(grid, ru, pu, left=np.nan, right=np.nan)
    return float(np.nansum(vals) / 100)


def recall_at_half_precision(r: np.ndarray, p: np.ndarray) -> float:
    """Recall where precision is 0.5, or at the lowest precision if all exceed it (``R50``)."""
    pu, first = np.unique(p, return_index=True)
    if len(pu) <= 1:
        return float("nan")
    target = max(pu[0], 0.5)
    return float(np.interp(target, pu, r[first], left=np.nan, right=np.nan))


def summarize(counts: Mapping[str, ImageCounts], protocol: Dict | None = None) -> Result:
    """Aggregate per-image counts into ODS/OIS/AP/R50.

    Parameters
    ----------
    counts : mapping of image name to ImageCounts
        All entries must share the same thresholds.
    protocol : dict, optional
        Recorded in the result.

    Returns
    -------
    Result

    References
    ----------
    P. Dollár, Structured Edge Detection Toolbox, ``edgesEvalDir.m`` (results
    identical to the BSDS500 ``boundaryBench`` plus R50).
    """
    if not counts:
        raise ValueError("no images to summarize")
    items = list(counts.items())
    t = items[0][1].thresholds
    for name, c in items:
        if len(c.thresholds) != len(t) or not np.allclose(c.thresholds, t):
            raise ValueError(f"image {name} was evaluated at different thresholds")
    cnt_r = sum(c.cnt_r for _, c in items)
    sum_r = sum(c.sum_r for _, c in items)
    cnt_p = sum(c.cnt_p for _, c in items)
    sum_p = sum(c.sum_p for _, c in items)
    ois = np.zeros(4)
    images = []
    for name, c in items:
        r1, p1, f1 = compute_rpf(c.cnt_r, c.sum_r, c.cnt_p, c.sum_p)
        k = int(np.argmax(f1))  # MATLAB max: first index
        ois += [c.cnt_r[k], c.sum_r[k], c.cnt_p[k], c.sum_p[k]]
        br, bp, bf, bt = best_rpf(t, r1, p1)
        images.append(ImageScore(name, bt, br, bp, bf))
    r, p, f = compute_rpf(cnt_r, sum_r, cnt_p, sum_p)
    ods_r, ods_p, ods_f, ods_t = best_rpf(t, r, p)
    ois_r, ois_p, ois_f = (float(v) for v in compute_rpf(*ois))
    return Result(
        ods_f=ods_f,
        ods_p=ods_p,
        ods_r=ods_r,
        ods_t=ods_t,
        ois_f=ois_f,
        ois_p=ois_p,
        ois_r=ois_r,
        ap=average_precision(r, p),
        r50=recall_at_half_precision(r, p),
        thresholds=np.asarray(t, float),
        recall=r,
        precision=p,
        f=f,
        images=images,
        protocol=dict(protocol or {}),
    )
