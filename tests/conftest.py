import os
import sys
from pathlib import Path

import pytest

# tests/reference.py (numpy transcriptions of the MATLAB code) is imported by name.
sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "data"


def shared_bsds() -> Path:
    """The BSDS500 folder: $EDGESDK_BSDS500, else ../shared/data/BSDS500 beside the repo."""
    return Path(os.environ.get("EDGESDK_BSDS500", REPO.parent / "shared" / "data" / "BSDS500"))


@pytest.fixture(scope="session")
def bsds500() -> Path:
    root = shared_bsds()
    if not (root / "groundTruth" / "test").is_dir():
        pytest.skip(f"BSDS500 not found at {root} (set EDGESDK_BSDS500 to run the dataset tests)")
    return root
