"""On-device benchmark: per-stage latency and peak RSS of each model, each in a fresh process.

``edgesdk benchmark`` runs ``python -m edgesdk.runtime.bench`` once per (model,
size) so that every peak RSS is that of a process which loaded only that
model; latencies are medians / 95th percentiles over repeated runs after
warm-up, on a real image (the bundled sample) resized to the requested size.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from edgesdk.errors import EdgeSDKError

STAGES = ("preprocess", "inference", "nms", "thin")


def sample_image() -> Path:
    return Path(__file__).resolve().parent.parent / "models" / "sample.jpg"


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB (2**20 bytes).

    On Linux, VmHWM of /proc/self/status: ru_maxrss would do, except that the
    kernel carries it over an exec, so a process started by a big parent (a
    test runner holding models) reports the parent's size at the fork.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    # ru_maxrss is KiB on Linux, bytes on macOS.
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def measure(model: str, size: int, runs: int, warmup: int, threads: int, low_memory: bool = False,
            device: str = "cpu") -> Dict:
    """Latency per stage (ms) and peak RSS (MB) of one model at size x size, in this process."""
    import cv2

    from edgesdk.runtime import load

    det = load(model, threads=threads, low_memory=low_memory, device=device)
    img = cv2.imread(str(sample_image()), cv2.IMREAD_COLOR)
    if img is None:
        raise EdgeSDKError(f"{sample_image()}: the bundled sample image is missing or unreadable")
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    samples: Dict[str, List[float]] = {s: [] for s in (*STAGES, "total")}
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        em = det.detect(img, color="BGR")
        total = time.perf_counter() - t0
        if i >= warmup:
            for s in STAGES:
                samples[s].append(em.timings[s] * 1e3)
            samples["total"].append(total * 1e3)
    row = {
        "model": det.info.name,
        "backend": det.backend.name,
        "precision": det.info.precision,
        "low_memory": low_memory,
        "device": det.device,
        "size": size,
        "threads": det.backend.threads,  # as used: 0 asks for every CPU the process may use
        "runs": runs,
        "file_mb": round(det.path.stat().st_size / 1e6, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "tiles": em.tiles,
        "ods": det.info.metrics.get("bsds500_test", {}).get("ods"),
    }
    for s, v in samples.items():
        row[f"{s}_p50_ms"] = round(float(np.median(v)), 2)
        row[f"{s}_p95_ms"] = round(float(np.percentile(v, 95)), 2)
    return row


def machine() -> Dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"arch": platform.machine(), "cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version()}


def with_memory_modes(models: Sequence[str]) -> List[Tuple[str, bool]]:
    """(model, low_memory) runs: every model as loaded by default, each LiteRT one once more in low-memory mode."""
    from edgesdk.errors import EdgeSDKError
    from edgesdk.runtime.detector import resolve_model
    from edgesdk.runtime.metadata import read_model_info

    runs = []
    for m in models:
        runs.append((m, False))
        try:
            litert = read_model_info(resolve_model(m), verify=False)[0].backend == "litert"
        except EdgeSDKError:
            continue  # its default run reports the problem as that row's error; the others still run
        if litert:
            runs.append((m, True))
    return runs


def run_all(models: Sequence[str], sizes: Sequence[int], runs: int, warmup: int, threads: int,
            low_memory: Union[bool, Sequence[bool]] = False, device: str = "cpu") -> List[Dict]:
    """One fresh process per (model, size, memory mode); a failing model is reported, the others still run.

    ``low_memory`` is one mode for every model, or one per model.
    """
    modes = [low_memory] * len(models) if isinstance(low_memory, bool) else list(low_memory)
    rows = []
    for model, low in zip(models, modes):
        for size in sizes:
            cmd = [sys.executable, "-m", "edgesdk.runtime.bench", model, str(size), str(runs), str(warmup), str(threads),
                   str(int(low)), device]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                rows.append({"model": model, "size": size, "low_memory": low,
                             "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]})
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


def report(models: Sequence[str], sizes: Sequence[int], runs: int, warmup: int, threads: int,
           low_memory_too: bool = False, device: str = "cpu") -> Dict:
    """The benchmark as a document: the machine, the settings and a row per (model, size, memory mode).

    ``low_memory_too`` adds a low-memory row for every LiteRT model. This is what
    ``edgesdk benchmark -o FILE`` writes and what the documentation's tables are made from.
    """
    import edgesdk

    plan = with_memory_modes(models) if low_memory_too else [(m, False) for m in models]
    rows = run_all([m for m, _ in plan], sizes, runs, warmup, threads, [low for _, low in plan], device)
    return {"edgesdk": edgesdk.__version__, "date": time.strftime("%Y-%m-%d"), "machine": machine(),
            "threads": threads, "device": device, "runs": runs, "warmup": warmup, "sizes": list(sizes), "rows": rows}


def table(rows: List[Dict]) -> str:
    head = ["model", "backend", "size", "pre ms", "infer ms", "nms ms", "thin ms", "total p50", "total p95",
            "vs first", "RSS MB", "file MB", "ODS"]
    base: Dict[int, float] = {}
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["model"], "-", str(r["size"]), *(["-"] * 9), r["error"][:60]])
            continue
        base.setdefault(r["size"], r["total_p50_ms"])
        body.append([
            r["model"], r["backend"] + (f" {r['device']}" if r.get("device", "cpu") != "cpu" else "")
            + (" low-mem" if r.get("low_memory") else ""), str(r["size"]), f"{r['preprocess_p50_ms']:.1f}", f"{r['inference_p50_ms']:.1f}",
            f"{r['nms_p50_ms']:.1f}", f"{r['thin_p50_ms']:.1f}", f"{r['total_p50_ms']:.1f}", f"{r['total_p95_ms']:.1f}",
            f"{base[r['size']] / r['total_p50_ms']:.2f}x", f"{r['peak_rss_mb']:.0f}", f"{r['file_mb']:.2f}",
            "-" if r["ods"] is None else f"{r['ods']:.4f}",
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


if __name__ == "__main__":
    model, size, runs, warmup, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    low_memory = len(sys.argv) > 6 and sys.argv[6] == "1"
    device = sys.argv[7] if len(sys.argv) > 7 else "cpu"
    try:
        print(json.dumps(measure(model, size, runs, warmup, threads, low_memory, device)))
    except EdgeSDKError as exc:  # a row of its own, named by the message (not the last line of a traceback)
        print(json.dumps({"model": model, "size": size, "low_memory": low_memory, "error": str(exc)}))
    sys.stdout.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # LiteRT's farewell at exit is not this row's business
