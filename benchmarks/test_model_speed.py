"""Latency and peak memory of every exported model beside the RCF teacher, in one run.

    pytest benchmarks/test_model_speed.py -m slow -s

Models: the teacher's sidecars ($EDGESDK_BENCH_TEACHER, colon-separated; default
exports/rcf/rcf-fp32.json and exports/rcf/rcf-torchscript.json, made by
``python -m convert export --ckpt runs/rcf/model.pt --name rcf --out exports/rcf``)
and the students ($EDGESDK_BENCH_MODELS, colon-separated; default the bundled models
and every other sidecar under exports/).

Each (model, size, memory mode) is measured by ``edgesdk.runtime.bench`` in a
fresh process, so its peak RSS is that of a process that loaded only that model;
latency is the full ``Detector.detect`` (preprocess, inference, NMS, thinning) on
a real image, 2 threads, median of RUNS after WARMUP. Every LiteRT model, teacher
included, runs twice: as loaded by default and with ``low_memory=True``. The
models take turns for ROUNDS rounds and each keeps its best round, so machine
noise lands on teacher and students alike. Each ratio is against the teacher
form that is hardest to beat on it: speed against the fastest, memory against
the smallest. Results: benchmarks/results/models_<size>.json.

The second test does the same for training checkpoints run eagerly by torch
(fp32; bf16 autocast with EDGESDK_BENCH_BF16=1): params, FLOPs, latency and peak
RSS of each architecture (RCF, pruned RCF, Model, SO Model) beside the RCF
teacher, one fresh process each (benchmarks/eager_bench.py). Checkpoints:
$EDGESDK_BENCH_CKPTS (colon-separated; the first is the teacher), default the
runs/ folders of the training stack. Results: benchmarks/results/eager_<size>.json.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from edgesdk.runtime import bench, list_models
from results_io import save

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = ROOT / "exports"
RUNS, WARMUP, ROUNDS, THREADS = int(os.environ.get("EDGESDK_BENCH_RUNS", 10)), 2, 2, 2
CHECKPOINTS = ["runs/rcf/model.pt", "runs/rcf-pruned/model.pt", "runs/model/model.pt", "runs/model-hinton/model.pt",
               "runs/so-model/model.pt"]


def teacher_sidecars() -> List[Path]:
    given = os.environ.get("EDGESDK_BENCH_TEACHER")
    paths = [Path(p) for p in given.split(":")] if given else [
        EXPORTS / "rcf" / "rcf-fp32.json", EXPORTS / "rcf" / "rcf-torchscript.json"]
    return [p for p in paths if p.is_file()]


def student_sidecars(teachers: List[Path]) -> List[str]:
    given = os.environ.get("EDGESDK_BENCH_MODELS")
    if given:
        return given.split(":")
    bundled = [str(path.with_suffix(".json")) for _, path in list_models()]
    exported = sorted(str(p) for p in EXPORTS.glob("*/*.json")
                      if not p.name.endswith(".parity.json") and p.resolve() not in {t.resolve() for t in teachers})
    return bundled + exported


def key(run: Tuple[str, bool]) -> str:
    return run[0] + (" (low memory)" if run[1] else "")


def side_by_side(runs: List[Tuple[str, bool]], size: int) -> Dict[str, dict]:
    """Best (lowest p50 total) of ROUNDS fresh-process measurements of each (model, mode), taken in turn."""
    best: Dict[str, dict] = {}
    models, modes = [m for m, _ in runs], [low for _, low in runs]
    for _ in range(ROUNDS):
        for row, run in zip(bench.run_all(models, [size], RUNS, WARMUP, THREADS, modes), runs):
            assert "error" not in row, f"{key(run)}: {row.get('error')}"
            k = key(run)
            if k not in best or row["total_p50_ms"] < best[k]["total_p50_ms"]:
                best[k] = {**row, "sidecar": run[0]}
    return best


@pytest.mark.slow
@pytest.mark.parametrize("size", [512, 1000])
def test_students_vs_rcf_teacher(benchmark, size):
    teachers = teacher_sidecars()
    if not teachers:
        pytest.skip("no exported RCF teacher: python -m convert export --ckpt runs/rcf/model.pt --name rcf "
                    "--out exports/rcf --formats fp32,torchscript")
    teacher_runs = bench.with_memory_modes([str(t) for t in teachers])
    student_runs = bench.with_memory_modes(student_sidecars(teachers))
    rows = benchmark.pedantic(side_by_side, args=(teacher_runs + student_runs, size), rounds=1, iterations=1)

    teacher_rows = [rows[key(t)] for t in teacher_runs]
    fastest = min(teacher_rows, key=lambda r: r["total_p50_ms"])
    smallest = min(teacher_rows, key=lambda r: r["peak_rss_mb"])
    fields = ("model", "backend", "precision", "low_memory", "total_p50_ms", "inference_p50_ms", "peak_rss_mb",
              "file_mb", "ods")
    summary = []
    for run in student_runs:
        r = rows[key(run)]
        summary.append({
            **{k: r[k] for k in fields},
            "speedup_total": round(fastest["total_p50_ms"] / r["total_p50_ms"], 2),
            "speedup_inference": round(fastest["inference_p50_ms"] / r["inference_p50_ms"], 2),
            "memory_fraction": round(r["peak_rss_mb"] / smallest["peak_rss_mb"], 3),
        })
    report = {"size": size, "threads": THREADS, "runs": RUNS, "rounds": ROUNDS, "machine": bench.machine(),
              "teacher_fastest": {k: fastest[k] for k in fields},
              "teacher_smallest": {k: smallest[k] for k in fields},
              "students": summary, "rows": list(rows.values())}
    benchmark.extra_info.update({"teacher_fastest": report["teacher_fastest"],
                                 "teacher_smallest": report["teacher_smallest"], "students": summary})
    save(f"models_{size}", report)
    print(f"\n{size}x{size}, {THREADS} threads; speed vs the fastest teacher form ({fastest['backend']}"
          f"{', low memory' if fastest['low_memory'] else ''}, {fastest['total_p50_ms']:.0f} ms), memory vs the "
          f"smallest ({smallest['backend']}{', low memory' if smallest['low_memory'] else ''}, "
          f"{smallest['peak_rss_mb']:.0f} MB)")
    print(bench.table(teacher_rows + [rows[key(s)] for s in student_runs]))
    for s in summary:
        print(f"  {s['model']:24s} {'low memory' if s['low_memory'] else 'default':10s} "
              f"{s['speedup_total']:6.1f}x faster ({s['speedup_inference']:.1f}x inference), "
              f"{s['memory_fraction']:.3f} of the memory")

    # What every student must beat: the teacher it was made to replace, in both time and memory.
    for s in summary:
        assert s["speedup_total"] > 1.0, s
        assert s["memory_fraction"] < 1.0, s


def eager_rows(checkpoints: List[str], size: int, bf16: bool) -> Dict[str, dict]:
    """Best (lowest p50) of ROUNDS fresh-process eager measurements of each checkpoint, taken in turn."""
    best: Dict[str, dict] = {}
    script = Path(__file__).with_name("eager_bench.py")
    for _ in range(ROUNDS):
        for ckpt in checkpoints:
            cmd = [sys.executable, str(script), ckpt, str(size), str(RUNS), str(WARMUP), str(THREADS), str(int(bf16))]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            assert proc.returncode == 0, f"{ckpt}: {proc.stderr.strip()[-500:]}"
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            if ckpt not in best or row["p50_ms"] < best[ckpt]["p50_ms"]:
                best[ckpt] = row
    return best


@pytest.mark.slow
@pytest.mark.parametrize("size", [512, 1000])
def test_checkpoints_eager_vs_rcf_teacher(benchmark, size):
    pytest.importorskip("torch")
    given = os.environ.get("EDGESDK_BENCH_CKPTS")
    ckpts = [c for c in (given.split(":") if given else CHECKPOINTS) if (ROOT / c).is_file()]
    if len(ckpts) < 2 or (not given and ckpts[0] != CHECKPOINTS[0]):
        pytest.skip("needs the RCF teacher and at least one other checkpoint (python -m training train ...)")
    bf16 = os.environ.get("EDGESDK_BENCH_BF16") == "1"
    rows = benchmark.pedantic(eager_rows, args=(ckpts, size, bf16), rounds=1, iterations=1)
    teacher = rows[ckpts[0]]
    for r in rows.values():
        r["speedup"] = round(teacher["p50_ms"] / r["p50_ms"], 2)
        r["memory_fraction"] = round(r["peak_rss_mb"] / teacher["peak_rss_mb"], 3)
        r["flops_fraction"] = round(r["gflops"] / teacher["gflops"], 4)
    report = {"size": size, "threads": THREADS, "runs": RUNS, "rounds": ROUNDS, "bf16": bf16,
              "machine": bench.machine(), "teacher": ckpts[0], "rows": list(rows.values())}
    benchmark.extra_info.update(report)
    save(f"eager_{size}{'_bf16' if bf16 else ''}", report)
    print(f"\n{size}x{size} eager torch {'bf16' if bf16 else 'fp32'}, {THREADS} threads, best of {ROUNDS} rounds")
    for r in rows.values():
        print(f"  {r['checkpoint']:32s} {r['arch']:14s} {r['params_M']:7.3f} M {r['gflops']:7.1f} GFLOPs "
              f"{r['p50_ms']:8.1f} ms ({r['speedup']:5.2f}x) {r['peak_rss_mb']:6.0f} MB ({r['memory_fraction']:.2f})")
    # Fewer FLOPs must show as less time: every other architecture is faster than the teacher.
    for c in ckpts[1:]:
        if rows[c]["gflops"] < 0.5 * teacher["gflops"]:
            assert rows[c]["speedup"] > 1.0, rows[c]
