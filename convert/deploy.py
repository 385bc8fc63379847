"""The module that gets exported: NHWC normalised image in, NHWC edge probability out."""

from __future__ import annotations

from pathlib import Path
from typing import List

import torch
from torch import fx, nn

PREFIX = "model."  # the wrapped edge network's attribute: every traced module path starts with it


def traced_modules(node: fx.Node) -> List[str]:
    """The module paths (in the edge network, outermost first) a node of the exported deploy graph was traced in.

    torch.export records them in ``nn_module_stack``; paths outside the edge
    network (the wrapper's own ops) are left out.
    """
    paths = [v[0] for v in (node.meta.get("nn_module_stack") or {}).values()]
    return [p[len(PREFIX):] for p in paths if p.startswith(PREFIX)]


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


def load_deployable(ckpt: str | Path) -> nn.Module:
    """A saved edge model in eval mode, in the form every export path quantises and writes.

    Its pixel difference convolutions (training/models/pdc.py) are folded into
    the plain convolutions they equal, so the deployed graph costs what a
    plain one of those kernel sizes costs and the quantiser sees ordinary
    conv weights.
    """
    from training.checkpoint import load_model
    from training.models.pdc import fold_pixel_differences

    model = load_model(ckpt)
    fold_pixel_differences(model)
    return model.eval()
