"""Structured L1-norm filter pruning of RCF's VGG16 convs (Li et al., ICLR 2017).

The result is a genuinely smaller dense RCF (fewer channels in every pruned
conv, the next conv and the conv's 1x1 side reduction), so it runs faster on
any backend; fine-tune it afterwards.
"""

from __future__ import annotations

import math
from typing import List

import torch

from training.models.rcf import RCF

Plan = List[List[torch.Tensor]]  # kept output channels of conv j of block b, ascending


def filter_norms(model: RCF) -> List[List[torch.Tensor]]:
    """L1 norm of every filter of every VGG conv."""
    return [[conv.weight.detach().abs().sum(dim=(1, 2, 3)) for conv in block] for block in model.backbone.blocks]


def plan_pruning(model: RCF, ratio: float, scope: str = "layer", min_keep: float = 0.1) -> Plan:
    """Choose the filters to keep.

    Parameters
    ----------
    model : RCF
    ratio : fraction of filters to remove (0 <= ratio < 1).
    scope : "layer" removes `ratio` of every conv's filters; "global" ranks
        all filters together by their L1 norm divided by their layer's mean
        norm (layers differ in scale), keeping at least `min_keep` of each conv.
    """
    if not 0 <= ratio < 1:
        raise ValueError("ratio must be in [0, 1)")
    if model.pdc:
        # A conv's filters would be ranked and cut by their first term alone.
        raise ValueError("pruning an RCF with pixel difference convolutions is not supported; "
                         "prune the plain network and add them after")
    norms = filter_norms(model)
    if scope == "layer":
        keep_counts = [[max(1, math.ceil(len(n) * (1 - ratio))) for n in block] for block in norms]
    elif scope == "global":
        scores = torch.cat([n / n.mean() for block in norms for n in block])
        n_keep = max(1, math.ceil(len(scores) * (1 - ratio)))
        cut = torch.sort(scores, descending=True).values[n_keep - 1]
        keep_counts = [
            [max(math.ceil(len(n) * min_keep), int((n / n.mean() >= cut).sum())) for n in block] for block in norms
        ]
    else:
        raise ValueError(f"unknown scope {scope!r} (layer, global)")
    plan = []
    for block, counts in zip(norms, keep_counts):
        plan.append([torch.sort(torch.topk(n, k).indices).values for n, k in zip(block, counts)])
    return plan


@torch.no_grad()
def prune_rcf(model: RCF, plan: Plan) -> RCF:
    """A new, narrower RCF holding the kept filters (and the matching input channels downstream)."""
    new = RCF([[len(k) for k in block] for block in plan], mid=model.score[0].in_channels)
    keep_in = torch.arange(3)
    for b, (old_block, new_block) in enumerate(zip(model.backbone.blocks, new.backbone.blocks)):
        for j, (old, nw) in enumerate(zip(old_block, new_block)):
            keep_out = plan[b][j]
            nw.weight.copy_(old.weight[keep_out][:, keep_in])
            nw.bias.copy_(old.bias[keep_out])
            red_old, red_new = model.reduce[b][j], new.reduce[b][j]
            red_new.weight.copy_(red_old.weight[:, keep_out])
            red_new.bias.copy_(red_old.bias)
            keep_in = keep_out
    new.score.load_state_dict(model.score.state_dict())
    new.fusion.load_state_dict(model.fusion.state_dict())
    return new
