"""Locating the shared BSDS500 copy; tests that need it skip with the reason when it is absent."""

import os
import shutil
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_bsds() -> Path:
    """The BSDS500 folder: $EDGESDK_BSDS500, else ../shared/data/BSDS500 beside the repo."""
    return Path(os.environ.get("EDGESDK_BSDS500", REPO.parent / "shared" / "data" / "BSDS500"))


def require_bsds500() -> Path:
    root = shared_bsds()
    if not (root / "groundTruth" / "test").is_dir():
        pytest.skip(f"BSDS500 not found at {root} (set EDGESDK_BSDS500 to run the dataset tests)")
    return root


SAMPLE = REPO / "examples" / "bsds500-sample"
SAMPLE_IDS = tuple(sorted(p.stem for p in (SAMPLE / "images").glob("*.jpg")))


def sample_bsds_tree(root: Path, splits: Mapping[str, Optional[Sequence[str]]]) -> Path:
    """A BSDS500-layout folder (images/<split>, groundTruth/<split>) built from the bundled sample.

    ``splits`` maps a split name to the sample image ids it gets (None: all three).
    """
    for split, ids in splits.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "groundTruth" / split).mkdir(parents=True)
        for stem in SAMPLE_IDS if ids is None else ids:
            shutil.copy(SAMPLE / "images" / f"{stem}.jpg", root / "images" / split)
            shutil.copy(SAMPLE / "groundTruth" / f"{stem}.mat", root / "groundTruth" / split)
    return root


def skip_slow_unless_selected(config, items) -> None:
    """Slow tests (full dataset, training) run only when `-m` names the slow marker."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: select with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
