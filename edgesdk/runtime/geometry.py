"""Where an image goes in a fixed-size model: pick a bucket, pad, or cut into overlapping tiles.

A TFLite export keeps every internal shape fixed, so the image is padded to
the smallest bucket that holds it (reflection padding, then the output is
cropped back). An image larger than every bucket is cut into tiles of the
largest bucket with a margin that is discarded on stitching, so the output
always has the input's size and memory stays bounded by the tile size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np


# Inputs are padded to a multiple of the networks' total stride (32 for the
# MobileNetV2 students; VGG's 16 divides it), so every stride-2 stage halves
# exactly and the upsampled side outputs stay aligned with the image.
STRIDE_MULTIPLE = 32


@dataclass(frozen=True)
class Tile:
    """Read ``src`` rows/cols of the image into a (th, tw) model input; keep ``keep`` of its output.

    ``src`` is (y0, y1, x0, x1) in the image; ``keep`` is (y0, y1, x0, x1) in the
    image as well, a sub-rectangle of ``src``. Tiles' keep rectangles partition the image.
    """

    src: Tuple[int, int, int, int]
    keep: Tuple[int, int, int, int]
    size: Tuple[int, int]


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _axis_tiles(n: int, tile: int, margin: int) -> List[Tuple[int, int, int, int]]:
    """(src0, src1, keep0, keep1) along one axis of length n with windows of `tile` pixels."""
    if n <= tile:
        return [(0, n, 0, n)]
    if tile <= 2 * margin:
        raise ValueError(f"tile {tile} too small for margin {margin}")
    out = []
    keep0 = 0
    while keep0 < n:
        src0 = min(max(keep0 - margin, 0), n - tile)
        src1 = src0 + tile
        keep1 = n if src1 >= n else src1 - margin
        out.append((src0, src1, keep0, keep1))
        keep0 = keep1
    return out


def plan_tiles(h: int, w: int, tile: Tuple[int, int], margin: int) -> List[Tile]:
    """Tiles of at most ``tile`` = (th, tw) covering an (h, w) image; each keeps all but a ``margin`` border."""
    th, tw = tile
    tiles = []
    for ys0, ys1, yk0, yk1 in _axis_tiles(h, th, margin):
        for xs0, xs1, xk0, xk1 in _axis_tiles(w, tw, margin):
            tiles.append(Tile((ys0, ys1, xs0, xs1), (yk0, yk1, xk0, xk1), (th, tw)))
    return tiles


def tile_margin(tile: Tuple[int, int]) -> int:
    """Context discarded at a tile's inner borders: two strides of 32, less for small tiles."""
    return min(64, min(tile) // 4)


def plan_inference(h: int, w: int, buckets: Sequence[Tuple[int, int]]) -> Tuple[int, List[Tile]]:
    """The cheapest way to cover an (h, w) image with fixed-size runs: (bucket index, tiles).

    Each bucket is priced at the pixels the model would process: one padded run
    if the image fits, else its tiles. A 512x512 image is cheaper as two
    352x512 tiles than padded into 1024x1024; a 1000x1000 one is padded.
    Ties go to fewer runs.
    """
    best = None
    for i, (bh, bw) in enumerate(buckets):
        if bh >= h and bw >= w:
            tiles = [Tile((0, h, 0, w), (0, h, 0, w), (bh, bw))]
        else:
            tiles = plan_tiles(h, w, (bh, bw), tile_margin((bh, bw)))
        key = (len(tiles) * bh * bw, len(tiles))
        if best is None or key < best[0]:
            best = (key, i, tiles)
    if best is None:
        raise ValueError("no buckets")
    return best[1], best[2]


def pad_to(x: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Reflection-pad an (h, w, C) array at the bottom/right to ``size`` (repeated reflection if needed)."""
    h, w = x.shape[:2]
    th, tw = size
    if (h, w) == (th, tw):
        return x
    if h > th or w > tw:
        raise ValueError(f"cannot pad {h}x{w} to the smaller {th}x{tw}")
    return np.pad(x, ((0, th - h), (0, tw - w), (0, 0)), mode="symmetric")
