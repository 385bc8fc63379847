"""RCF: Richer Convolutional Features for edge detection (Liu et al., CVPR 2017 / TPAMI 2019)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from training.models.fusion import SideFusion
from training.models.interface import CAFFE_VGG_INPUT, EdgeOutputs
from training.models.vgg import VGG16_BLOCKS, VGG16Backbone


class RCF(nn.Module):
    """VGG16 where every conv feeds its stage's side output.

    Each 3x3 conv is followed by a 1x1 conv to ``mid`` (21) channels; a
    stage sums them and a 1x1 conv makes its side output; the five side
    outputs are upsampled to the input size and fused. Pool4 has stride 1
    and conv5 is dilated by 2, as in the paper. ``channels`` is VGG16's unless
    pruning made the convs narrower; ``pdc`` makes the first convs pixel
    difference convolutions (training.models.vgg.VGG16Backbone).
    """

    INPUT = CAFFE_VGG_INPUT

    def __init__(self, channels: Sequence[Sequence[int]] = VGG16_BLOCKS, mid: int = 21, pdc: Sequence[str] = ()):
        super().__init__()
        self.channels = [list(c) for c in channels]
        self.pdc = list(pdc)
        self.backbone = VGG16Backbone(self.channels, dilate_last_block=True, pdc=self.pdc)
        self.reduce = nn.ModuleList(nn.ModuleList(nn.Conv2d(c, mid, 1) for c in block) for block in self.channels)
        self.score = nn.ModuleList(nn.Conv2d(mid, 1, 1) for _ in self.channels)
        self.fusion = SideFusion(len(self.channels))

    @property
    def feature_channels(self) -> int:
        return self.channels[-1][-1]

    def forward(self, x: torch.Tensor, with_features: bool = False) -> EdgeOutputs:
        feats = self.backbone(x)
        sides = []
        for reduce, score, block in zip(self.reduce, self.score, feats):
            acc = reduce[0](block[0])
            for r, f in zip(list(reduce)[1:], block[1:]):
                acc = acc + r(f)
            sides.append(score(acc))
        fused, full = self.fusion(sides, x.shape[-2:])
        return EdgeOutputs(fused, full, feats[-1][-1] if with_features else None)

    def load_vgg(self, state_dict: dict) -> None:
        """Initialise the 13 convs from a state dict keyed ``blocks.{b}.{j}.weight/bias``.

        A pixel difference conv takes the plain weights into its first term;
        its further terms (``weight_<kind>``, zero at the start) are not in such a file.
        """
        missing, unexpected = self.backbone.load_state_dict(
            {k: v for k, v in state_dict.items() if k.startswith("blocks.")}, strict=False)
        missing = [k for k in missing if ".weight_" not in k]
        if missing or unexpected:
            raise KeyError(f"VGG16 weights: missing {missing}, unexpected {unexpected}")
