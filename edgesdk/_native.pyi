"""Type stub of the C++ extension; edgesdk.postprocess documents each kernel."""

import numpy as np
import numpy.typing as npt

def conv_tri(image: npt.NDArray[np.float32], r: float, threads: int) -> npt.NDArray[np.float32]: ...
def edge_orientation(edge: npt.NDArray[np.float32], threads: int) -> npt.NDArray[np.float32]: ...
def suppress_nonmax(
    edge: npt.NDArray[np.float32], orientation: npt.NDArray[np.float32], r: int, s: int, m: float, threads: int
) -> npt.NDArray[np.float32]: ...
def nms(edge: npt.NDArray[np.float32], r: int, s: int, m: float, threads: int) -> npt.NDArray[np.float32]: ...
def thin(image: npt.NDArray[np.bool_] | npt.NDArray[np.uint8], max_iter: int) -> npt.NDArray[np.bool_]: ...
def correspond_pixels(
    bmap1: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
    bmap2: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
    max_dist: float,
    outlier_cost: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], float]: ...
def boundary_counts(
    pb: npt.NDArray[np.float64],
    gts: list[npt.NDArray[np.bool_] | npt.NDArray[np.uint8]],
    thresholds: npt.NDArray[np.float64],
    thin: bool,
    max_dist: float,
    outlier_cost: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def hysteresis(edge: npt.NDArray[np.float32], low: float, high: float) -> npt.NDArray[np.bool_]: ...
def edges(
    probability: npt.NDArray[np.float32], use_nms: bool, r: int, s: int, m: float, low: float, high: float,
    thin: bool, threads: int, band_rows: int,
) -> tuple[npt.NDArray[np.bool_], tuple[float, float, float]]: ...

MAX_THREADS: int
MAX_NMS_RADIUS: int
MAX_MAP_PIXELS: int
MAX_MATCH_PAIRS: int
