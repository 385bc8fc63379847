"""Side outputs at several resolutions, upsampled to the input size and fused by a 1x1 conv."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class SideFusion(nn.Module):
    """Learned linear fusion of single-channel side outputs.

    Training needs every side at full size (each is supervised). Inference
    needs only ``bias + sum_i w_i * up(s_i)``: upsampling is linear, so each
    weight is applied at the side's own (small) resolution and no stack of
    full-size maps or full-size 1x1 conv is built. Both orders give the same
    result up to float rounding.

    ``keep_sides`` makes inference return the full-size sides too, for a test
    that merges them with the fused map (HED's late merging); the fused map is
    then still computed the inference way.
    """

    def __init__(self, n_sides: int):
        super().__init__()
        self.weight = nn.Parameter(torch.full((n_sides,), 1.0 / n_sides))
        self.bias = nn.Parameter(torch.zeros(1))
        self.keep_sides = False

    def forward(self, sides: Sequence[torch.Tensor], size: Tuple[int, int]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """(fused, full-size sides) if training or ``keep_sides``, else (fused, [])."""
        if self.training:
            full = [F.interpolate(s, size=size, mode="bilinear", align_corners=False) for s in sides]
            fused = torch.einsum("nchw,c->nhw", torch.cat(full, dim=1), self.weight)[:, None] + self.bias
            return fused, full
        fused = None
        for w, s in zip(self.weight, sides):
            up = F.interpolate(s * w, size=size, mode="bilinear", align_corners=False)
            fused = up if fused is None else fused + up
        full = [F.interpolate(s, size=size, mode="bilinear", align_corners=False) for s in sides] if self.keep_sides else []
        return fused + self.bias, full
