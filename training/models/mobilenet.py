"""MobileNetV2 (Sandler et al., CVPR 2018) as a configurable backbone.

Module names follow torchvision (``features.0`` stem, ``features.1..`` inverted
residual blocks, a final 1x1 conv), so ImageNet weights load wherever the
shapes match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from training.models.pdc import conv3x3


def make_divisible(v: float, divisor: int = 8) -> int:
    """Channel count rounded as MobileNetV2 rounds it (never below 90 % of v)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class ConvBNAct(nn.Sequential):
    """Conv -> BatchNorm -> activation (ReLU6 by default, none if act=None).

    ``pdc`` other than ``"cv"`` makes the 3x3 conv a pixel difference
    convolution of that kind (training.models.pdc).
    """

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1,
                 act: type[nn.Module] | None = nn.ReLU6, pdc: str = "cv"):
        if k == 3:
            conv = conv3x3(cin, cout, pdc, stride, dilation, groups)
        elif pdc != "cv":
            raise ValueError(f"pixel difference convolutions are 3x3, not {k}x{k}")
        else:
            conv = nn.Conv2d(cin, cout, k, stride, padding=dilation * (k - 1) // 2, dilation=dilation, groups=groups,
                             bias=False)
        layers: List[nn.Module] = [conv, nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear), with a skip when shapes allow.

    ``pdc``: the depthwise conv's pixel difference kind (``"cv"``: plain).
    """

    def __init__(self, cin: int, cout: int, stride: int, expand: int, pdc: str = "cv"):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_skip = stride == 1 and cin == cout
        layers: List[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, k=1))
        layers += [ConvBNAct(hidden, hidden, stride=stride, groups=hidden, pdc=pdc),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_skip else self.conv(x)


@dataclass(frozen=True)
class Stage:
    """One row of the MobileNetV2 table: expansion t, channels c, repeats n, stride s."""

    t: int
    c: int
    n: int
    s: int


# The ImageNet network's table (Sandler et al., Table 2).
MOBILENET_V2_STAGES: Tuple[Stage, ...] = (
    Stage(1, 16, 1, 1),
    Stage(6, 24, 2, 2),
    Stage(6, 32, 3, 2),
    Stage(6, 64, 4, 2),
    Stage(6, 96, 3, 1),
    Stage(6, 160, 3, 2),
    Stage(6, 320, 1, 1),
)


class MobileNetV2Backbone(nn.Module):
    """Stem (3x3, stride 2, 32 ch) and inverted-residual stages; optionally the final 1x1 conv.

    ``forward`` returns the output of every stage (one per table row) and, if
    ``last_channels`` is set, the final conv's output (ImageNet: 1280 ch).
    ``pdc[i]`` is the pixel difference kind of the depthwise conv of the i-th
    inverted-residual block (``features[i + 1]``); blocks past its end are plain.
    """

    def __init__(self, stages: Sequence[Stage] = MOBILENET_V2_STAGES, width: float = 1.0, last_channels: int = 0,
                 pdc: Sequence[str] = ()):
        super().__init__()
        n_blocks = sum(st.n for st in stages)
        if len(pdc) > n_blocks:
            raise ValueError(f"{len(pdc)} pixel difference kinds for {n_blocks} inverted-residual blocks")
        cin = make_divisible(32 * width)
        features: List[nn.Module] = [ConvBNAct(3, cin, stride=2)]
        self.stage_ends: List[int] = []  # index in `features` of each stage's last block
        self.stage_channels: List[int] = []
        self.stage_strides: List[int] = []
        stride = 2
        for st in stages:
            cout = make_divisible(st.c * width)
            for i in range(st.n):
                kind = pdc[len(features) - 1] if len(features) - 1 < len(pdc) else "cv"
                features.append(InvertedResidual(cin, cout, st.s if i == 0 else 1, st.t, kind))
                cin = cout
            stride *= st.s
            self.stage_ends.append(len(features) - 1)
            self.stage_channels.append(cout)
            self.stage_strides.append(stride)
        self.last_channels = 0
        if last_channels:
            self.last_channels = make_divisible(last_channels * max(1.0, width))
            features.append(ConvBNAct(cin, self.last_channels, k=1))
        self.features = nn.Sequential(*features)

    def forward(self, x: torch.Tensor, with_last: bool = False) -> Tuple[List[torch.Tensor], torch.Tensor | None]:
        outs: List[torch.Tensor] = []
        ends = set(self.stage_ends)
        n_blocks = len(self.features) - (1 if self.last_channels else 0)
        for i in range(n_blocks):
            x = self.features[i](x)
            if i in ends:
                outs.append(x)
        last = self.features[-1](x) if (with_last and self.last_channels) else None
        return outs, last

    def load_imagenet(self, state_dict: Dict[str, torch.Tensor]) -> List[str]:
        """Copy every ImageNet tensor whose name and shape match; returns the names loaded."""
        own = self.state_dict()
        loaded = [k for k, v in state_dict.items() if k in own and own[k].shape == v.shape]
        own.update({k: state_dict[k] for k in loaded})
        self.load_state_dict(own)
        return loaded
