"""The BSDS boundary-benchmark protocol: the one place that decides its parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from edgesdk.arguments import check_flag, check_real
from edgesdk.postprocess import NmsParams


@dataclass(frozen=True)
class Protocol:
    """How predictions are compared with ground truth.

    The defaults are the standard single-scale BSDS500 protocol used by HED,
    RCF and their successors: edge NMS (r=2, s=5, m=1.01) on the prediction, 99
    thresholds, thinning of every thresholded map, and one-to-one matching
    within 0.75 % of the image diagonal.

    Attributes
    ----------
    thresholds : int or sequence of float
        An integer ``K`` means ``linspace(1/(K+1), 1 - 1/(K+1), K)`` (the
        benchmark's default, ``K = 99``); a sequence gives the thresholds.
    max_dist : float
        Matching tolerance as a fraction of the image diagonal.
    thin : bool
        Thin each thresholded prediction (MATLAB ``bwmorph 'thin' Inf``).
    nms : NmsParams or None
        Edge NMS applied to the prediction first; None to evaluate it as given
        (for maps that are already suppressed).
    outlier_cost : float
        Cost of an unmatched pixel, as a multiple of the diagonal
        (``correspondPixels`` default).
    """

    thresholds: Union[int, Tuple[float, ...]] = 99
    max_dist: float = 0.0075
    thin: bool = True
    nms: Optional[NmsParams] = field(default_factory=NmsParams)
    outlier_cost: float = 100.0

    def __post_init__(self) -> None:
        # "no" would be truthy, True a count of 1, "0.1" a string compared with numbers.
        # numpy scalars become Python values: the protocol is written to JSON beside every result.
        object.__setattr__(self, "thin", check_flag(self.thin, "thin"))
        object.__setattr__(self, "max_dist", check_real(self.max_dist, "max_dist"))
        object.__setattr__(self, "outlier_cost", check_real(self.outlier_cost, "outlier_cost"))
        if self.nms is not None and not isinstance(self.nms, NmsParams):
            raise TypeError(f"nms must be an NmsParams or None, got {type(self.nms).__name__}")
        if isinstance(self.thresholds, (bool, np.bool_)):
            raise ValueError(f"thresholds must be a positive count or a list of values, got {self.thresholds!r}")
        if isinstance(self.thresholds, (int, np.integer)):
            object.__setattr__(self, "thresholds", int(self.thresholds))
            if self.thresholds < 1:
                raise ValueError("thresholds must be a positive count or a list of values")
        else:
            values = tuple(float(t) for t in self.thresholds)
            if not values or any(not np.isfinite(t) for t in values):
                raise ValueError("thresholds must be a non-empty list of finite values")
            if min(values) < 0 or max(values) > 1:  # predictions are probabilities in [0, 1]
                raise ValueError(f"threshold values must be in [0, 1], got {min(values):g} ... {max(values):g}")
            if any(b <= a for a, b in zip(values, values[1:])):
                raise ValueError("threshold values must be strictly increasing")
            object.__setattr__(self, "thresholds", values)
        if not 0 <= self.max_dist <= 1:
            raise ValueError("max_dist must be in [0, 1] (a fraction of the diagonal)")
        if self.outlier_cost <= self.max_dist:
            raise ValueError("outlier_cost must exceed max_dist")

    def threshold_values(self) -> np.ndarray:
        """The thresholds as a float64 array, ascending."""
        if isinstance(self.thresholds, (int, np.integer)):
            k = int(self.thresholds)
            if k == 1:
                return np.array([0.5])
            return np.linspace(1.0 / (k + 1), 1.0 - 1.0 / (k + 1), k)
        return np.asarray(self.thresholds, dtype=np.float64)

    def as_dict(self) -> dict:
        """A JSON-ready record of the protocol, stored next to every result."""
        return {
            "thresholds": self.thresholds if isinstance(self.thresholds, int) else list(self.thresholds),
            "max_dist": self.max_dist,
            "thin": self.thin,
            "nms": None if self.nms is None else self.nms.as_dict(),
            "outlier_cost": self.outlier_cost,
            "matching": "one-to-one, max matches then min total distance (exact), as correspondPixels",
            "thinning": "bwmorph(BW, 'thin', Inf)",
        }


def parse_thresholds(value: Union[str, int, Sequence[float]]) -> Union[int, Tuple[float, ...]]:
    """Thresholds from a CLI string: a count (``"99"``) or comma-separated values."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    if not isinstance(value, str):
        return tuple(float(v) for v in value)
    text = value.strip().strip("[]")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"thresholds must be a count or comma-separated numbers, got {value!r}") from None
