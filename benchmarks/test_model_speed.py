"""The students against the RCF teacher they replace: latency and peak memory, side by side in one run.

    pytest benchmarks/test_model_speed.py -m bench -s     # 512² and 1000², 10 rounds each

Contenders: the RCF teacher and the 50 %-pruned RCF as fp32 TFLite (default and
low-memory mode) and TorchScript, built from the training code on first use
(``benchmarks/contenders.py``: the shared HED weights or a seed-0 initialisation;
time and memory do not depend on the weight values), and every bundled student
(default and low-memory mode). The RCF teacher's files are the baseline: each
ratio is against the fastest of its forms for speed and the leanest for memory.

Latency is the full ``Detector.detect`` (preprocess, inference, NMS, thinning) on
the bundled sample image resized to the size, timed by pytest-benchmark (warm-up,
then rounds). Peak RSS is that of a fresh process that loads the model and detects
(``edgesdk.runtime.bench``, the measurement ``edgesdk benchmark`` makes), attached
to the benchmark as ``extra_info``.

The second test runs the training checkpoints' architectures eagerly in torch
(fp32): params, GFLOPs, latency and peak RSS of RCF, the pruned RCF, the Model and
the SO Model, the RCF the baseline.
"""

import gc
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from suite import record, results, settings_for
from edgesdk.runtime import bench, list_models

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parent.parent
TEACHER_FORMS = [("rcf-fp32", False), ("rcf-fp32", True), ("rcf-torchscript", False),
                 ("rcf-pruned-fp32", False), ("rcf-pruned-fp32", True), ("rcf-pruned-torchscript", False)]
ARCHITECTURES = ("rcf", "rcf-pruned", "model", "so-model")


def _contenders():
    students = [(info.name, low) for info, _ in list_models() for low in (False, True)]
    return [(name, low, "teacher") for name, low in TEACHER_FORMS] + [(n, low, "student") for n, low in students]


def _label(name: str, low: bool) -> str:
    return name + (" (low memory)" if low else "")


def pytest_generate_tests(metafunc):
    s = settings_for(metafunc.config)
    if "contender" in metafunc.fixturenames:
        metafunc.parametrize("size", s.sizes, ids=lambda v: f"{v}px")
        metafunc.parametrize("contender", _contenders(), ids=lambda c: _label(c[0], c[1]).replace(" ", "-"))
    if "architecture" in metafunc.fixturenames:
        metafunc.parametrize("eager_size", s.eager_sizes, ids=lambda v: f"{v}px")
        metafunc.parametrize("architecture", ARCHITECTURES)


@pytest.fixture(scope="session")
def teachers(settings):
    pytest.importorskip("torch", reason="the teacher is built from the training code (pip install -e '.[dev]')")
    pytest.importorskip("litert_torch", reason="the teacher is exported by litert-torch (pip install -e '.[dev]')")
    from contenders import teacher_exports

    found, weights = teacher_exports(settings.teacher_buckets)
    return {c.name: c.sidecar for c in found}, weights


def _image(size: int):
    img = cv2.imread(str(bench.sample_image()), cv2.IMREAD_COLOR)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


def test_detect(benchmark, settings, teachers, size, contender):
    import edgesdk

    name, low, role = contender
    sidecars, weights = teachers
    model = str(sidecars[name]) if role == "teacher" else name
    suite = f"models {size}x{size}"
    benchmark.group = suite
    det = edgesdk.load(model, threads=settings.threads, low_memory=low)
    img = _image(size)
    benchmark.pedantic(det.detect, args=(img,), kwargs={"color": "BGR"}, rounds=settings.rounds,
                       warmup_rounds=settings.warmup, iterations=1)
    info = det.info
    del det
    gc.collect()
    # Memory of a process holding this model alone (this one holds pytest and earlier models).
    (row,) = bench.run_all([model], [size], 1, settings.warmup, settings.threads, [low])
    assert "error" not in row, row
    role_here = "baseline" if name in ("rcf-fp32", "rcf-torchscript") else \
        "pruned teacher" if role == "teacher" else "student"
    record(benchmark, suite, _label(name, low), role_here, peak_rss_mb=row["peak_rss_mb"], file_mb=row["file_mb"],
           backend=row["backend"], precision=info.precision, low_memory=low, size=size,
           ods=info.metrics.get("bsds500_test", {}).get("ods"),
           teacher_weights=weights if role == "teacher" else None)


def test_every_student_beats_the_teacher_it_replaces(settings):
    """In a full run, every student is faster than the fastest form of the RCF teacher and leaner than the leanest."""
    if not settings.full:
        pytest.skip("the smoke run's sizes say nothing about speed (run with -m bench)")
    from report import ratio_rows

    for size in settings.sizes:
        rows = [r for r in ratio_rows(results(f"models {size}x{size}")) if r["role"] == "student"]
        assert rows, f"no student was measured at {size}"
        for r in rows:
            assert r["speedup"] > 1.0 and r["memory_fraction"] < 1.0, r


def test_eager_architecture(benchmark, settings, eager_size, architecture):
    """One training architecture in eager torch (fp32), timed here; its memory in a fresh process."""
    torch = pytest.importorskip("torch")
    from contenders import build

    torch.set_num_threads(settings.threads)
    model = build(architecture).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, eager_size, eager_size).contiguous(memory_format=torch.channels_last)

    def forward():
        with torch.inference_mode():
            return torch.sigmoid(model(x).fused)

    suite = f"eager torch fp32 {eager_size}x{eager_size}"
    benchmark.group = suite
    benchmark.pedantic(forward, rounds=settings.rounds, warmup_rounds=settings.warmup, iterations=1)
    cmd = [sys.executable, str(Path(__file__).with_name("eager_bench.py")), architecture, str(eager_size), "1",
           str(settings.warmup), str(settings.threads), "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    record(benchmark, suite, architecture, "baseline" if architecture == "rcf" else "contender",
           peak_rss_mb=row["peak_rss_mb"], params_M=row["params_M"], gflops=row["gflops"])
