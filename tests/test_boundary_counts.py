"""The evaluator's one-call threshold sweep gives exactly the counts of the threshold-by-threshold path."""

import numpy as np
import pytest

import reference as ref
from datasets import SAMPLE
from edgesdk import postprocess as pp
from edgesdk.eval import Protocol, read_ground_truth, read_prediction, summarize, write_bsds_files
from edgesdk.eval.counts import ImageCounts, image_counts
from edgesdk.postprocess import NmsParams


def _reference_counts(pred, gts, protocol) -> ImageCounts:
    return ImageCounts(*ref.image_counts_per_threshold(pred, gts, protocol))


def test_the_bundled_sample_gives_the_same_bsds_files_byte_for_byte(tmp_path):
    protocol = Protocol()
    names = sorted(p.stem for p in (SAMPLE / "hed").glob("*.png"))
    assert len(names) == 3
    new, old = {}, {}
    for n in names:
        pred = read_prediction(SAMPLE / "hed" / f"{n}.png")
        gts = read_ground_truth(SAMPLE / "groundTruth" / f"{n}.mat")
        new[n], old[n] = image_counts(pred, gts, protocol), _reference_counts(pred, gts, protocol)
    for which, counts in (("new", new), ("old", old)):
        write_bsds_files(summarize(counts, protocol.as_dict()), tmp_path / which)
    for f in ("eval_bdry.txt", "eval_bdry_img.txt", "eval_bdry_thr.txt"):
        assert (tmp_path / "new" / f).read_bytes() == (tmp_path / "old" / f).read_bytes(), f


def _random_case(rng, h, w, dtype):
    """A soft map of blurred strokes and noise, and 1-4 annotators' thin boundaries near some of them."""
    import cv2

    soft = np.zeros((h, w), np.float32)
    gts = [np.zeros((h, w), np.uint8) for _ in range(int(rng.integers(1, 5)))]
    for _ in range(int(rng.integers(3, 12))):
        p = rng.integers(0, [w, h, w, h])
        cv2.line(soft, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), float(rng.uniform(0.2, 1)), 2)
        for g in gts:
            if rng.random() < 0.7:
                jitter = rng.integers(-2, 3, 4)
                cv2.line(g, (int(p[0] + jitter[0]), int(p[1] + jitter[1])), (int(p[2] + jitter[2]),
                                                                             int(p[3] + jitter[3])), 1, 1)
    soft = cv2.GaussianBlur(soft, (0, 0), 1.2) + 0.05 * rng.random((h, w)).astype(np.float32)
    return np.clip(soft / soft.max(), 0, 1).astype(dtype), gts


