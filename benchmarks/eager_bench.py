"""One training architecture's eager torch inference at one size, in this (fresh) process.

    python benchmarks/eager_bench.py ARCHITECTURE SIZE RUNS WARMUP THREADS BF16

ARCHITECTURE is rcf, rcf-pruned (half the filters of every conv), model or so-model,
built from the training code with a seed-0 initialisation: params, FLOPs, latency
and peak RSS do not depend on the weight values. Prints one JSON line; run by
benchmarks/test_model_speed.py, one process per row, so that the peak RSS is that of
a process holding only this model.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(architecture: str, size: int, runs: int, warmup: int, threads: int, bf16: bool) -> dict:
    import torch

    from contenders import build  # beside this script
    from edgesdk.runtime.bench import peak_rss_mb
    from training.complexity import count_flops, inference_params

    torch.set_num_threads(threads)
    model = build(architecture).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(warmup + runs):
            t = time.perf_counter()
            torch.sigmoid(model(x).fused)
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1e3)
    rss = peak_rss_mb()  # before counting FLOPs, whose hooks allocate
    return {"architecture": architecture, "size": size, "threads": threads, "bf16": bf16, "runs": runs,
            "params_M": round(inference_params(model) / 1e6, 3),
            "gflops": round(count_flops(model, (size, size)) / 1e9, 1),
            "p50_ms": round(float(np.median(times)), 1), "peak_rss_mb": round(rss, 1)}


if __name__ == "__main__":
    a = sys.argv[1:]
    print(json.dumps(main(a[0], int(a[1]), int(a[2]), int(a[3]), int(a[4]), a[5] == "1")))
