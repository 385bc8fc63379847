"""ODS/OIS/AP/R50 on counts whose answers are computed by hand."""

import numpy as np
import pytest

from edgesdk.eval import ImageCounts, summarize
from edgesdk.eval.metrics import average_precision, best_rpf, compute_rpf, recall_at_half_precision


def counts(t, cnt_r, sum_r, cnt_p, sum_p):
    return ImageCounts(*(np.asarray(v, float) for v in (t, cnt_r, sum_r, cnt_p, sum_p)))


def test_best_rpf_interpolates_between_thresholds():
    # R goes 1 -> 0.5 and P 0.5 -> 1 between two thresholds; along the
    # segment F(a) = (4/3)(1 - a/2)(1/2 + a/2), largest at a = 1/2 (F = 0.75),
    # but MATLAB samples a = k/99, so the best samples are a = 49/99 and
    # 50/99 (equal F; rounding picks one).
    r, p, f, t = best_rpf(np.array([0.2, 0.4]), np.array([1.0, 0.5]), np.array([0.5, 1.0]))
    a = 2 * (1 - r)
    assert a == pytest.approx(49 / 99) or a == pytest.approx(50 / 99)
    assert p == pytest.approx(0.5 + a / 2)
    assert f == pytest.approx(4 / 3 * (1 - a / 2) * (0.5 + a / 2))
    assert t == pytest.approx(0.2 + 0.2 * a)


def test_average_precision_by_hand():
    # P falls linearly from 1 at R=0.2 to 0.5 at R=0.6: 41 grid points with
    # mean 0.75 lie inside the recall range -> 41 * 0.75 / 100.
    assert average_precision(np.array([0.6, 0.2]), np.array([0.5, 1.0])) == pytest.approx(0.3075)
    # A single distinct recall value has no area (the toolbox returns 0).
    assert average_precision(np.array([0.5, 0.5]), np.array([0.2, 0.9])) == 0.0


def test_r50_by_hand():
    r, p = np.array([0.9, 0.6, 0.2]), np.array([0.3, 0.7, 0.95])
    # Precision 0.5 lies between (0.3, 0.9) and (0.7, 0.6): R = 0.9 - 0.3 * 0.5.
    assert recall_at_half_precision(r, p) == pytest.approx(0.75)
    # All precisions above 0.5: the recall at the lowest precision.
    assert recall_at_half_precision(r, p + 0.25) == pytest.approx(0.9)


def test_ois_uses_each_images_best_threshold_and_ods_a_common_one():
    t = [0.25, 0.5, 0.75]
    # Image a is best at the low threshold, image b at the high one.
    a = counts(t, [8, 6, 2], [10, 10, 10], [8, 6, 2], [10, 7, 2])
    b = counts(t, [2, 5, 9], [10, 10, 10], [2, 6, 9], [20, 12, 10])
    res = summarize({"a": a, "b": b})
    # OIS sums the counts at each image's best (non-interpolated) threshold:
    # a at 0.25 (R .8 P .8), b at 0.75 (R .9 P .9) -> R = P = 17/20.
    assert res.ois_r == pytest.approx(17 / 20) and res.ois_p == pytest.approx(17 / 20)
    assert res.ois_f == pytest.approx(17 / 20)
    # ODS: the summed curve is R = [.5 .55 .55], P = [1/3, 12/19, 11/12].
    r, p, f = compute_rpf([10, 11, 11], [20, 20, 20], [10, 12, 11], [30, 19, 12])
    np.testing.assert_allclose(res.recall, r)
    np.testing.assert_allclose(res.precision, p)
    assert res.ods_f == pytest.approx(best_rpf(np.array(t), r, p)[2])
    assert res.ods_f >= f.max() - 1e-12
    assert [s.name for s in res.images] == ["a", "b"]
    # Per-image scores interpolate too: never below the best sampled F (0.8 for a).
    assert res.images[0].f >= 0.8 - 1e-12 and res.images[1].f >= 0.9 - 1e-12


def test_empty_predictions_give_zero_not_nan():
    t = [0.5]
    res = summarize({"x": counts(t, [0], [10], [0], [0])})
    assert res.ods_f == 0 and res.ois_f == 0 and np.isnan(res.r50)


def test_mismatched_thresholds_are_rejected():
    with pytest.raises(ValueError, match="different thresholds"):
        summarize({"a": counts([0.5], [1], [1], [1], [1]), "b": counts([0.4], [1], [1], [1], [1])})
