"""VGG16 convolutional backbone (Simonyan and Zisserman, ICLR 2015), without pool5 and fc layers."""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.models.pdc import conv3x3

# Output channels of the 13 3x3 convs, block by block.
VGG16_BLOCKS: Sequence[Sequence[int]] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG16Backbone(nn.Module):
    """The 13 convs of VGG16 in five blocks, max-pooled (2x2, ceil mode) between blocks.

    ``blocks[b][j]`` is conv j of block b, so state dicts keyed
    ``blocks.{b}.{j}.weight`` load directly. ``forward`` returns every conv's
    ReLU activation, grouped by block, for models that tap each layer (RCF)
    or each block's last layer (HED).

    Parameters
    ----------
    channels : per-block conv widths (defaults to VGG16; pruning passes narrower ones).
    dilate_last_block : bool
        Pool4 with stride 1 and block 5 dilated by 2 (RCF's choice: the last
        block keeps stride 8 and a large receptive field).
    pdc : pixel difference kinds (training.models.pdc) of the first convs, in
        order (conv 0 of block 0 first); the convs after them are plain.
    """

    def __init__(self, channels: Sequence[Sequence[int]] = VGG16_BLOCKS, dilate_last_block: bool = False,
                 pdc: Sequence[str] = ()):
        super().__init__()
        self.channels = [list(c) for c in channels]
        n_convs = sum(len(c) for c in self.channels)
        if len(pdc) > n_convs:
            raise ValueError(f"{len(pdc)} pixel difference kinds for {n_convs} convs")
        self.dilate_last_block = dilate_last_block
        kinds = list(pdc) + ["cv"] * (n_convs - len(pdc))  # one per conv, in order
        blocks = []
        in_ch = 3
        for b, widths in enumerate(self.channels):
            dilation = 2 if (dilate_last_block and b == len(self.channels) - 1) else 1
            convs = []
            for out_ch in widths:
                convs.append(conv3x3(in_ch, out_ch, kinds.pop(0), dilation=dilation, bias=True))
                in_ch = out_ch
            blocks.append(nn.ModuleList(convs))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> List[List[torch.Tensor]]:
        features: List[List[torch.Tensor]] = []
        last = len(self.blocks) - 1
        for b, block in enumerate(self.blocks):
            if b > 0 and self.dilate_last_block and b == last:
                # 2x2 max pool, stride 1, padded at the bottom/right to keep the size.
                x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), 2, 1)
            elif b > 0:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            acts = []
            for conv in block:
                x = F.relu(conv(x))
                acts.append(x)
            features.append(acts)
        return features
