"""Inputs for the benchmark suites."""

import cv2
import numpy as np


def soft_edge_map(size: int = 1000, seed: int = 0) -> np.ndarray:
    """A model-like soft edge map: random lines, arcs and rectangles drawn with
    varied strength, blurred to a few pixels' width, plus faint texture."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    for _ in range(size // 8):
        kind = rng.integers(3)
        strength = float(rng.uniform(0.2, 1.0))
        p = rng.integers(0, size, 4).tolist()
        if kind == 0:
            cv2.line(img, (p[0], p[1]), (p[2], p[3]), strength, 1, cv2.LINE_AA)
        elif kind == 1:
            cv2.ellipse(img, (p[0], p[1]), (p[2] // 4 + 5, p[3] // 4 + 5), float(rng.uniform(0, 180)), 0,
                        float(rng.uniform(90, 360)), strength, 1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (p[0], p[1]), (p[0] + p[2] // 5, p[1] + p[3] // 5), strength, 1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    img += 0.03 * cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 2)
    return np.clip(img / img.max(), 0, 1)
