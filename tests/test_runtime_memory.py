"""Memory of the runtime: quantized preprocessing without a float image, and low-memory mode.

Low-memory mode runs the same .tflite through LiteRT's CompiledModel with
XNNPACK's transient indirection buffers; it must give bit-identical results
and a much smaller peak RSS of a fresh process on a large image.
"""

import dataclasses
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import edgesdk
from datasets import REPO
from edgesdk.errors import EdgeSDKError
from edgesdk.runtime import bench
from edgesdk.runtime.backends import open_backend
from edgesdk.runtime.metadata import default_model_name

SAMPLE = REPO / "edgesdk" / "models" / "sample.jpg"


@pytest.fixture(scope="module")
def detectors():
    return edgesdk.load(threads=1), edgesdk.load(threads=1, low_memory=True)


def test_quantized_preprocessing_is_the_int8_of_the_normalised_pixel(detectors):
    det = detectors[0]
    dtype, scale, zero_point = det.backend.input_type
    assert dtype == np.int8 and scale > 0
    mean, std = np.array(det.info.input.mean), np.array(det.info.input.std)
    levels = np.arange(256)
    # By hand, in float64: q = clip(round((v - mean) / std / scale) + zp) for every level of every channel.
    want = np.clip(np.rint((levels[:, None] - mean) / std / scale) + zero_point, -128, 127).astype(np.int8)
    ramp = np.ascontiguousarray(np.broadcast_to(levels.astype(np.uint8)[None, :, None], (2, 256, 3)))
    rgb = det.preprocess(ramp, "RGB")
    np.testing.assert_array_equal(rgb[0], want)
    # A BGR image gets its channels swapped first.
    np.testing.assert_array_equal(det.preprocess(ramp[:, :, ::-1].copy(), "BGR")[1], want)
    assert rgb.dtype == np.int8 and rgb.shape == ramp.shape


@pytest.mark.parametrize("shape", [(321, 481), (1000, 1000), (700, 1500)], ids=["481x321", "1000x1000", "1500x700"])
def test_low_memory_results_are_bit_identical(detectors, shape):
    img = cv2.resize(cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR), shape[::-1], interpolation=cv2.INTER_LINEAR)
    fast, low = (d.detect(img, color="BGR") for d in detectors)
    assert fast.tiles == low.tiles
    np.testing.assert_array_equal(low.probability, fast.probability)
    np.testing.assert_array_equal(low.edges, fast.edges)
    assert low.edges.sum() > 1000  # a real edge map, not two empty ones


def test_low_memory_cuts_the_peak_rss_of_a_1000px_detection():
    model = str(REPO / "edgesdk" / "models" / "model-int8.json")
    # One fresh process each, so each peak is that of a process that ran only this.
    default, low = bench.run_all([model, model], [1000], runs=1, warmup=0, threads=1, low_memory=[False, True])
    assert "error" not in default and "error" not in low, (default, low)
    assert low["low_memory"] and not default["low_memory"]
    print(f"\npeak RSS at 1000x1000: default {default['peak_rss_mb']:.0f} MB, low memory {low['peak_rss_mb']:.0f} MB")
    # Measured on x86_64 (XNNPACK, 1000x1000 in the 1024 bucket): 454 vs 180 MB.
    assert low["peak_rss_mb"] < 0.6 * default["peak_rss_mb"], (low, default)


def test_low_memory_is_refused_for_a_torchscript_model(detectors):
    det = detectors[0]
    info = dataclasses.replace(det.info, backend="torchscript")
    with pytest.raises(EdgeSDKError, match="low_memory applies to LiteRT"):
        open_backend(det.path, info, low_memory=True)


def test_cli_detect_low_memory_writes_the_same_edges(tmp_path):
    outs = []
    for flag in ([], ["--low-memory"]):
        out = tmp_path / ("low" if flag else "default")
        proc = subprocess.run([sys.executable, "-m", "edgesdk", "detect", str(SAMPLE), "-o", str(out), "--threads", "1",
                               *flag], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        # Not a line of LiteRT's logging, not even its "DestroyAccelerator" INFO lines at exit.
        assert proc.stderr == "", proc.stderr
        outs.append(cv2.imread(str(out / "sample_edges.png"), cv2.IMREAD_GRAYSCALE))
    assert "low memory" in proc.stdout
    np.testing.assert_array_equal(outs[0], outs[1])
    assert outs[0].max() == 255


def test_a_dropped_low_memory_detector_says_nothing():
    # Its model's LiteRT environment logs an INFO line per accelerator as it is destroyed;
    # the backend releases it under a capture, when collected and at exit.
    code = (
        "import gc, sys, edgesdk\n"
        f"d = edgesdk.load(threads=1, low_memory=True); d.detect({str(SAMPLE)!r})\n"
        "del d; gc.collect()\n"
        "sys.stderr.write('MARK\\n'); sys.stderr.flush()\n"
        f"d = edgesdk.load(threads=1, low_memory=True); d.detect({str(SAMPLE)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    before, after = proc.stderr.split("MARK\n")
    assert before == ""
    # At exit only LiteRT's own environment, which it creates inside CompiledModel and
    # destroys among the C++ static destructors, may still log (two lines in 2.3.0).
    assert "NpuAccelerator" not in after, after


def test_peak_rss_is_the_child_s_own_not_its_big_parent_s():
    # Linux carries ru_maxrss over exec; a benchmark child of a big test runner must not report the runner's size.
    ballast = np.ones(400 * 2**20, np.uint8)  # 400 MB, touched
    code = "from edgesdk.runtime.bench import peak_rss_mb; print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert ballast.sum() == ballast.size
    assert 5 < child < 200, child


def test_cli_benchmark_low_memory_adds_a_row_per_litert_model():
    proc = subprocess.run([sys.executable, "-m", "edgesdk", "benchmark", "--size", "256", "--runs", "1", "--warmup", "0",
                           "--threads", "1", "--low-memory", "--json", "--model", "no-such-model", "--model", "default"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr  # the bad model is reported in its row; the good one still runs
    rows = json.loads(proc.stdout)["rows"]
    assert [r["model"] for r in rows if "error" in r] == ["no-such-model"]
    bundled = [r for r in rows if r["model"] == default_model_name()]
    assert [r["low_memory"] for r in bundled] == [False, True]
    assert all(r["peak_rss_mb"] > 10 and r["total_p50_ms"] > 0 for r in bundled)
