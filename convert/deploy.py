"""The module that gets exported: NHWC normalised image in, NHWC edge probability out."""

from __future__ import annotations

import torch
from torch import nn


class DeployModel(nn.Module):
    """Wraps an edge model for export.

    NHWC in and out so the runtime hands its (H, W, 3) arrays over without a
    transpose; the sigmoid is inside so an int8 output has a fixed [0, 1] range
    (scale 1/256), which loses nothing an 8-bit edge map keeps.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x.permute(0, 3, 1, 2)).fused
        return torch.sigmoid(out).permute(0, 2, 3, 1)
