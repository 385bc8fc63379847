"""Benchmark results as JSON in benchmarks/results/ (machine-specific, not committed)."""

import platform
import time
from pathlib import Path

from edgesdk import io as fileio

RESULTS = Path(__file__).parent / "results"


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    doc = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
        **data,
    }
    path = RESULTS / f"{name}.json"
    fileio.write_json(path, doc)
    return path
