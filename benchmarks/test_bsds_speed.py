"""The BSDS500 boundary benchmark: edgesdk's evaluator against pyEdgeEval, and the full test set.

    pytest benchmarks/test_bsds_speed.py -m bench -s
    EDGESDK_BENCH_PRED=runs/hed-test pytest benchmarks/test_bsds_speed.py -m bench -s   # your own maps

Side by side on the same maps and protocol: edgesdk's evaluator (every CPU, and one
worker) and pyEdgeEval's (the baseline), on a subset small enough for the peer (it takes
about a second per image and threshold). Then the full set: the 200 BSDS500 test maps x 99
thresholds x every annotator, by the evaluator and by the path it replaced (the same
kernels threshold by threshold, ``tests/reference.py``; the counts are the same), on the
bundled model's maps unless ``$EDGESDK_BENCH_PRED`` names a folder of predictions. The
smoke run uses the bundled sample's three HED maps.
"""

import os
from pathlib import Path

import pytest

from datasets import REPO
from edgesdk.eval import Protocol, evaluate, evaluate_dir, predict_folder, read_ground_truth, read_prediction
from suite import record

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
    """Real prediction maps: $EDGESDK_BENCH_PRED, else the bundled model's on the 200 test images."""
    given = os.environ.get("EDGESDK_BENCH_PRED")
    if given:
        return Path(given)
    return predict_folder("default", bsds500 / "images" / "test", tmp / "model")


def _per_threshold(preds: Path, gt_dir: Path):
    """The evaluator before its one-call sweep: the same protocol threshold by threshold (tests/reference.py)."""
    from concurrent.futures import ThreadPoolExecutor

    import reference as ref
    from edgesdk.eval import default_workers, summarize
    from edgesdk.eval.counts import ImageCounts

    protocol = Protocol()

    def one(gt: Path) -> ImageCounts:
        pred = read_prediction(next(preds.glob(f"{gt.stem}.*")))
        return ImageCounts(*ref.image_counts_per_threshold(pred, read_ground_truth(gt), protocol))

    gts = sorted(gt_dir.glob("*.mat"))
    with ThreadPoolExecutor(default_workers()) as pool:
        counts = dict(zip([g.stem for g in gts], pool.map(one, gts)))
    return summarize(counts, protocol.as_dict())


@pytest.fixture(scope="module")
def full_set(settings, tmp_path_factory):
    """(prediction folder, ground-truth folder, images) of the full evaluation."""
    if not settings.full:
        return SAMPLE / "hed", SAMPLE / "groundTruth", 3
    from datasets import require_bsds500

    bsds500 = require_bsds500()
    return _prediction_dir(bsds500, tmp_path_factory.mktemp("pred")), bsds500 / "groundTruth" / "test", 200


@pytest.mark.parametrize("name", ["edgesdk", "per-threshold path (before)"])
def test_full_test_set(benchmark, full_set, tmp_path, name):
    """Every test map, 99 thresholds, every annotator: one round each (it takes minutes), the previous path beside."""
    preds, gt_dir, images = full_set
    suite = f"full evaluation, {images} images x 99 thresholds"
    benchmark.group = suite
    if name == "edgesdk":
        def run():
            return evaluate_dir(preds, gt_dir, Protocol(), out_dir=tmp_path / "eval", plot=False)
    else:
        def run():
            return _per_threshold(preds, gt_dir)
    result = benchmark.pedantic(run, rounds=1, warmup_rounds=0, iterations=1)
    record(benchmark, suite, name, "baseline" if name != "edgesdk" else "contender", images=len(result.images),
           ods=result.ods_f)
    assert len(result.images) == images
