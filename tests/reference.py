"""Straightforward numpy versions of the kernels, written from the published
MATLAB/C sources line by line, used as test oracles and as the speed baseline.

These are deliberately plain (no cleverness) so that they are easy to check by
eye against ``convTri.m``, ``gradient2``, ``edgesNmsMex.cpp`` and ``bwmorph``.
They are not part of the package.
"""

from __future__ import annotations

import numpy as np


def conv_tri(image: np.ndarray, r: float) -> np.ndarray:
    """convTri.m, the 'nomex' branch: padarray symmetric + two 'valid' convn."""
    image = np.asarray(image, dtype=np.float32)
    if r <= 1:
        p = 12.0 / r / (r + 2) - 2
        f = np.array([1, p, 1], dtype=np.float64) / (2 + p)
        r = 1
    else:
        r = int(r)
        f = np.array(list(range(1, r + 2)) + list(range(r, 0, -1)), dtype=np.float64) / (r + 1) ** 2
    f = f.astype(np.float32)
    padded = np.pad(image, r, mode="symmetric")
    h, w = image.shape
    horiz = np.zeros((h + 2 * r, w), np.float32)
    for k in range(2 * r + 1):
        horiz += f[k] * padded[:, k : k + w]
    out = np.zeros((h, w), np.float32)
    for k in range(2 * r + 1):
        out += f[k] * horiz[k : k + h, :]
    return out


def gradient2(image: np.ndarray):
    """MATLAB [Gx, Gy] = gradient(I): central inside, one-sided at borders."""
    image = np.asarray(image, dtype=np.float32)
    gx = np.zeros_like(image)
    gy = np.zeros_like(image)
    if image.shape[1] > 1:
        gx[:, 1:-1] = (image[:, 2:] - image[:, :-2]) * np.float32(0.5)
        gx[:, 0] = image[:, 1] - image[:, 0]
        gx[:, -1] = image[:, -1] - image[:, -2]
    if image.shape[0] > 1:
        gy[1:-1, :] = (image[2:, :] - image[:-2, :]) * np.float32(0.5)
        gy[0, :] = image[1, :] - image[0, :]
        gy[-1, :] = image[-1, :] - image[-2, :]
    return gx, gy


def edge_orientation(edge: np.ndarray) -> np.ndarray:
    """O = mod(atan(Oyy .* sign(-Oxy) ./ (Oxx + 1e-5)), pi) from convTri(E, 4)."""
    ox, oy = gradient2(conv_tri(edge, 4))
    oxx, _ = gradient2(ox)
    oxy, oyy = gradient2(oy)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = np.arctan(oyy * np.sign(-oxy) / (oxx + np.float32(1e-5)))
    o = np.nan_to_num(o, nan=0.0)
    return np.mod(o, np.float32(np.pi)).astype(np.float32)


