"""On real BSDS500 test images: the cross-check against the independent peer pyEdgeEval.

pyEdgeEval (MIT) wraps the original BSDS C++ matcher (CSA) and a Python port of
edgesNms; both sides get the same predictions and the same NMS settings and run
their own NMS, thinning and matching. Skipped without the data or the peer.
"""

import hashlib
import time

import cv2
import numpy as np
import pytest

from baseline import sobel_edges
from datasets import REPO
from edgesdk.eval import Protocol, evaluate, read_ground_truth, read_prediction
from edgesdk.postprocess import NmsParams

NMS = NmsParams(r=2, s=5, m=1.01)


def load_images(root, n):
    ids = sorted(p.stem for p in (root / "groundTruth" / "test").glob("*.mat"))[:n]
    preds, gts = {}, {}
    for i in ids:
        preds[i] = sobel_edges(cv2.imread(str(root / "images" / "test" / f"{i}.jpg")))
        gts[i] = read_ground_truth(root / "groundTruth" / "test" / f"{i}.mat")
    return preds, gts


def peer_scores(preds, gts, thresholds):
    """ODS / OIS / AP (its 'AUC', the BSDS area) computed entirely by pyEdgeEval."""
    nms_mod = pytest.importorskip("pyEdgeEval.preprocess")
    from pyEdgeEval.common.binary_label.calculate_metrics import calculate_metrics
    from pyEdgeEval.common.binary_label.evaluate_boundaries import evaluate_boundaries_threshold_multiple_gts

    def one(sample):
        pb = nms_mod.fast_nms(preds[sample["name"]], r=NMS.r, s=NMS.s, m=NMS.m)
        return evaluate_boundaries_threshold_multiple_gts(
            thresholds=np.linspace(1 / (thresholds + 1), 1 - 1 / (thresholds + 1), thresholds),
            pred=pb,
            gts=[g.astype(np.uint8) for g in gts[sample["name"]]],
            max_dist=0.0075,
            apply_thinning=True,
            apply_nms=False,
        )

    samples = [{"name": n} for n in sorted(preds)]
    _, _, overall = calculate_metrics(one, thresholds, samples, nproc=1)
    return overall["ODS_f1"], overall["OIS_f1"], overall["AUC"]


SAMPLE = REPO / "examples" / "bsds500-sample"


def cross_check(preds, gts, thresholds, draws=3):
    """Ours must agree with some run of the peer within 0.002 on ODS, OIS and AP.

    The peer's matcher is randomised: its CSA solves a sparse graph whose outlier
    edges are drawn by a k-of-n sampler seeded from gettimeofday (pyEdgeEval
    _lib/src/Random.cc, as in the original BSDS code), so repeated runs differ,
    usually by < 0.0005, but now and then one draw misses the optimum at an image's
    best threshold and OIS on a few images moves by ~0.006 (seen once in CI:
    0.7770 vs 0.7825-0.7829 locally). Ours solves the assignment exactly and is
    deterministic, so a disagreement is re-drawn up to `draws` times before it fails.
    """
    pytest.importorskip("pyEdgeEval")
    n_images = len(preds)
    t0 = time.perf_counter()
    ours = evaluate(preds, gts, Protocol(thresholds=thresholds, nms=NMS))
    t1 = time.perf_counter()
    print(f"\n{n_images} images x {thresholds} thresholds: ours ODS {ours.ods_f:.4f} OIS {ours.ois_f:.4f} "
          f"AP {ours.ap:.4f} in {t1 - t0:.1f} s")
    seen = []
    for _ in range(draws):
        t1 = time.perf_counter()
        peer = peer_scores(preds, gts, thresholds)
        print(f"  pyEdgeEval ODS {peer[0]:.4f} OIS {peer[1]:.4f} AP {peer[2]:.4f} "
              f"in {time.perf_counter() - t1:.1f} s (1 process)")
        seen.append(peer)
        if all(abs(a - b) <= 0.002 for a, b in zip((ours.ods_f, ours.ois_f, ours.ap), peer)):
            return
    pytest.fail(f"ours (ODS, OIS, AP) = {(ours.ods_f, ours.ois_f, ours.ap)} is off by more than 0.002 "
                f"from every one of {draws} pyEdgeEval runs: {seen}")


@pytest.mark.peer
def test_agrees_with_pyedgeeval_on_10_images(bsds500):
    cross_check(*load_images(bsds500, 10), thresholds=9)


@pytest.mark.peer
@pytest.mark.slow
def test_agrees_with_pyedgeeval_on_10_images_99_thresholds(bsds500):
    cross_check(*load_images(bsds500, 10), thresholds=99)


@pytest.mark.peer
def test_bundled_hed_sample_agrees_with_pyedgeeval():
    # Real model output on real images, in the repository: runs without the dataset.
    names = sorted(p.stem for p in (SAMPLE / "groundTruth").glob("*.mat"))
    preds = {n: read_prediction(SAMPLE / "hed" / f"{n}.png") for n in names}
    gts = {n: read_ground_truth(SAMPLE / "groundTruth" / f"{n}.mat") for n in names}
    cross_check(preds, gts, thresholds=9)


def test_bundled_sample_is_intact():
    for line in (SAMPLE / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest() == digest, name
