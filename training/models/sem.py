"""Scale Enhancement Module: parallel dilated depthwise convolutions, summed."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from training.models.mobilenet import ConvBNAct


class ScaleEnhancement(nn.Module):
    """Sum of depthwise 3x3 ConvBnReLU branches with different dilations (padding = dilation).

    Enlarges the receptive field at several scales for the cost of a few
    depthwise convs (He et al., "Bi-Directional Cascade Network", CVPR 2019;
    the student design of the edge-distillation article).
    """

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 2, 4, 8)):
        super().__init__()
        self.branches = nn.ModuleList(
            ConvBNAct(channels, channels, k=3, groups=channels, dilation=d, act=nn.ReLU) for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out
