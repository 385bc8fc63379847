"""The BSDS500 boundary benchmark: edgesdk's evaluator against pyEdgeEval, and the full test set.

    pytest benchmarks/test_bsds_speed.py -m bench -s
    EDGESDK_BENCH_PRED=runs/hed-test pytest benchmarks/test_bsds_speed.py -m bench -s   # your own maps

Side by side on the same maps and protocol: edgesdk's evaluator (every CPU, and one
worker) and pyEdgeEval's (the baseline), on a subset small enough for the peer (it takes
about a second per image and threshold). Then the full set alone: the 200 BSDS500 test
maps x 99 thresholds x every annotator, smoothed-Sobel maps unless
``$EDGESDK_BENCH_PRED`` names a folder of predictions. The smoke run uses the bundled
sample's three HED maps.
"""

import os
from pathlib import Path

import cv2
import pytest

from baseline import sobel_edges
from suite import record
from datasets import REPO
from edgesdk.eval import Protocol, evaluate, evaluate_dir, read_ground_truth, read_prediction, write_prediction

pytestmark = pytest.mark.bench

SAMPLE = REPO / "examples" / "bsds500-sample"


@pytest.fixture(scope="module")
def subset(settings):
    """(maps, ground truth, thresholds) small enough for pyEdgeEval."""
    names = ("100007", "101027") if settings.full else ("100007",)
    maps = {n: read_prediction(SAMPLE / "hed" / f"{n}.png") for n in names}
    gts = {n: read_ground_truth(SAMPLE / "groundTruth" / f"{n}.mat") for n in names}
    return maps, gts, (5 if settings.full else 3)


@pytest.mark.parametrize("name", ["edgesdk", "edgesdk 1 worker", "pyedgeeval"])
def test_evaluator_against_pyedgeeval(benchmark, settings, subset, name):
    maps, gts, thresholds = subset
    suite = f"evaluation, {len(maps)} images x {thresholds} thresholds"
    benchmark.group = suite
    if name == "pyedgeeval":
        pytest.importorskip("pyEdgeEval", reason="pyEdgeEval is not installed")
        from test_bsds import peer_scores  # the peer's own pipeline

        def run():
            return peer_scores(maps, gts, thresholds)[0]
    else:
        workers = 1 if name.endswith("1 worker") else 0

        def run():
            return evaluate(maps, gts, Protocol(thresholds=thresholds), workers=workers).ods_f
    ods = benchmark.pedantic(run, rounds=1 if name == "pyedgeeval" else settings.rounds, warmup_rounds=0,
                             iterations=1)
    record(benchmark, suite, name, "baseline" if name == "pyedgeeval" else "contender", ods=ods)
    assert 0.3 < ods < 1.0


def _prediction_dir(bsds500: Path, tmp: Path) -> Path:
    given = os.environ.get("EDGESDK_BENCH_PRED")
    if given:
        return Path(given)
    out = tmp / "sobel"
    out.mkdir()
    for img in sorted((bsds500 / "images" / "test").glob("*.jpg")):
        write_prediction(out / f"{img.stem}.png", sobel_edges(cv2.imread(str(img))), bits=8)
    return out


def test_full_test_set(benchmark, settings, tmp_path_factory):
    """The 200 test maps, 99 thresholds, every annotator: one round (it takes minutes)."""
    if settings.full:
        from datasets import require_bsds500

        bsds500 = require_bsds500()
        preds, gt_dir, images = _prediction_dir(bsds500, tmp_path_factory.mktemp("pred")), \
            bsds500 / "groundTruth" / "test", 200
    else:
        preds, gt_dir, images = SAMPLE / "hed", SAMPLE / "groundTruth", 3
    suite = f"full evaluation, {images} images x 99 thresholds"
    benchmark.group = suite
    out = tmp_path_factory.mktemp("eval")
    result = benchmark.pedantic(lambda: evaluate_dir(preds, gt_dir, Protocol(), out_dir=out, plot=False),
                                rounds=1, warmup_rounds=0, iterations=1)
    record(benchmark, suite, "edgesdk", "contender", images=len(result.images), ods=result.ods_f)
    assert len(result.images) == images
