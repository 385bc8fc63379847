"""Inference time at 1000x1000 with 2, 1 and the default threads, in whatever cgroup this runs in (stop 26).

Run it inside a cgroup with a CPU quota to see what threads beyond the quota cost; as root, cgroup v1:

    mkdir /sys/fs/cgroup/cpu/edgesdk-q && echo 100000 > /sys/fs/cgroup/cpu/edgesdk-q/cpu.cfs_quota_us
    bash -c 'echo $$ > /sys/fs/cgroup/cpu/edgesdk-q/cgroup.procs; python docs/scripts/threads-under-quota.py'
    rmdir /sys/fs/cgroup/cpu/edgesdk-q

On stop 26's 2-core VM under a 1-CPU quota: 2 threads 66-68 ms, 1 thread 60 ms, the default (now 1
there: the quota caps it) 61 ms, in two rounds.
"""

import numpy as np

import edgesdk
from edgesdk.cpus import available_cpus, cgroup_cpu_limit

print(f"available_cpus {available_cpus()}, cgroup CPU quota {cgroup_cpu_limit()}")
img = np.random.default_rng(0).integers(0, 255, (1000, 1000, 3), dtype=np.uint8)
for round_ in range(2):
    for threads in (2, 1, 0):
        det = edgesdk.load(threads=threads)
        times = [det.detect(img).timings["inference"] for _ in range(12)][2:]
        print(f"round {round_}: threads={threads} ({det.backend.threads} used): "
              f"p50 {np.median(times) * 1e3:.1f} ms, p90 {np.percentile(times, 90) * 1e3:.1f} ms")
