"""Writing ground truth in the BSDS .mat layout for tests (scipy.io.savemat)."""

from pathlib import Path
from typing import Sequence

import numpy as np


def write_bsds_gt(path: Path, boundaries: Sequence[np.ndarray]) -> Path:
    """A BSDS500-style file: groundTruth, a 1xK cell of structs with Boundaries/Segmentation."""
    from scipy.io import savemat

    cell = np.empty((1, len(boundaries)), dtype=object)
    for k, b in enumerate(boundaries):
        cell[0, k] = {"Boundaries": np.asarray(b, np.uint8), "Segmentation": np.ones(b.shape, np.uint16)}
    savemat(str(path), {"groundTruth": cell})
    return path