@pytest.mark.parametrize("seed", range(24))
def test_random_maps_give_the_same_counts(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
    pred, gts = _random_case(rng, h, w, np.float32 if seed % 2 else np.float64)
    protocol = Protocol(thresholds=int(rng.integers(3, 25)),
                        nms=NmsParams() if seed % 3 else None, thin=seed % 4 != 0,
                        max_dist=float(rng.choice([0.0075, 0.02, 0.05])))
    new, old = image_counts(pred, gts, protocol), _reference_counts(pred, gts, protocol)
    for field in ("thresholds", "cnt_r", "sum_r", "cnt_p", "sum_p"):
        np.testing.assert_array_equal(getattr(new, field), getattr(old, field), err_msg=field)
    assert old.cnt_r.sum() > 0  # the cases match something


def test_hand_made_case():
    # Prediction: a vertical line at x=5 (rows 2-7) with strength 0.8 and a lone pixel at (1, 12) of 0.4.
    # Annotator: the same line one column over (x=6), rows 2-9. maxDist 0.1 of the diagonal (~2 px).
    pb = np.zeros((12, 16))
    pb[2:8, 5] = 0.8
    pb[1, 12] = 0.4
    gt = np.zeros((12, 16), np.uint8)
    gt[2:10, 6] = 1
    cnt_r, sum_r, cnt_p, sum_p = pp.boundary_counts(pb, [gt], np.array([0.3, 0.5, 0.9]), thin=False, max_dist=0.1)
    # t=0.3: 7 predicted pixels, the 6 line pixels match 6 of the 8 annotated; the lone one is > 2 px away.
    # t=0.5: the line alone. t=0.9: nothing.
    assert cnt_r.tolist() == [6, 6, 0] and sum_r.tolist() == [8, 8, 8]
    assert cnt_p.tolist() == [6, 6, 0] and sum_p.tolist() == [7, 6, 0]


def _counts_of_each_threshold_alone(pred, gts, thresholds, thin, max_dist):
    """The per-threshold path, one threshold at a time: no sweep order to depend on."""
    rows = [ref.image_counts_per_threshold(pred, gts, Protocol(thresholds=(float(t),), nms=None, thin=thin,
                                                               max_dist=max_dist))[1:] for t in thresholds]
    return [np.array([r[i][0] for r in rows], np.int64) for i in range(4)]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("order", ["descending", "shuffled"])
def test_thresholds_in_any_order_give_each_thresholds_own_counts(seed, order):
    # Descending thresholds grow the map: pixels join components matched at the step before.
    rng = np.random.default_rng(100 + seed)
    h, w = int(rng.integers(20, 70)), int(rng.integers(20, 70))
    pred, gts = _random_case(rng, h, w, np.float64)
    thresholds = np.linspace(0.05, 0.95, int(rng.integers(4, 16)))
    thresholds = thresholds[::-1].copy() if order == "descending" else rng.permutation(thresholds)
    thin, max_dist = seed % 3 != 0, float(rng.choice([0.0075, 0.02, 0.05]))
    got = pp.boundary_counts(pred, gts, thresholds, thin=thin, max_dist=max_dist)
    want = _counts_of_each_threshold_alone(pred, gts, thresholds, thin, max_dist)
    for name, a, b in zip(("cnt_r", "sum_r", "cnt_p", "sum_p"), got, want):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_a_pixel_that_joins_a_matched_component_competes_for_its_annotated_pixel():
    # One annotated pixel at (5, 5); predicted pixels at (5, 6) of 0.9 and (5, 4) of 0.6, each 1 px away
    # (maxDist 0.1 of the 20 px diagonal: 2 px). At 0.9 the first matches it; at 0.5 the second joins, and
    # one annotated pixel still makes one match, not one per predicted pixel.
    pb = np.zeros((12, 16))
    pb[5, 6], pb[5, 4] = 0.9, 0.6
    gt = np.zeros((12, 16), np.uint8)
    gt[5, 5] = 1
    cnt_r, sum_r, cnt_p, sum_p = pp.boundary_counts(pb, [gt], np.array([0.9, 0.5]), thin=False, max_dist=0.1)
    assert cnt_r.tolist() == [1, 1] and sum_r.tolist() == [1, 1]
    assert cnt_p.tolist() == [1, 1] and sum_p.tolist() == [1, 2]


@pytest.mark.parametrize("call,message", [
    (lambda: pp.boundary_counts(np.zeros((4, 4), np.int32), [np.zeros((4, 4))], [0.5]), "floating-point"),
    (lambda: pp.boundary_counts(np.zeros((4, 4)), [np.zeros((4, 5))], [0.5]), "shape"),
    (lambda: pp.boundary_counts(np.zeros((4, 4)), [], [0.5]), "at least one ground-truth map"),
    (lambda: pp.boundary_counts(np.full((4, 4), np.nan), [np.zeros((4, 4))], [0.5]), "NaN"),
    (lambda: pp.boundary_counts(np.zeros((4, 4)), [np.zeros((4, 4))], []), "thresholds"),
    (lambda: pp.boundary_counts(np.zeros((4, 4)), [np.zeros((4, 4))], [0.5], max_dist=2.0), "max_dist"),
])
def test_bad_arguments_are_refused_before_any_work(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
