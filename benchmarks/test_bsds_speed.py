"""The full BSDS500 test set (200 images, 99 thresholds, all annotators) in under 3 minutes.

    pytest benchmarks/test_bsds_speed.py -m slow -s

Predictions: $EDGESDK_BENCH_PRED (a folder of maps named like the ground truth,
e.g. HED's from `python -m training.predict`), else a smoothed-Sobel map of each
image (denser than a network's, so a harder case for matching).
"""

import os
import time
from pathlib import Path

import cv2
import pytest

from baseline import sobel_edges
from edgesdk.eval import (
    Protocol, default_workers, evaluate, evaluate_dir, read_ground_truth, read_prediction, write_prediction,
)
from results_io import save


def prediction_dir(bsds500: Path, tmp_path: Path) -> Path:
    given = os.environ.get("EDGESDK_BENCH_PRED")
    if given:
        return Path(given)
    out = tmp_path / "sobel"
    out.mkdir()
    for img in sorted((bsds500 / "images" / "test").glob("*.jpg")):
        pred = sobel_edges(cv2.imread(str(img)))
        write_prediction(out / f"{img.stem}.png", pred, bits=8)
    return out


@pytest.mark.slow
def test_full_test_set_under_three_minutes(bsds500, tmp_path):
    preds = prediction_dir(bsds500, tmp_path)
    gt_dir = bsds500 / "groundTruth" / "test"
    start = time.perf_counter()
    result = evaluate_dir(preds, gt_dir, Protocol(), out_dir=tmp_path / "eval", plot=False)
    ours_s = time.perf_counter() - start
    assert len(result.images) == 200

    # pyEdgeEval on a subset, and edgesdk on the same subset in the same run.
    subset, thresholds = sorted(p.stem for p in gt_dir.glob("*.mat"))[:2], 5
    peer_s_per_item = None
    try:
        from test_bsds import peer_scores  # the peer's own pipeline

        maps = {n: read_prediction(next(preds.glob(n + ".*"))) for n in subset}
        gts = {n: read_ground_truth(gt_dir / f"{n}.mat") for n in subset}
        t0 = time.perf_counter()
        evaluate(maps, gts, Protocol(thresholds=thresholds), workers=1)
        t1 = time.perf_counter()
        peer_scores(maps, gts, thresholds)
        t2 = time.perf_counter()
        ours_subset, peer_subset = t1 - t0, t2 - t1
        peer_s_per_item = peer_subset / (len(subset) * thresholds)
    except pytest.skip.Exception:
        pass
    report = {
        "images": 200,
        "thresholds": 99,
        "predictions": str(preds),
        "workers": default_workers(),
        "wall_s": round(ours_s, 1),
        "ODS": result.ods_f,
        "OIS": result.ois_f,
        "AP": result.ap,
    }
    if peer_s_per_item is not None:
        report.update(
            {
                "pyedgeeval_s_per_image_threshold": round(peer_s_per_item, 3),
                "pyedgeeval_full_set_estimate_h": round(peer_s_per_item * 200 * 99 / 3600, 1),
                "subset_ratio_pyedgeeval_over_edgesdk_1_worker": round(peer_subset / ours_subset, 1),
            }
        )
    print(f"\n{report}")
    save("bsds500_test_full", report)
    assert ours_s < 180
