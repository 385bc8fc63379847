"""Pixel correspondence: hand cases, and exact optimality against independent solvers."""

import numpy as np
import pytest

from edgesdk import postprocess as pp

sparse = pytest.importorskip("scipy.sparse")
csgraph = pytest.importorskip("scipy.sparse.csgraph")
optimize = pytest.importorskip("scipy.optimize")


def pairs(m):
    """(pixel, matched pixel) coordinate pairs of a match map."""
    ys, xs = np.nonzero(m)
    qy, qx = np.unravel_index(m[ys, xs] - 1, m.shape)
    return ys, xs, qy, qx


def diag(shape):
    return float(np.hypot(*shape))


def test_identical_maps_match_everything_at_zero_cost():
    b = np.zeros((50, 60), bool)
    b[10, 5:55] = True
    b[5:45, 30] = True
    m1, m2, cost = pp.correspond_pixels(b, b)
    assert (m1 > 0).sum() == b.sum() and (m2 > 0).sum() == b.sum()
    ys, xs, qy, qx = pairs(m1)
    assert (ys == qy).all() and (xs == qx).all()
    assert cost == 0


def test_line_shifted_by_one_pixel():
    a = np.zeros((40, 40), bool)
    b = np.zeros((40, 40), bool)
    a[20, 5:35] = True
    b[21, 5:35] = True
    m1, m2, cost = pp.correspond_pixels(a, b, max_dist=2 / diag(a.shape))
    assert (m1 > 0).sum() == 30
    ys, xs, qy, qx = pairs(m1)
    assert (qy - ys == 1).all() and (qx == xs).all()  # straight down: distance 1 beats sqrt 2
    assert cost == pytest.approx(30.0)  # 30 pairs of length 1 (half per side, twice)


def test_diagonal_shift_costs_sqrt2():
    a = np.zeros((30, 30), bool)
    b = np.zeros((30, 30), bool)
    a[10, 10] = True
    b[11, 11] = True
    m1, m2, cost = pp.correspond_pixels(a, b, max_dist=1.5 / diag(a.shape))
    assert m1[10, 10] == 11 * 30 + 11 + 1 and m2[11, 11] == 10 * 30 + 10 + 1
    assert cost == pytest.approx(np.sqrt(2))


def test_out_of_reach_pixels_are_outliers():
    # maxDist 0.0075 of a 100x100 diagonal is 1.06 px: a 2-pixel offset is too far.
    a = np.zeros((100, 100), bool)
    b = np.zeros((100, 100), bool)
    a[50, 10:20] = True
    b[52, 10:20] = True
    m1, m2, cost = pp.correspond_pixels(a, b)
    assert not m1.any() and not m2.any()
    assert cost == pytest.approx(20 * 100 * diag(a.shape))


def test_max_dist_scales_with_the_diagonal():
    a = np.zeros((100, 100), bool)
    b = np.zeros((100, 100), bool)
    a[50, 50] = True
    b[50, 53] = True
    assert not pp.correspond_pixels(a, b, max_dist=2.99 / diag(a.shape))[0].any()
    assert pp.correspond_pixels(a, b, max_dist=3.0 / diag(a.shape))[0].any()


def test_one_to_one_when_one_side_is_denser():
    # Two predicted lines next to one ground-truth line: each GT pixel is used
    # once, so half the predicted pixels stay unmatched.
    pred = np.zeros((40, 40), bool)
    gt = np.zeros((40, 40), bool)
    gt[20, 5:35] = True
    pred[19, 5:35] = True
    pred[21, 5:35] = True
    m1, m2, _ = pp.correspond_pixels(pred, gt, max_dist=2 / diag(gt.shape))
    assert (m2 > 0).sum() == 30 and (m1 > 0).sum() == 30


def test_empty_maps():
    z = np.zeros((10, 10), bool)
    b = z.copy()
    b[3, 3] = True
    m1, m2, cost = pp.correspond_pixels(z, z)
    assert not m1.any() and cost == 0
    m1, m2, cost = pp.correspond_pixels(b, z)
    assert not m1.any() and cost == pytest.approx(100 * diag(z.shape))


