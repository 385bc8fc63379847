"""A run's results row: written by the trainer and the evaluator into the run's folder.

Each run keeps its own ``results.md`` (one row per evaluation) beside its
checkpoints; a log shared by several runs is written only where the user names
one (``--results FILE``), so a training run never edits a tracked file.
"""

from __future__ import annotations

import time
from pathlib import Path
from edgesdk import io as fileio

HEADER = """# Results

Every finished run appends a row (written by `python -m training train` and `python -m training evaluate`).
ODS/OIS/AP: BSDS500, single scale, `edgesdk.eval` standard protocol (NMS r=2 s=5 m=1.01, 99 thresholds,
maxDist 0.0075, thinning) unless the row says otherwise. Wall time: training time summed over resumed sessions.

| date | run | config | commit | iterations | wall time | split | images | ODS | OIS | AP | notes |
|---|---|---|---|---|---|---|---|---|---|---|---|
"""


RESULTS_FILE = "results.md"  # in a run's folder


def append_row(run: str, config: str, commit: str, iterations: int, wall_s: float, split: str, images: int,
               ods: float, ois: float, ap: float, notes: str = "", path: Path = Path(RESULTS_FILE)) -> Path:
    """Append one row (the header first, for a new file) to ``path``; returns ``path``."""
    path = Path(path)
    hours = f"{wall_s / 3600:.2f} h" if wall_s >= 360 else f"{wall_s / 60:.1f} min"
    row = (
        f"| {time.strftime('%Y-%m-%d %H:%M')} | {run} | {config} | {commit} | {iterations} | {hours} | {split} | "
        f"{images} | {ods:.4f} | {ois:.4f} | {ap:.4f} | {notes} |\n"
    )
    return fileio.append_text(path, ("" if path.exists() else HEADER) + row)
