"""What every edge model exposes: its outputs and the input it expects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple

import torch


class EdgeOutputs(NamedTuple):
    """Logits of an edge model, at the input's size.

    fused : (N, 1, H, W) the final prediction.
    sides : per-stage side outputs for deep supervision; empty in eval mode.
    features : the last backbone feature map (for the knowledge adaptor), or None.
    """

    fused: torch.Tensor
    sides: List[torch.Tensor]
    features: Optional[torch.Tensor] = None


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the model's input: channel order, then (x - mean) / std per channel.

    This travels into the exported model's metadata, so the runtime prepares
    images the way the model was trained.
    """

    channel_order: str  # "BGR" or "RGB"
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]

    def as_dict(self) -> dict:
        return {"channel_order": self.channel_order, "mean": list(self.mean), "std": list(self.std)}


# The VGG16/HED weights: BGR, Caffe mean, no scaling.
CAFFE_VGG_INPUT = InputSpec("BGR", (104.00699, 116.66877, 122.67892), (1.0, 1.0, 1.0))
# The MobileNetV2 weights: RGB scaled to [-1, 1].
MOBILENET_INPUT = InputSpec("RGB", (127.5, 127.5, 127.5), (127.5, 127.5, 127.5))
