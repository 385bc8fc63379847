"""Locating the shared BSDS500 copy; tests that need it skip with the reason when it is absent."""

import os
from pathlib import Path

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


def skip_slow_unless_selected(config, items) -> None:
    """Slow tests (full dataset, training) run only when `-m` names the slow marker."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: select with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
