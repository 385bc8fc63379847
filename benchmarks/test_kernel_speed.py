"""Speed of NMS + thinning and of matching, side by side with plain numpy and pyEdgeEval in one run.

    pytest benchmarks/test_kernel_speed.py -s
"""

import numpy as np
import pytest

import reference as ref
from edgesdk import postprocess as pp
from helpers import interleaved_best
from results_io import save

THRESHOLD = 0.1  # thinning input: the NMS map at one threshold


def test_nms_thin_1000x1000_vs_numpy_and_pyedgeeval(benchmark, edge_map_1000):
    E = edge_map_1000
    fns = {
        "edgesdk": lambda: pp.thin(pp.nms(E) >= THRESHOLD),
        "edgesdk_1_thread": lambda: pp.thin(pp.nms(E, threads=1) >= THRESHOLD),
        "numpy": lambda: ref.thin(ref.nms(E) >= THRESHOLD),
        "edgesdk_nms": lambda: pp.nms(E),
    }
    try:
        from pyEdgeEval.preprocess import binary_thin, fast_nms

        E64 = E.astype(np.float64)
        fns["pyedgeeval_nms"] = lambda: fast_nms(E64, r=2, s=5, m=1.01)
        fns["pyedgeeval"] = lambda: binary_thin(fast_nms(E64, r=2, s=5, m=1.01) >= THRESHOLD)
    except ImportError:
        pass
    best = interleaved_best(fns, rounds=7)
    ratios = {
        "numpy / edgesdk": best["numpy"] / best["edgesdk"],
        "numpy / edgesdk (1 thread)": best["numpy"] / best["edgesdk_1_thread"],
    }
    if "pyedgeeval" in best:
        ratios["pyedgeeval / edgesdk"] = best["pyedgeeval"] / best["edgesdk"]
        ratios["pyedgeeval nms / edgesdk nms"] = best["pyedgeeval_nms"] / best["edgesdk_nms"]
    ms = {k: round(v * 1e3, 2) for k, v in best.items()}
    print(f"\nNMS + thinning, 1000x1000, best of 7 (ms): {ms}\nratios: { {k: round(v, 1) for k, v in ratios.items()} }")
    save("nms_thin_1000", {"best_ms": ms, "ratios": ratios, "threshold": THRESHOLD})
    benchmark.extra_info.update({"ratios": ratios, "best_ms": ms})
    benchmark.pedantic(fns["edgesdk"], rounds=10, warmup_rounds=1)
    assert ratios["numpy / edgesdk"] >= 20
    if "pyedgeeval" in best:
        assert best["edgesdk_nms"] < best["pyedgeeval_nms"]


def test_matching_vs_pyedgeeval(benchmark):
    """One correspondPixels call on a real case: HED-like sample map vs one annotator."""
    peer = pytest.importorskip("pyEdgeEval._lib")
    from datasets import REPO
    from edgesdk.eval import read_ground_truth, read_prediction

    sample = REPO / "examples" / "bsds500-sample"
    pb = pp.nms(read_prediction(sample / "hed" / "100007.png"))
    gts = read_ground_truth(sample / "groundTruth" / "100007.mat")
    cases = [(pp.thin(pb >= t), g) for t in (0.1, 0.3, 0.5) for g in gts]

    def ours():
        for b, g in cases:
            pp.correspond_pixels(b, g)

    def theirs():
        for b, g in cases:
            peer.correspond_pixels(b, g, max_dist=0.0075, outlier_cost=100 / 0.0075)

    best = interleaved_best({"edgesdk": ours, "pyedgeeval": theirs}, rounds=2)
    ratio = best["pyedgeeval"] / best["edgesdk"]
    print(f"\nmatching {len(cases)} map pairs: edgesdk {best['edgesdk'] * 1e3:.1f} ms, "
          f"pyEdgeEval {best['pyedgeeval'] * 1e3:.1f} ms, ratio {ratio:.0f}x")
    save("matching", {"pairs": len(cases), "best_ms": {k: v * 1e3 for k, v in best.items()}, "ratio": ratio})
    benchmark.extra_info["ratio_vs_pyedgeeval"] = ratio
    benchmark.pedantic(ours, rounds=5)
    assert ratio > 10