def random_maps(rng, shape, density):
    return rng.random(shape) < density, rng.random(shape) < density


def optimum(a, b, max_dist):
    """Independent reference: max cardinality (Hopcroft-Karp) and the min total
    rounded length among maximum matchings (dense Hungarian), both from scipy."""
    p1, p2 = np.argwhere(a), np.argwhere(b)
    reach = max_dist * diag(a.shape)
    d = np.hypot(p1[:, None, 0] - p2[None, :, 0], p1[:, None, 1] - p2[None, :, 1])
    ok = d * d <= reach * reach
    card = int((csgraph.maximum_bipartite_matching(sparse.csr_matrix(ok.astype(np.int8)), perm_type="column") >= 0).sum())
    # Rectangular assignment where each left pixel may take its own outlier
    # column: cost W + BIG * unmatched, minimised = max matches, then min W.
    big = 10**7
    n1, n2 = len(p1), len(p2)
    cost = np.full((n1, n2 + n1), 10 * big, dtype=np.float64)
    cost[:, :n2][ok] = np.rint(d[ok] * 100)
    cost[np.arange(n1), n2 + np.arange(n1)] = big
    rows, cols = optimize.linear_sum_assignment(cost)
    real = cols < n2
    return card, int(real.sum()), float(cost[rows[real], cols[real]].sum())


@pytest.mark.parametrize("seed", range(30))
def test_optimal_against_scipy(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(8, 40, size=2))
    a, b = random_maps(rng, shape, rng.uniform(0.05, 0.4))
    max_dist = rng.uniform(0.02, 0.12)
    card, card_lsa, length = optimum(a, b, max_dist)
    assert card == card_lsa
    m1, m2, _ = pp.correspond_pixels(a, b, max_dist=max_dist)
    assert (m1 > 0).sum() == card == (m2 > 0).sum()
    ys, xs, qy, qx = pairs(m1)
    assert np.rint(np.hypot(ys - qy, xs - qx) * 100).sum() == length


@pytest.mark.parametrize("seed", range(5))
def test_match_maps_are_consistent_and_within_reach(seed):
    rng = np.random.default_rng(100 + seed)
    a, b = random_maps(rng, (60, 80), 0.15)
    m1, m2, _ = pp.correspond_pixels(a, b, max_dist=0.03)
    ys, xs, qy, qx = pairs(m1)
    assert b[qy, qx].all() and a[ys, xs].all()
    assert (m2[qy, qx] == ys * 80 + xs + 1).all()
    assert (np.hypot(ys - qy, xs - qx) <= 0.03 * diag(a.shape)).all()
    assert not m1[~a].any() and not m2[~b].any()


def test_deterministic():
    rng = np.random.default_rng(3)
    a, b = random_maps(rng, (120, 90), 0.2)
    first = pp.correspond_pixels(a, b, max_dist=0.02)
    for _ in range(3):
        again = pp.correspond_pixels(a, b, max_dist=0.02)
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])


def test_at_least_as_many_matches_as_the_original_csa():
    """The BSDS code (CSA on a random sparse outlier graph) sometimes misses the
    maximum by a few pixels; this solver never does and otherwise agrees."""
    peer = pytest.importorskip("pyEdgeEval._lib")
    rng = np.random.default_rng(11)
    for _ in range(10):
        a, b = random_maps(rng, (90, 110), 0.08)
        theirs = peer.correspond_pixels(a, b, max_dist=0.0075 * 4, outlier_cost=100 / (0.0075 * 4))[0]
        ours = pp.correspond_pixels(a, b, max_dist=0.0075 * 4)[0]
        n_theirs, n_ours = int((theirs > 0).sum()), int((ours > 0).sum())
        assert n_theirs <= n_ours <= n_theirs * 1.005 + 2