def _interp(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = image.shape
    x = np.where(x < 0, 0, np.where(x > w - 1.001, w - 1.001, x)).astype(np.float32)
    y = np.where(y < 0, 0, np.where(y > h - 1.001, h - 1.001, y)).astype(np.float32)
    x0 = x.astype(np.int64)
    y0 = y.astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    dx0 = x - x0
    dy0 = y - y0
    dx1 = 1 - dx0
    dy1 = 1 - dy0
    return (
        image[y0, x0] * dx1 * dy1
        + image[y0, x1] * dx0 * dy1
        + image[y1, x0] * dx1 * dy0
        + image[y1, x1] * dx0 * dy0
    )


def suppress_nonmax(edge: np.ndarray, orient: np.ndarray, r: int, s: int, m: float) -> np.ndarray:
    """edgesNmsMex.cpp, vectorised over pixels."""
    edge = np.asarray(edge, np.float32)
    h, w = edge.shape
    out = edge.copy()
    ys, xs = np.nonzero(edge)
    e = edge[ys, xs] * np.float32(m)
    co = np.cos(orient[ys, xs])
    si = np.sin(orient[ys, xs])
    keep = np.ones(len(ys), bool)
    for d in range(-r, r + 1):
        if d == 0:
            continue
        e0 = _interp(edge, xs + np.float32(d) * co, ys + np.float32(d) * si)
        keep &= ~(e < e0)
    out[ys[~keep], xs[~keep]] = 0
    s = min(s, w // 2, h // 2)
    for x in range(s):
        out[:, x] *= np.float32(x / s)
        out[:, w - 1 - x] *= np.float32(x / s)
    for y in range(s):
        out[y, :] *= np.float32(y / s)
        out[h - 1 - y, :] *= np.float32(y / s)
    return out


def nms(edge: np.ndarray, r: int = 2, s: int = 5, m: float = 1.01) -> np.ndarray:
    """edge_nms.m: E = convTri(E, 1); O from convTri(E, 4); edgesNmsMex(E, O, r, s, m)."""
    e1 = conv_tri(edge, 1)
    return suppress_nonmax(e1, edge_orientation(e1), r, s, m)


# Guo-Hall conditions as boolean tables over the 512 3x3 neighbourhoods
# (bit k of the index: neighbour k of x1..x8 counter-clockwise from east, bit 8
# the centre), built from the definitions in Lam, Lee & Suen 1992, p. 879.
def _thin_tables():
    idx = np.arange(512)

    def x(i):
        return (idx >> ((i - 1) % 8)) & 1

    xh = sum(((x(2 * i - 1) == 0) & ((x(2 * i) == 1) | (x(2 * i + 1) == 1))).astype(int) for i in range(1, 5))
    n1 = sum((x(2 * k - 1) | x(2 * k)) for k in range(1, 5))
    n2 = sum((x(2 * k) | x(2 * k + 1)) for k in range(1, 5))
    mn = np.minimum(n1, n2)
    g12 = (xh == 1) & (mn >= 2) & (mn <= 3)
    g3 = ((x(2) | x(3) | (1 - x(8))) & x(1)) == 0
    g3p = ((x(6) | x(7) | (1 - x(4))) & x(5)) == 0
    centre = (idx >> 8) & 1 == 1
    return centre & g12 & g3, centre & g12 & g3p


def thin(bw: np.ndarray, max_iter=None) -> np.ndarray:
    """bwmorph(BW, 'thin', n): iterate both subiterations until no change."""
    del1, del2 = _thin_tables()
    img = np.asarray(bw) != 0
    it = 0
    while max_iter is None or it < max_iter:
        before = img.copy()
        for table in (del1, del2):
            p = np.pad(img, 1).astype(np.int64)
            h, w = img.shape
            nbr = {
                1: p[1 : h + 1, 2 : w + 2],
                2: p[0:h, 2 : w + 2],
                3: p[0:h, 1 : w + 1],
                4: p[0:h, 0:w],
                5: p[1 : h + 1, 0:w],
                6: p[2 : h + 2, 0:w],
                7: p[2 : h + 2, 1 : w + 1],
                8: p[2 : h + 2, 2 : w + 2],
            }
            index = sum(nbr[i] << (i - 1) for i in range(1, 9)) + (img.astype(np.int64) << 8)
            img = img & ~table[index]
        it += 1
        if (img == before).all():
            break
    return img


def image_counts_per_threshold(pred, ground_truth, protocol):
    """The BSDS counts of one image computed threshold by threshold with the public kernels.

    What ``edgesdk.eval.image_counts`` computed before ``postprocess.boundary_counts``
    did the sweep in one call (``evaluation_bdry_image.m`` line by line): NMS once, then
    per threshold ``pb >= t``, thinning, ``correspond_pixels`` with every annotator.
    Returns (thresholds, cnt_r, sum_r, cnt_p, sum_p) as float64 arrays.
    """
    from edgesdk import postprocess

    gts = [np.ascontiguousarray(np.asarray(g) != 0) for g in ground_truth]
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
            matched_pred |= m1 > 0  # a predicted pixel counts once even if several annotators match it
            cnt_r[k] += np.count_nonzero(m2)
        sum_r[k] = gt_sums
        cnt_p[k] = np.count_nonzero(matched_pred)
        sum_p[k] = np.count_nonzero(bmap)
    return thresholds, cnt_r, sum_r, cnt_p, sum_p
