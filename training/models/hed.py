"""HED: holistically-nested edge detection (Xie and Tu, ICCV 2015)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.models.interface import CAFFE_VGG_INPUT, EdgeOutputs
from training.models.vgg import VGG16_BLOCKS, VGG16Backbone


class HED(nn.Module):
    """VGG16 with a 1x1 side output after each block, upsampled and fused by a 1x1 conv.

    ``forward`` takes a BGR image minus the Caffe mean (N, 3, H, W).
    """

    INPUT = CAFFE_VGG_INPUT

    def __init__(self, channels: Sequence[Sequence[int]] = VGG16_BLOCKS):
        super().__init__()
        self.backbone = VGG16Backbone(channels)
        self.dsn = nn.ModuleList(nn.Conv2d(c[-1], 1, 1) for c in channels)
        self.fuse = nn.Conv2d(len(channels), 1, 1)

    def forward(self, x: torch.Tensor, with_features: bool = False) -> EdgeOutputs:
        size = x.shape[-2:]
        feats = self.backbone(x)
        sides = [
            F.interpolate(dsn(block[-1]), size=size, mode="bilinear", align_corners=False)
            for dsn, block in zip(self.dsn, feats)
        ]
        return EdgeOutputs(self.fuse(torch.cat(sides, dim=1)), sides, feats[-1][-1] if with_features else None)

    def load_hed_weights(self, state_dict: dict) -> None:
        """Load the shared ``hed_bsds500_vgg16.pth`` (keys ``blocks.*``, ``dsn.*``, ``fuse``)."""
        backbone = {k: v for k, v in state_dict.items() if k.startswith("blocks.")}
        self.backbone.load_state_dict(backbone)
        heads = {k: v for k, v in state_dict.items() if not k.startswith("blocks.")}
        missing, unexpected = self.load_state_dict(heads, strict=False)
        missing = [k for k in missing if not k.startswith("backbone.")]
        if missing or unexpected:
            raise KeyError(f"HED weights: missing {missing}, unexpected {unexpected}")
