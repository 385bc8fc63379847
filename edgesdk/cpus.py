"""How many CPUs this process may use: the one answer behind every ``threads=0``.

Two limits apply on Linux, and ``os.cpu_count()`` sees neither: the affinity mask
(``taskset``, a cpuset) and the CPU quota of the process's cgroup (``docker --cpus 2``,
a Kubernetes CPU limit), which leaves every core visible but throttles the process
to its quota; running 64 threads under a 2-CPU quota stalls them all.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import List, Optional, Tuple

from edgesdk.kernels import _native

# The most threads any stage may use (LiteRT, the C++ kernels, the evaluator), decided by the
# kernels: more is a mistake, not a machine (LiteRT fails on every image and crashes at exit with 32768).
MAX_THREADS = int(_native.MAX_THREADS)


def _ratio(quota: str, period: str) -> Optional[float]:
    """quota / period in CPUs, or None for no limit ("max", -1)."""
    if quota.strip() == "max":
        return None
    q, p = float(quota), float(period)
    return q / p if q > 0 and p > 0 else None


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup"), cgroup_file: Path = Path("/proc/self/cgroup")) -> Optional[float]:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None if there is none or it cannot be read.

    Reads cgroup v2 ``cpu.max`` ("max 100000", "150000 100000") or v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: none), of the process's own
    group and of every group above it (a parent's quota binds its children), and
    returns the smallest.

    References
    ----------
    Linux kernel documentation, Control Group v2, "CPU Interface Files"; cgroup v1,
    "CFS Bandwidth Control" (Documentation/scheduler/sched-bwc.rst).
    """
    try:
        lines = cgroup_file.read_text().splitlines()
    except OSError:
        return None
    limits: List[float] = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        files: Tuple[str, ...]
        if hierarchy == "0" and controllers == "":  # the v2 unified hierarchy
            mounts, files = [root, root / "unified"], ("cpu.max",)
        elif "cpu" in controllers.split(","):
            mounts = [root / controllers, root / "cpu", root / "cpu,cpuacct"]
            files = ("cpu.cfs_quota_us", "cpu.cfs_period_us")
        else:
            continue
        for mount in mounts:
            if not mount.is_dir():
                continue
            group = mount / path.strip("/")
            # In a container the listed path may not exist inside its own mount: walking up still reaches the mount's root.
            while True:
                try:
                    texts = [(group / f).read_text() for f in files]
                    limit = _ratio(*texts[0].split()[:2]) if len(files) == 1 else _ratio(texts[0], texts[1])
                except (OSError, ValueError, TypeError):
                    limit = None
                if limit is not None:
                    limits.append(limit)
                if group == mount:
                    break
                group = group.parent
            break
    return min(limits) if limits else None


def available_cpus(root: Path = Path("/sys/fs/cgroup"), cgroup_file: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota (rounded up).

    ``root`` and ``cgroup_file`` are where the cgroup filesystem and this
    process's membership are read (see :func:`cgroup_cpu_limit`).
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root, cgroup_file)
    if limit is not None:
        n = min(n, math.ceil(limit))
    return max(1, min(n, MAX_THREADS))
