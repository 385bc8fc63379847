"""training/RESULTS.md: one row per finished run, appended by the trainer and the evaluator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from edgesdk import io as fileio
from training.paths import REPO

RESULTS = REPO / "training" / "RESULTS.md"
HEADER = """# Training results

Every finished run appends a row (written by `python -m training train` and `python -m training evaluate`).
ODS/OIS/AP: BSDS500, single scale, `edgesdk.eval` standard protocol (NMS r=2 s=5 m=1.01, 99 thresholds,
maxDist 0.0075, thinning) unless the row says otherwise. Wall time: training time summed over resumed sessions.

| date | run | config | commit | iterations | wall time | split | images | ODS | OIS | AP | notes |
|---|---|---|---|---|---|---|---|---|---|---|---|
"""


def append_row(run: str, config: str, commit: str, iterations: int, wall_s: float, split: str, images: int,
               ods: float, ois: float, ap: float, notes: str = "", path: Optional[Path] = None) -> Path:
    path = Path(path or RESULTS)
    hours = f"{wall_s / 3600:.2f} h" if wall_s >= 360 else f"{wall_s / 60:.1f} min"
    row = (
        f"| {time.strftime('%Y-%m-%d %H:%M')} | {run} | {config} | {commit} | {iterations} | {hours} | {split} | "
        f"{images} | {ods:.4f} | {ois:.4f} | {ap:.4f} | {notes} |\n"
    )
    return fileio.append_text(path, ("" if path.exists() else HEADER) + row)
