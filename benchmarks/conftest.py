import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # reference.py, baseline.py, datasets.py
sys.path.insert(0, str(Path(__file__).parent))

from datasets import require_bsds500, skip_slow_unless_selected  # noqa: E402
from helpers import soft_edge_map  # noqa: E402


@pytest.fixture(scope="session")
def bsds500() -> Path:
    return require_bsds500()


@pytest.fixture(scope="session")
def edge_map_1000() -> np.ndarray:
    return soft_edge_map(1000)


def pytest_collection_modifyitems(config, items):
    skip_slow_unless_selected(config, items)
