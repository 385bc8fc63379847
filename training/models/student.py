"""The distillation students: MobileNetV2 stages with Scale Enhancement Modules and side outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn

from training.models.fusion import SideFusion
from training.models.interface import MOBILENET_INPUT, EdgeOutputs
from training.models.mobilenet import MOBILENET_V2_STAGES, MobileNetV2Backbone, Stage
from training.models.sem import ScaleEnhancement


@dataclass(frozen=True)
class StudentConfig:
    """Architecture of a student: which MobileNetV2 rows, where the side outputs go, how wide.

    stages : MobileNetV2 table rows (t, c, n, s).
    side_stages : indices of the rows whose output gets a SEM and a side output.
    width : width multiplier for every row.
    dilations : SEM branch dilations.
    last_channels : final 1x1 conv (ImageNet: 1280) whose pooled output feeds
        the knowledge adaptor; 0 for none. Only run when features are asked for.
    pdc : pixel difference kinds (training.models.pdc) of the inverted-residual
        blocks' depthwise convs, first block first; the blocks after them are plain.
    """

    stages: Tuple[Stage, ...] = MOBILENET_V2_STAGES
    side_stages: Tuple[int, ...] = (0, 1, 2, 4, 6)
    width: float = 1.0
    dilations: Tuple[int, ...] = (1, 2, 4, 8)
    last_channels: int = 1280
    pdc: Tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict) -> "StudentConfig":
        d = dict(d)
        if "stages" in d:
            d["stages"] = tuple(Stage(*s) if not isinstance(s, Stage) else s for s in d["stages"])
        for k in ("side_stages", "dilations", "pdc"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


# The article's "Model": all seven MobileNetV2 rows, a side output at every
# stride (2, 4, 8, 16, 32).
MODEL = StudentConfig()
# The "SO Model": the rows up to stride 16 only, narrower SEMs.
SO_MODEL = StudentConfig(stages=MOBILENET_V2_STAGES[:5], side_stages=(0, 1, 2, 4), dilations=(1, 2, 4))


class EdgeStudent(nn.Module):
    """MobileNetV2 backbone; SEM + 1x1 side output on the chosen stages; learned fusion."""

    INPUT = MOBILENET_INPUT

    def __init__(self, config: StudentConfig = MODEL):
        super().__init__()
        self.config = config
        self.backbone = MobileNetV2Backbone(config.stages, config.width, config.last_channels, config.pdc)
        chans = [self.backbone.stage_channels[i] for i in config.side_stages]
        self.sems = nn.ModuleList(ScaleEnhancement(c, config.dilations) for c in chans)
        self.sides = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in chans)
        self.fusion = SideFusion(len(chans))

    @property
    def feature_channels(self) -> int:
        return self.backbone.last_channels

    def forward(self, x: torch.Tensor, with_features: bool = False) -> EdgeOutputs:
        outs, last = self.backbone(x, with_last=with_features)
        sides = [side(sem(outs[i])) for i, sem, side in zip(self.config.side_stages, self.sems, self.sides)]
        fused, full = self.fusion(sides, x.shape[-2:])
        return EdgeOutputs(fused, full, last)
