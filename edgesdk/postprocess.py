"""Edge-map post-processing: non-maximum suppression, thinning, pixel matching.

The Python face of the C++ kernels in ``csrc/``: it converts dtypes, holds the
defaults and documents the algorithms. Every function is a plain function on
arrays and returns a new array; the inputs are never modified.

The defaults are the ones the edge-detection literature evaluates with:
NMS as in the HED/RCF ``edge_nms.m`` script (r=2, s=5, m=1.01), thinning as
MATLAB ``bwmorph(BW, 'thin', Inf)`` and matching as the BSDS benchmark's
``correspondPixels`` with ``maxDist=0.0075``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from edgesdk.kernels import _native
from edgesdk.arguments import check_count, check_flag, check_real, is_int, is_number
from edgesdk.cpus import MAX_THREADS, available_cpus
from edgesdk.errors import InputError

__all__ = [
    "NmsParams",
    "conv_tri",
    "edge_orientation",
    "nms",
    "thin",
    "correspond_pixels",
    "boundary_counts",
    "hysteresis",
    "edges",
]

# The largest map a kernel takes (2^29 pixels): checked on the array's shape before any
# conversion copies it (a broadcast view of 10^10 pixels costs nothing until copied).
MAX_MAP_PIXELS = int(_native.MAX_MAP_PIXELS)
# The largest NMS radius and border band.
MAX_NMS_RADIUS = int(_native.MAX_NMS_RADIUS)
MAX_NMS_BAND = 2**31 - 1


@dataclass(frozen=True)
class NmsParams:
    """Parameters of edge NMS (Dollár's ``edgesNmsMex``).

    Attributes
    ----------
    r : int
        Suppression radius along the edge normal, in pixels.
    s : int
        Width of the border band whose responses are faded out linearly.
    m : float
        Multiplier for conservative suppression: a pixel survives unless a
        neighbour along the normal exceeds ``m`` times its value.
    """

    r: int = 2
    s: int = 5
    m: float = 1.01

    def __post_init__(self) -> None:
        # int(2.5) would quietly be 2, and "2" would be accepted as a radius.
        if not (is_int(self.r, 0) and is_int(self.s, 0) and is_number(self.m) and self.m > 0):
            raise InputError(f"nms needs integers r, s >= 0 and a positive m, got r={self.r!r}, s={self.s!r}, m={self.m!r}")
        if self.r > MAX_NMS_RADIUS or self.s > MAX_NMS_BAND:
            raise InputError(f"nms needs r <= {MAX_NMS_RADIUS} and s <= {MAX_NMS_BAND}, got r={self.r!r}, s={self.s!r}")
        # numpy scalars become Python numbers: the parameters are written to JSON beside every result.
        for name, kind in (("r", int), ("s", int), ("m", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    def as_dict(self) -> dict:
        return asdict(self)


def _threads(threads: int) -> int:
    """``threads``, with 0 resolved here to the CPUs the process may use (the kernel's
    own fallback, std::thread::hardware_concurrency, sees neither affinity nor quota)."""
    n = check_count(threads, "threads", 0, MAX_THREADS)
    return available_cpus() if n == 0 else n


def _check_shape(a: np.ndarray, name: str) -> None:
    """Refuse a map the kernels cannot take before anything copies or converts it."""
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D array, got shape {a.shape}")
    if a.size > MAX_MAP_PIXELS:
        raise InputError(f"{name} is too large, shape {a.shape} (at most {MAX_MAP_PIXELS} pixels)")


def _as_float32_map(edge: np.ndarray, name: str) -> np.ndarray:
    """A C-contiguous float32 copy/view of a 2-D floating-point or bool map."""
    edge = np.asarray(edge)
    _check_shape(edge, name)
    if edge.dtype == np.bool_:
        edge = edge.astype(np.float32)
    elif not np.issubdtype(edge.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point map in [0, 1], got {edge.dtype}; "
            "scale integer maps first (e.g. uint8 / 255)"
        )
    return np.ascontiguousarray(edge, dtype=np.float32)


def _as_binary_map(bw: np.ndarray, name: str) -> np.ndarray:
    """A C-contiguous bool/uint8 view of a 2-D map (nonzero = on)."""
    bw = np.asarray(bw)
    _check_shape(bw, name)
    if bw.dtype != np.bool_ and bw.dtype != np.uint8:
        if np.issubdtype(bw.dtype, np.floating) and not np.isfinite(bw).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        bw = bw != 0
    return np.ascontiguousarray(bw)


def conv_tri(image: np.ndarray, r: float, *, threads: int = 0) -> np.ndarray:
    """Smooth with a separable triangle filter (Dollár's ``convTri``).

    Parameters
    ----------
    image : (H, W) array
        Floating-point image.
    r : float
        Radius. For ``0 < r <= 1`` the filter is ``[1 p 1] / (2 + p)`` with
        ``p = 12 / r / (r + 2) - 2``; for an integer ``r > 1`` it is
        ``[1 2 ... r+1 ... 2 1] / (r + 1)**2``.
    threads : int
        Threads to split the rows over (0: all cores). Results do not depend on it.

    Returns
    -------
    (H, W) float32 array
        The image filtered along both axes with symmetric (edge-repeating)
        padding.

    References
    ----------
    P. Dollár, Piotr's Computer Vision Matlab Toolbox, ``channels/convTri.m``.
    """
    return _native.conv_tri(_as_float32_map(image, "image"), check_real(r, "conv_tri: r"), _threads(threads))


def edge_orientation(edge: np.ndarray, *, threads: int = 0) -> np.ndarray:
    """Orientation of the edge normal from second derivatives.

    ``O = mod(atan(Oyy * sign(-Oxy) / (Oxx + 1e-5)), pi)`` with the derivatives
    taken (MATLAB ``gradient``) of ``conv_tri(edge, 4)``.

    Parameters
    ----------
    edge : (H, W) array
        Edge probability map.
    threads : int
        Threads to split the rows over (0: all cores). Results do not depend on it.

    Returns
    -------
    (H, W) float32 array
        Angles in ``[0, pi)``, measured from the x axis (columns) towards the
        y axis (rows).

    References
    ----------
    P. Dollár and C. L. Zitnick, "Fast Edge Detection Using Structured
    Forests", TPAMI 2015 (``edgesDetect.m``).
    """
    return _native.edge_orientation(_as_float32_map(edge, "edge"), _threads(threads))


def nms(edge: np.ndarray, params: NmsParams = NmsParams(), *, threads: int = 0) -> np.ndarray:
    """Edge non-maximum suppression as run before the BSDS benchmark.

    The HED/RCF ``edge_nms.m`` pipeline: ``E = conv_tri(edge, 1)``,
    ``O = edge_orientation(E)``, then every pixel of ``E`` weaker than
    ``params.m`` times a bilinearly interpolated neighbour at distance
    ``1..params.r`` along the normal is zeroed, and a band of width ``params.s``
    at the border is faded out linearly.

    Parameters
    ----------
    edge : (H, W) array
        Edge probability map (floating point, normally in [0, 1], or bool).
    params : NmsParams
        Suppression radius, border band and multiplier.
    threads : int
        Threads to split the rows over (0: all cores). Results do not depend on it.

    Returns
    -------
    (H, W) float32 array
        The thinned-out soft edge map (values of the smoothed map where they
        survive, 0 elsewhere). The normal direction is computed from
        ``tan(O)`` directly rather than as ``cos``/``sin`` of ``O``, which agrees
        with the original up to float rounding.

    References
    ----------
    P. Dollár and C. L. Zitnick, "Fast Edge Detection Using Structured
    Forests", TPAMI 2015 (``private/edgesNmsMex.cpp``).
    """
    if not isinstance(params, NmsParams):
        raise TypeError(f"nms: params must be an NmsParams, got {type(params).__name__}")
    return _native.nms(
        _as_float32_map(edge, "edge"), params.r, params.s, float(params.m), _threads(threads)
    )


def thin(image: np.ndarray, max_iter: Optional[int] = None) -> np.ndarray:
    """Morphological thinning, identical to MATLAB ``bwmorph(BW, 'thin', n)``.

    Parameters
    ----------
    image : (H, W) array
        Binary image; nonzero pixels are foreground.
    max_iter : int, optional
        Number of iterations (each runs both subiterations); ``None`` thins
        until nothing changes (MATLAB's ``n = Inf``).

    Returns
    -------
    (H, W) bool array
        The thinned image. Pixels outside the image count as background.

    References
    ----------
    Z. Guo and R. W. Hall, "Parallel thinning with two-subiteration
    algorithms", Comm. ACM 32(3), 1989; L. Lam, S.-W. Lee and C. Y. Suen,
    "Thinning Methodologies - A Comprehensive Survey", TPAMI 14(9), 1992, p. 879.
    """
    n = -1 if max_iter is None else check_count(max_iter, "max_iter (None: until nothing changes)", 0)
    return _native.thin(_as_binary_map(image, "image"), n)


def correspond_pixels(
    bmap1: np.ndarray,
    bmap2: np.ndarray,
    max_dist: float = 0.0075,
    outlier_cost: float = 100.0,
) -> Tuple[np.ndarray, np.ndarray, float]:
    """Minimum-cost one-to-one matching of the pixels of two boundary maps.

    Equivalent to the BSDS benchmark's ``correspondPixels``: pixels closer than
    ``max_dist * diagonal`` may match; the matching maximises the number of
    matched pairs and, among those, minimises their total distance (rounded to
    hundredths of a pixel, as the original does). The result is deterministic.

    Parameters
    ----------
    bmap1, bmap2 : (H, W) arrays
        Binary boundary maps of the same shape (nonzero = boundary).
    max_dist : float
        Matching radius as a fraction of the image diagonal.
    outlier_cost : float
        Cost of leaving a pixel unmatched, as a multiple of the diagonal
        (must exceed ``max_dist``).

    Returns
    -------
    match1, match2 : (H, W) int64 arrays
        ``match1[i, j] = 1 + k`` where ``k`` is the row-major linear index of
        the pixel of ``bmap2`` matched to pixel ``(i, j)`` of ``bmap1``
        (``np.unravel_index(k, shape)`` gives its coordinates); 0 where
        unmatched. ``match2`` likewise for ``bmap2``.
    cost : float
        Total matched distance plus ``outlier_cost * diagonal`` per unmatched
        boundary pixel of either map (as ``correspondPixels`` reports it).

    References
    ----------
    D. Martin, C. Fowlkes and J. Malik, "Learning to Detect Natural Image
    Boundaries Using Local Brightness, Color, and Texture Cues", TPAMI 26(5),
    2004; the BSDS500 benchmark code (``match.cc``).
    """
    return _native.correspond_pixels(
        _as_binary_map(bmap1, "bmap1"),
        _as_binary_map(bmap2, "bmap2"),
        check_real(max_dist, "max_dist"),
        check_real(outlier_cost, "outlier_cost"),
    )


def boundary_counts(
    pb: np.ndarray,
    ground_truth: Sequence[np.ndarray],
    thresholds: np.ndarray,
    *,
    thin: bool = True,
    max_dist: float = 0.0075,
    outlier_cost: float = 100.0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's BSDS boundary counts over a sweep of thresholds, in one call.

    For every threshold ``t``: the map ``pb >= t`` (compared in float64), thinned
    (:func:`thin`) when ``thin``, matched against each annotator's map as
    :func:`correspond_pixels` matches them. The same counts as calling those
    functions threshold by threshold, without their full-size outputs: what
    does not change with the threshold is computed once per annotator.

    Parameters
    ----------
    pb : (H, W) floating-point array
        The (suppressed) edge map; thresholds apply to it as it is.
    ground_truth : sequence of (H, W) arrays
        One binary boundary map per annotator.
    thresholds : 1-D array
        The thresholds, in any order.
    thin : bool
        Thin each thresholded map.
    max_dist, outlier_cost : float
        As for :func:`correspond_pixels`.

    Returns
    -------
    cnt_r, sum_r, cnt_p, sum_p : int64 arrays, one entry per threshold
        Ground-truth pixels matched (summed over annotators) and their total; predicted
        pixels matched by at least one annotator and their total.

    References
    ----------
    D. Martin, C. Fowlkes and J. Malik, TPAMI 26(5), 2004; the BSDS500 benchmark's
    ``evaluation_bdry_image.m``.
    """
    pb = np.asarray(pb)
    _check_shape(pb, "pb")
    if not (np.issubdtype(pb.dtype, np.floating) or pb.dtype == np.bool_):
        raise TypeError(f"pb must be a floating-point map, got {pb.dtype}")
    gts = [_as_binary_map(g, "ground truth") for g in ground_truth]
    ts = np.ascontiguousarray(np.asarray(thresholds, dtype=np.float64).reshape(-1))
    return _native.boundary_counts(np.ascontiguousarray(pb, dtype=np.float64), gts, ts, check_flag(thin, "thin"),
                                   check_real(max_dist, "max_dist"), check_real(outlier_cost, "outlier_cost"))


def _level(value: float, name: str) -> float:
    """A threshold as a float (maps are compared in float32: a nonzero one that rounds to 0 is refused)."""
    v = check_real(value, name)
    if not np.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    if v != 0 and np.float32(v) == 0:
        raise InputError(f"{name} {value!r} is 0 in float32, where maps are compared")
    return v


def hysteresis(edge: np.ndarray, low: float, high: float) -> np.ndarray:
    """Hysteresis thresholding.

    Parameters
    ----------
    edge : (H, W) array
        Edge strength map.
    low, high : float
        Pixels ``>= high`` are edges; pixels ``>= low`` are edges when
        8-connected to one of them through pixels ``>= low``.

    Returns
    -------
    (H, W) bool array

    References
    ----------
    J. Canny, "A Computational Approach to Edge Detection", TPAMI 8(6), 1986.
    """
    return _native.hysteresis(_as_float32_map(edge, "edge"), _level(low, "hysteresis: low"), _level(high, "hysteresis: high"))


def edges(
    probability: np.ndarray,
    high: float,
    low: Optional[float] = None,
    *,
    nms: Optional[NmsParams] = NmsParams(),
    thin: bool = True,
    threads: int = 0,
    band_rows: int = 0,
    timings: Optional[Dict[str, float]] = None,
) -> np.ndarray:
    """The binary edges of a probability map: NMS, hysteresis thresholds, thinning.

    What a detector reports, and what the evaluation figures draw:
    ``thin(hysteresis(nms(probability), low, high))``, computed in bounded memory. NMS runs
    in bands of rows (images above 4 Mpixel) classified at once into the one-byte result,
    where hysteresis and thinning then work in place, so besides the input and the result
    it holds no full-size map (4 bytes per pixel that hysteresis or thinning touches).

    Parameters
    ----------
    probability : (H, W) array
        Edge probabilities (floating point or bool).
    high : float
        Pixels of the (suppressed) map ``>= high`` are edges.
    low : float, optional
        Pixels ``>= low`` 8-connected to an edge are edges too; None (or ``low >= high``)
        is a plain threshold.
    nms : NmsParams or None
        Edge NMS first (:func:`nms`); None thresholds the map as it is.
    thin : bool
        Thin the result to one pixel (:func:`thin`).
    threads : int
        Threads for NMS (0: all cores). Results do not depend on it.
    band_rows : int
        NMS band height (0: automatic). Results do not depend on it.
    timings : dict, optional
        Receives the seconds of each stage: ``nms``, ``threshold``, ``thin``.

    Returns
    -------
    (H, W) bool array
    """
    if nms is not None and not isinstance(nms, NmsParams):
        raise TypeError(f"edges: nms must be an NmsParams or None, got {type(nms).__name__}")
    hi = _level(high, "edges: high")
    lo = hi if low is None else _level(low, "edges: low")
    p = nms if nms is not None else NmsParams()
    out, (t_nms, t_threshold, t_thin) = _native.edges(
        _as_float32_map(probability, "probability"), nms is not None, p.r, p.s, p.m, min(lo, hi), hi,
        bool(thin), _threads(threads), check_count(band_rows, "band_rows", 0))
    if timings is not None:
        timings.update(nms=t_nms, threshold=t_threshold, thin=t_thin)
    return out
