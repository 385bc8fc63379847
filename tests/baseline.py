"""A classical edge detector used as a stand-in prediction where no model is available."""

import cv2
import numpy as np


def sobel_edges(bgr: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Gradient magnitude of the Gaussian-smoothed grey image, scaled to [0, 1] at its 99th percentile."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), sigma)
    mag = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return np.clip(mag / max(float(np.percentile(mag, 99)), 1e-6), 0, 1).astype(np.float64)
