"""Bulk detection: the batch job against the one-image-at-a-time loop, side by side in one run.

    pytest benchmarks/test_batch_speed.py -m bench -s       # 200 images; EDGESDK_BENCH_IMAGES=N for more

On the 200 BSDS500 test images (generated 481x321 images when the data is absent; 8 in
the smoke run), each timed by pytest-benchmark as one job: the loop the CLI ran before
the batch pipeline (detect, then save, one image at a time, the model on every CPU: the
baseline), ``edgesdk.process`` with one worker and with one per CPU, Ray Data with one
one-thread actor per CPU (Ray's start-up counted), and, for the distance to the machine's
limit, back-to-back inference on the decoded images in one thread, with the CPU cost of
each stage per image. CPU busy is user + system time of this process and its children
over wall time times the CPUs.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgesdk
from suite import record
from datasets import shared_bsds
from edgesdk.batch import process
from edgesdk.cpus import available_cpus

pytestmark = pytest.mark.bench


def bench_images(tmp: Path, count: int) -> list:
    """``count`` image paths: the BSDS500 test images (copied past 200), or generated 481x321 ones."""
    test = shared_bsds() / "images" / "test"
    found = sorted(test.glob("*.jpg")) if test.is_dir() else []
    if not found:
        rng = np.random.default_rng(0)
        folder = tmp / "generated"
        folder.mkdir(exist_ok=True)
        for k in range(min(count, 200)):
            img = cv2.GaussianBlur(rng.integers(0, 256, (321, 481, 3), dtype=np.uint8), (0, 0), 3)
            cv2.rectangle(img, (40 + k % 50, 30), (300, 200 + k % 80), (255, 255, 255), 3)
            cv2.imwrite(str(folder / f"g{k:03d}.jpg"), img)
        found = sorted(folder.glob("*.jpg"))
    if count <= len(found):
        return [str(p) for p in found[:count]]
    # More than there are: copies in folders of their own (a file named twice would be detected once).
    paths = []
    for k in range(count):
        folder = tmp / f"copy{k // len(found)}"
        folder.mkdir(exist_ok=True)
        target = folder / found[k % len(found)].name
        shutil.copyfile(found[k % len(found)], target)
        paths.append(str(target))
    return paths


def _cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _count(settings) -> int:
    return int(os.environ.get("EDGESDK_BENCH_IMAGES", settings.images)) if settings.full else settings.images


@pytest.fixture(scope="module")
def images(settings, tmp_path_factory):
    return bench_images(tmp_path_factory.mktemp("images"), _count(settings))


JOBS = ["one image at a time", "process, 1 worker", "process, a worker per CPU", "Ray Data, an actor per CPU",
        "inference alone, 1 thread"]


@pytest.mark.parametrize("job", JOBS)
def test_batch_job(benchmark, settings, images, tmp_path, job):
    cpus = available_cpus()
    suite = f"bulk detection, {len(images)} images"
    benchmark.group = suite
    extra: dict = {}
    if job == "one image at a time":  # what `edgesdk detect` ran before the batch pipeline
        def run() -> int:
            det = edgesdk.load()
            out = tmp_path / "loop"
            out.mkdir(exist_ok=True)
            for p in images:
                det.detect(p).save(out, Path(p).stem)
            return len(images)
    elif job.startswith("process"):
        workers = 1 if job.endswith("1 worker") else cpus

        def run() -> int:
            records = list(process(images, tmp_path / "job", workers=workers,
                                   threads=0 if workers == 1 else max(1, cpus // workers)))
            assert not [r for r in records if "error" in r]
            return len(records)
    elif job.startswith("Ray"):
        ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'edgesdk[ray]')")
        from edgesdk.integrations.ray import detect_files

        def run() -> int:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                return len(detect_files(images, tmp_path / "ray", concurrency=cpus, threads=1))
            finally:
                ray.shutdown()
    else:  # the machine's limit: inference alone, back to back, on decoded images; and each stage's cost
        det = edgesdk.load(threads=1)
        decoded = [cv2.imread(p) for p in images]
        stages: dict = {}
        for p in images:
            em = det.detect(p)
            t = time.perf_counter()
            em.save(tmp_path / "stages", Path(p).stem)
            for k, v in {**em.timings, "save": time.perf_counter() - t}.items():
                stages.setdefault(k, []).append(v * 1e3)
        extra["stage_ms_1_thread"] = {k: round(statistics.median(v), 2) for k, v in stages.items()}

        def run() -> int:
            for img in decoded:
                det.probability(img, color="BGR")
            return len(decoded)
    cpu = _cpu()
    t = time.perf_counter()
    done = benchmark.pedantic(run, rounds=1, warmup_rounds=0, iterations=1)
    wall, cpu = time.perf_counter() - t, _cpu() - cpu
    assert done == len(images)
    record(benchmark, suite, job, "baseline" if job == "one image at a time" else "contender",
           images_per_s=round(len(images) / wall, 2), cpu_busy=round(cpu / wall / cpus, 3), cpus=cpus, **extra)


RSS_CHILD = """
import sys, threading, time
from edgesdk.batch import process
paths = sys.argv[2:]
samples = []
def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) / 1024
for k, record in enumerate(process(paths, sys.argv[1], threads=0)):
    if k in (len(paths) // 10, len(paths) // 2, len(paths) - 1):
        samples.append(round(rss(), 1))
print(samples)
"""


def test_peak_rss_stays_flat_over_a_long_job(settings, tmp_path):
    if not sys.platform.startswith("linux"):
        return
    paths = bench_images(tmp_path, max(_count(settings), 100) * 5 if settings.full else 40)
    proc = subprocess.run([sys.executable, "-c", RSS_CHILD, str(tmp_path / "out"), *paths], capture_output=True,
                          text=True, check=True)
    at_10, at_50, at_end = eval(proc.stdout.strip().splitlines()[-1])
    print(f"\nRSS over {len(paths)} images: {at_10} MB at 10 %, {at_50} MB at 50 %, {at_end} MB at the end")
    assert at_end - at_10 < 50, (at_10, at_50, at_end)
    shutil.rmtree(tmp_path / "out")
