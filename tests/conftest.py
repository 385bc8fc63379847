import sys
from pathlib import Path

import pytest

# Test helpers (reference.py, baseline.py, ...) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from datasets import require_bsds500, skip_slow_unless_selected  # noqa: E402


@pytest.fixture(scope="session")
def bsds500() -> Path:
    return require_bsds500()


def pytest_collection_modifyitems(config, items):
    skip_slow_unless_selected(config, items)
