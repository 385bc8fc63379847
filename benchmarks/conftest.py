"""The benchmark suites: a full run with ``-m bench``, a smoke run (small sizes, one round) otherwise.

    pytest benchmarks -m bench                          # the whole suite on this machine
    pytest benchmarks -m bench --bench-report docs/reports --benchmark-autosave
    pytest benchmarks -m bench --benchmark-compare      # against the last autosaved run

Every suite's test functions are timed by pytest-benchmark's fixture (warm-up, then
rounds) and record what they measured here (:func:`record`); at the end of the run the
ratios between contenders measured in this one run are printed as tables and written
as a JSON + Markdown report (``benchmarks/results/benchmark.*``, or ``--bench-report DIR``).
Without ``-m bench`` (the test run, CI) every suite runs once on small inputs, so
that none of them can rot; its numbers mean nothing and its report says so.
"""

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # reference.py, baseline.py, datasets.py
sys.path.insert(0, str(Path(__file__).parent))

from datasets import require_bsds500, skip_slow_unless_selected  # noqa: E402
from helpers import soft_edge_map  # noqa: E402
from suite import MEASURED, Settings, settings_for  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--bench-report", metavar="DIR", default=None,
                     help="write the benchmark report (benchmark.json, benchmark.md) into DIR "
                          "(default: benchmarks/results)")


@pytest.fixture(scope="session")
def settings(request) -> Settings:
    return settings_for(request.config)


@pytest.fixture(scope="session")
def bsds500() -> Path:
    return require_bsds500()


@pytest.fixture(scope="session")
def edge_map(settings) -> np.ndarray:
    return soft_edge_map(settings.map_side)


def pytest_collection_modifyitems(config, items):
    skip_slow_unless_selected(config, items)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not MEASURED:
        return
    from edgesdk import io as fileio
    from edgesdk.runtime.bench import machine
    from report import markdown, ratio_rows, report_document

    s = settings_for(config)
    rows = ratio_rows(MEASURED)
    md = markdown(rows)
    doc = report_document(rows, md, [asdict(m) for m in MEASURED], asdict(s), machine())
    out = Path(config.getoption("--bench-report") or ROOT / "benchmarks" / "results")
    out.mkdir(parents=True, exist_ok=True)
    fileio.write_json(out / "benchmark.json", doc)
    fileio.write_text(out / "benchmark.md", doc["markdown"])
    terminalreporter.write_sep("=", "edgesdk benchmark ratios (measured side by side in this run)")
    terminalreporter.write_line(md if s.full else "smoke run (small inputs, one round): the numbers mean nothing\n" + md)
    terminalreporter.write_line(f"report: {out / 'benchmark.json'} and benchmark.md")
