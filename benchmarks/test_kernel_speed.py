"""The C++ kernels against plain numpy and pyEdgeEval, each timed by pytest-benchmark in one run.

    pytest benchmarks/test_kernel_speed.py -m bench -s

NMS + thinning of a model-like soft edge map (1000², 256² in the smoke run) by
edgesdk (every CPU, and one thread), the numpy transcription of the MATLAB code
in ``tests/reference.py`` (the baseline) and pyEdgeEval where it is installed;
and one ``correspondPixels`` matching of real map pairs by edgesdk and by
pyEdgeEval's original CSA code (the baseline).
"""

import numpy as np
import pytest

import reference as ref
from suite import record
from edgesdk import postprocess as pp

pytestmark = pytest.mark.bench

THRESHOLD = 0.1  # thinning input: the NMS map at one threshold
NMS_THIN = ["edgesdk", "edgesdk 1 thread", "numpy", "pyedgeeval"]


def _nms_thin(name: str, E: np.ndarray):
    if name == "edgesdk":
        return lambda: pp.thin(pp.nms(E) >= THRESHOLD)
    if name == "edgesdk 1 thread":
        return lambda: pp.thin(pp.nms(E, threads=1) >= THRESHOLD)
    if name == "numpy":
        return lambda: ref.thin(ref.nms(E) >= THRESHOLD)
    preprocess = pytest.importorskip("pyEdgeEval.preprocess", reason="pyEdgeEval is not installed")
    E64 = E.astype(np.float64)
    return lambda: preprocess.binary_thin(preprocess.fast_nms(E64, r=2, s=5, m=1.01) >= THRESHOLD)


@pytest.mark.parametrize("name", NMS_THIN)
def test_nms_and_thinning(benchmark, settings, edge_map, name):
    suite = f"NMS + thinning {settings.map_side}x{settings.map_side}"
    benchmark.group = suite
    fn = _nms_thin(name, edge_map)
    # numpy takes about 0.4 s at 1000²: fewer rounds for it, the same warm-up.
    rounds = settings.rounds if name.startswith("edgesdk") else max(1, settings.rounds // 3)
    out = benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
    record(benchmark, suite, name, "baseline" if name == "numpy" else "contender")
    assert out.dtype == bool and out.shape == edge_map.shape and out.any()


@pytest.fixture(scope="module")
def matching_cases(settings):
    from datasets import REPO
    from edgesdk.eval import read_ground_truth, read_prediction

    sample = REPO / "examples" / "bsds500-sample"
    pb = pp.nms(read_prediction(sample / "hed" / "100007.png"))
    gts = read_ground_truth(sample / "groundTruth" / "100007.mat")
    thresholds = (0.1, 0.3, 0.5) if settings.full else (0.5,)
    return [(pp.thin(pb >= t), g) for t in thresholds for g in gts]


@pytest.mark.parametrize("name", ["edgesdk", "pyedgeeval"])
def test_matching(benchmark, settings, matching_cases, name):
    """correspondPixels on real map pairs: the HED sample's thinned map against each annotator."""
    suite = f"matching {len(matching_cases)} BSDS map pairs"
    benchmark.group = suite
    if name == "edgesdk":
        def run():
            return [pp.correspond_pixels(b, g)[:2] for b, g in matching_cases]
    else:
        peer = pytest.importorskip("pyEdgeEval._lib", reason="pyEdgeEval is not installed")

        def run():
            return [peer.correspond_pixels(b, g, max_dist=0.0075, outlier_cost=100 / 0.0075)[:2]
                    for b, g in matching_cases]
    rounds = settings.rounds if name == "edgesdk" else 1  # the peer takes seconds a round
    matches = benchmark.pedantic(run, rounds=rounds, warmup_rounds=0 if name == "pyedgeeval" else 1, iterations=1)
    record(benchmark, suite, name, "baseline" if name == "pyedgeeval" else "contender")
    assert sum(int((m1 > 0).sum()) for m1, _ in matches) > 0
