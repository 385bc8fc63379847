"""The benchmark suites' settings (full run or smoke run) and the record of what each test measured.

``conftest.py`` turns the record into the run's ratio tables and report; the suites
import :func:`record` from here.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Settings:
    """What one run measures: the full suite, or the smoke version of it."""

    full: bool
    sizes: Tuple[int, ...]  # square image sides for the model suite
    teacher_buckets: Tuple[Tuple[int, int], ...]  # the teacher files' signatures (LiteRT)
    rounds: int  # timed rounds per contender
    warmup: int
    threads: int
    map_side: int  # the kernels' soft edge map
    images: int  # the batch suite's images
    eager_sizes: Tuple[int, ...]


def full_run(config) -> bool:
    return "bench" in (config.getoption("-m") or "")


def settings_for(config) -> Settings:
    if full_run(config):
        from convert.calibration import DEFAULT_SIZES

        return Settings(True, (512, 1000), tuple(tuple(s) for s in DEFAULT_SIZES), rounds=10, warmup=2, threads=2,
                        map_side=1000, images=200, eager_sizes=(512, 1000))
    return Settings(False, (128,), ((128, 128),), rounds=1, warmup=1, threads=2, map_side=256, images=8,
                    eager_sizes=(64,))


@dataclass
class Measurement:
    suite: str  # e.g. "models 1000x1000", "nms+thin 1000x1000"
    name: str  # the contender
    role: str  # "baseline" (what the others are compared with), "teacher", "student", "contender"
    median_ms: float
    min_ms: float
    rounds: int
    extra: Dict = field(default_factory=dict)


MEASURED: List[Measurement] = []  # this run's, in the order measured


def record(benchmark, suite: str, name: str, role: str, **extra) -> Optional[Measurement]:
    """Store what ``benchmark`` just timed (and ``extra``: memory, sizes, ...) for the run's ratio tables."""
    benchmark.extra_info.update({"suite": suite, "contender": name, "role": role, **extra})
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is None:  # --benchmark-disable: nothing timed
        return None
    m = Measurement(suite, name, role, round(stats.median * 1e3, 3), round(stats.min * 1e3, 3), stats.rounds, extra)
    MEASURED.append(m)
    return m


def results(suite: str) -> List[Measurement]:
    return [m for m in MEASURED if m.suite == suite]
