"""Edges drawn over the image they were found in: what a user looks at to judge a result."""

from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np

from edgesdk.arguments import check_count, is_number
from edgesdk.errors import InputError
from edgesdk.runtime.image import rgb_triple

RED: Tuple[int, int, int] = (255, 0, 0)


def check_rgb(value: object, what: str) -> Tuple[int, int, int]:
    """``value`` as an (R, G, B) of integers 0-255, or an InputError naming ``what``."""
    rgb = rgb_triple(value)
    if rgb is not None:
        return rgb
    raise InputError(f"{what} must be an (R, G, B) of integers 0-255, got {value!r}")


def overlay(
    pixels: np.ndarray, weight: np.ndarray, color: Sequence[int] = RED, alpha: float = 1.0, order: str = "BGR",
) -> np.ndarray:
    """``color`` blended over ``pixels`` where ``weight`` says: ``out = p + (c - p) * alpha * weight``.

    Parameters
    ----------
    pixels : (H, W, 3) uint8
        The image, in ``order``.
    weight : (H, W) bool or float in [0, 1]
        Where to draw: binary edges, or a probability for a soft overlay.
    color : (R, G, B)
        The edges' colour.
    alpha : float in [0, 1]
        Opacity at full weight.
    order : {"BGR", "RGB"}
        The channel order of ``pixels`` and of the result.

    Returns
    -------
    (H, W, 3) uint8
        A new image, rounded to the nearest level.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise InputError(f"overlay: the image must be (H, W, 3) uint8, got {pixels.dtype} {pixels.shape}")
    if weight.shape != pixels.shape[:2]:
        raise InputError(f"overlay: the image is {pixels.shape[1]}x{pixels.shape[0]} but the edge map "
                         f"{weight.shape[1]}x{weight.shape[0]} (pass the image the edges were detected in)")
    if order not in ("BGR", "RGB"):
        raise InputError(f"order must be 'BGR' or 'RGB', got {order!r}")
    rgb = check_rgb(color, "color")
    if not is_number(alpha) or not 0 <= alpha <= 1:
        raise InputError(f"alpha must be a number in [0, 1], got {alpha!r}")
    c = np.array(rgb if order == "RGB" else rgb[::-1], np.float32)
    # Row bands: no full-size float temporaries beside the result.
    out = np.empty_like(pixels)
    step = max(1, (1 << 20) // max(pixels.shape[1], 1))
    for y in range(0, pixels.shape[0], step):
        p = pixels[y : y + step].astype(np.float32)
        w = weight[y : y + step].astype(np.float32)[:, :, None] * np.float32(alpha)
        out[y : y + step] = np.rint(p + (c - p) * w)
    return out


def thicken(edges: np.ndarray, thickness: int) -> np.ndarray:
    """Binary edges widened to ``thickness`` pixels (a square dilation), so thin edges show on a large image."""
    thickness = check_count(thickness, "thickness", 1, 64)
    if thickness == 1:
        return edges
    kernel = np.ones((thickness, thickness), np.uint8)
    return cv2.dilate(edges.astype(np.uint8), kernel).astype(bool)


def auto_thickness(height: int, width: int) -> int:
    """A line width that stays visible when the image is shown whole: 1 pixel up to 1000 pixels a side, then 1 per 1000."""
    return max(1, round(max(height, width) / 1000))
