"""Where the shared dataset and weights live (never inside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """$EDGESDK_SHARED, else ../shared beside the repository."""
    return Path(os.environ.get("EDGESDK_SHARED", REPO.parent / "shared"))


def bsds500_dir() -> Path:
    return Path(os.environ.get("EDGESDK_BSDS500", shared_dir() / "data" / "BSDS500"))


def weights_path(name: str) -> Path:
    return shared_dir() / "weights" / name
