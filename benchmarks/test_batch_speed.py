"""Bulk detection: the batch job against the one-image-at-a-time loop, side by side in one run.

    pytest benchmarks/test_batch_speed.py -s                      # 200 images; EDGESDK_BENCH_IMAGES=N for more

On the 200 BSDS500 test images (generated 481x321 images when the data is absent): images per
second of the loop the CLI ran before the batch pipeline (detect, then save, one image at a
time, the model on every CPU), of `edgesdk.process` with one and with one-per-CPU worker
processes, and, for the distance to the machine's limit, of back-to-back inference on decoded
images and the CPU cost of each stage per image. CPU busy is user + system time of this
process and its children over wall time times the CPUs. Ratios are from this one run; the
absolute rates are this machine's (results/batch.json names it).
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

import edgesdk
from datasets import shared_bsds
from edgesdk.batch import process
from edgesdk.cpus import available_cpus
from results_io import save

COUNT = int(os.environ.get("EDGESDK_BENCH_IMAGES", "200"))


def bench_images(tmp: Path, count: int = COUNT) -> list:
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


def _timed(fn) -> dict:
    t, c = time.perf_counter(), _cpu()
    n = fn()
    wall, cpu = time.perf_counter() - t, _cpu() - c
    return {"images": n, "wall_s": round(wall, 2), "images_per_s": round(n / wall, 2),
            "cpu_busy": round(cpu / wall / available_cpus(), 3)}


def test_batch_job_against_the_one_at_a_time_loop(tmp_path):
    paths = bench_images(tmp_path)
    cpus = available_cpus()

    def loop() -> int:  # what `edgesdk detect` ran before the batch pipeline
        det = edgesdk.load()
        out = tmp_path / "loop"
        out.mkdir()
        for p in paths:
            det.detect(p).save(out, Path(p).stem)
        return len(paths)

    def job(workers: int):
        def run() -> int:
            records = list(process(paths, tmp_path / f"job{workers}", workers=workers,
                                   threads=0 if workers == 1 else max(1, cpus // workers)))
            assert not [r for r in records if "error" in r]
            return len(records)

        return run

    rows = {"one image at a time": _timed(loop), "process, 1 worker": _timed(job(1))}
    if cpus > 1:
        rows[f"process, {cpus} workers"] = _timed(job(cpus))
    # The machine's limit: inference alone, back to back, on decoded images; and each stage's cost.
    det = edgesdk.load(threads=1)
    decoded = [cv2.imread(p) for p in paths[:50]]
    t = time.perf_counter()
    for img in decoded:
        det.probability(img, color="BGR")
    infer_rate = len(decoded) / (time.perf_counter() - t)
    stages: dict = {}
    for p in paths[:50]:
        em = det.detect(p)
        t = time.perf_counter()
        em.save(tmp_path / "stages", Path(p).stem)
        for k, v in {**em.timings, "save": time.perf_counter() - t}.items():
            stages.setdefault(k, []).append(v * 1e3)
    stage_ms = {k: round(statistics.median(v), 2) for k, v in stages.items()}
    base = rows["one image at a time"]["images_per_s"]
    for row in rows.values():
        row["speedup"] = round(row["images_per_s"] / base, 2)
    print(f"\n{len(paths)} images, {cpus} CPUs")
    for name, row in rows.items():
        print(f"  {name:24s} {row['images_per_s']:6.1f} img/s  x{row['speedup']:.2f}  CPU busy {100 * row['cpu_busy']:.0f}%")
    print(f"  inference alone, 1 thread: {infer_rate:.1f} img/s; per image, 1 thread (ms): {stage_ms}")
    save("batch", {"images": len(paths), "cpus": cpus, "rows": rows, "inference_only_1_thread_per_s": round(infer_rate, 2),
                   "stage_ms_1_thread": stage_ms})
    best = max(rows.values(), key=lambda r: r["images_per_s"])
    assert best["speedup"] >= 1.0 and best["cpu_busy"] > 0.5


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


def test_peak_rss_stays_flat_over_a_long_job(tmp_path):
    if not sys.platform.startswith("linux"):
        return
    paths = bench_images(tmp_path, max(COUNT, 100) * 5)
    proc = subprocess.run([sys.executable, "-c", RSS_CHILD, str(tmp_path / "out"), *paths], capture_output=True,
                          text=True, check=True)
    at_10, at_50, at_end = eval(proc.stdout.strip().splitlines()[-1])
    print(f"\nRSS over {len(paths)} images: {at_10} MB at 10 %, {at_50} MB at 50 %, {at_end} MB at the end")
    save("batch_rss", {"images": len(paths), "rss_mb": [at_10, at_50, at_end]})
    assert at_end - at_10 < 50, (at_10, at_50, at_end)
    shutil.rmtree(tmp_path / "out")


def test_ray_on_one_machine_against_the_batch_job(tmp_path):
    try:
        import ray
    except ImportError:
        import pytest

        pytest.skip("Ray is not installed (pip install 'edgesdk[ray]')")
    from edgesdk.integrations.ray import detect_files

    paths = bench_images(tmp_path)
    cpus = available_cpus()
    rows = {f"process, {cpus} workers": _timed(lambda: len(list(process(paths, tmp_path / "job", workers=cpus,
                                                                        threads=1))))}
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        t0 = time.perf_counter()
        rows[f"Ray Data, {cpus} actors of 1 thread"] = _timed(
            lambda: len(detect_files(paths, tmp_path / "ray", concurrency=cpus, threads=1)))
        started = rows[f"Ray Data, {cpus} actors of 1 thread"]
        started["includes_start_s"] = round(time.perf_counter() - t0 - started["wall_s"], 2)
    finally:
        ray.shutdown()
    base = rows[f"process, {cpus} workers"]["images_per_s"]
    print(f"\n{len(paths)} images, {cpus} CPUs (Ray's own start-up counted in its time)")
    for name, row in rows.items():
        row["relative"] = round(row["images_per_s"] / base, 2)
        print(f"  {name:34s} {row['images_per_s']:6.1f} img/s  x{row['relative']:.2f}  CPU busy {100 * row['cpu_busy']:.0f}%")
    save("batch_ray", {"images": len(paths), "cpus": cpus, "rows": rows})
    assert all(row["images_per_s"] > 0 for row in rows.values())
