"""Parameter counts, FLOPs and CPU latency of edge models (inference path, eval mode)."""

from __future__ import annotations

import time
from typing import Dict, Tuple

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def inference_params(model: nn.Module) -> int:
    """Parameters used by inference (a student's final 1x1 conv only feeds the adaptor in training)."""
    total = count_params(model)
    backbone = getattr(model, "backbone", None)
    if backbone is not None and getattr(backbone, "last_channels", 0):
        total -= count_params(backbone.features[-1])
    return total


def count_flops(model: nn.Module, size: Tuple[int, int] = (1000, 1000)) -> int:
    """FLOPs of one inference forward pass (conv and matmul, 2 per multiply-add), batch 1."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, *size))
    model.train(was_training)
    return int(counter.get_total_flops())


def cpu_latency_ms(model: nn.Module, size: Tuple[int, int] = (1000, 1000), runs: int = 5, bf16: bool = False) -> float:
    """Median wall time (ms) of an inference forward pass, after one warm-up."""
    model.eval()
    x = torch.rand(1, 3, *size).contiguous(memory_format=torch.channels_last)
    m = model.to(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        m(x)
        for _ in range(runs):
            t = time.perf_counter()
            m(x)
            times.append(time.perf_counter() - t)
    times.sort()
    return 1e3 * times[len(times) // 2]


def report(model: nn.Module, size: Tuple[int, int] = (1000, 1000)) -> Dict[str, float]:
    return {
        "params_M": count_params(model) / 1e6,
        "inference_params_M": inference_params(model) / 1e6,
        "GFLOPs@%dx%d" % size: count_flops(model, size) / 1e9,
    }
