"""AdaRound: choose whether each int8 weight rounds up or down so that the layer's output stays close.

Rounding every weight to its nearest int8 step is not what keeps a layer's
output closest: the errors of a filter's weights add up on the same inputs. In
the student they do most of the int8 damage in the first, highest-resolution blocks
(``python -m convert sensitivity``). AdaRound learns, per weight, a soft choice
between rounding down and up that minimises the squared difference of the
layer's output (after its activation) from the float layer's, on calibration
inputs; a regulariser pushes every choice to 0 or 1. The chosen weights are
written back on the int8 grid of the export's own per-channel scales (largest
|w| / 127, which they keep), so post-training quantisation then reproduces them
exactly and the export path is unchanged.

Reference: M. Nagel, R. A. Amjad, M. van Baalen, C. Louizos, T. Blankevoort,
"Up or Down? Adaptive Rounding for Post-Training Quantization", ICML 2020.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch (paper, eq. 23)
QMAX = 127  # symmetric int8 weights: [-127, 127], as the export's quantizer
EPS = 2.0**-12  # the export's observer floor on a scale


@dataclass
class AdaRoundConfig:
    """How each layer's rounding is learnt (the paper's defaults, fewer iterations: layers here are small)."""

    iterations: int = 1000
    lr: float = 1e-2
    batch: int = 4
    reg_weight: float = 0.01  # lambda of the rounding regulariser
    warm_up: float = 0.2  # fraction of iterations without the regulariser
    beta_start: float = 20.0
    beta_end: float = 2.0
    seed: int = 0
    asymmetric: bool = True  # feed each layer what the rounded layers before it produce (False: the float inputs)


def channel_scales(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 scales, as the export's PerChannelMinMaxObserver sets them: max |w| / 127."""
    return (weight.detach().abs().flatten(1).amax(1) / QMAX).clamp_min(EPS).view(-1, *[1] * (weight.dim() - 1))


def rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def nearest_weights(weight: torch.Tensor) -> torch.Tensor:
    """Round-to-nearest on the per-channel int8 grid (what plain post-training quantisation does)."""
    s = channel_scales(weight)
    return torch.clamp(torch.round(weight / s), -QMAX, QMAX) * s


def adaround_conv(conv: nn.Conv2d, inputs: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor],
                  cfg: AdaRoundConfig = AdaRoundConfig(), rounded_inputs: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Weights of ``conv`` on its int8 grid, each rounded up or down to keep ``act(conv(inputs))`` close.

    Parameters
    ----------
    conv : the (BatchNorm-folded) convolution.
    inputs : (N, C, H, W) float inputs it sees in the float network.
    act : the activation after it (identity for a linear projection).
    cfg : optimisation settings.
    rounded_inputs : the inputs it sees once the layers before it are rounded; the rounded layer is fed these
        and matched to the float layer on ``inputs``, so it also makes up for the earlier layers' error
        (the paper's asymmetric reconstruction, eq. 25). Default: ``inputs``.

    Returns
    -------
    The new weight tensor: ``channel_scales(w) * k`` with integer ``k`` in [-127, 127]; each channel's
    largest |w| keeps its value, so the scales are unchanged.
    """
    w = conv.weight.detach()
    s = channel_scales(w)
    floor = torch.floor(w / s)
    rest = (w / s - floor).clamp(1e-4, 1 - 1e-4)
    # Start where the soft rounding equals the float weight (h(v) = rest).
    v = (-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1)).requires_grad_(True)
    bias = conv.bias.detach() if conv.bias is not None else None

    def layer(x, weight):
        return act(F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups))

    opt = torch.optim.Adam([v], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    warm = int(cfg.warm_up * cfg.iterations)
    for it in range(cfg.iterations):
        idx = torch.randint(0, inputs.shape[0], (min(cfg.batch, inputs.shape[0]),), generator=gen)
        with torch.no_grad():
            target = layer(inputs[idx], w)
        h = rectified_sigmoid(v)
        out = layer((inputs if rounded_inputs is None else rounded_inputs)[idx], torch.clamp(floor + h, -QMAX, QMAX) * s)
        loss = (out - target).pow(2).sum(1).mean()  # squared output error per position, as the paper
        if it >= warm:
            # beta anneals from 20 to 2: first only rounds far from 0/1 pay, then all do.
            frac = (it - warm) / max(1, cfg.iterations - warm)
            beta = cfg.beta_end + 0.5 * (cfg.beta_start - cfg.beta_end) * (1 + math.cos(math.pi * frac))
            loss = loss + cfg.reg_weight * (1 - (2 * h - 1).abs().pow(beta)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        k = torch.clamp(floor + (v >= 0).to(w.dtype), -QMAX, QMAX)  # h(v) >= 0.5 exactly when v >= 0
        top = (w / s).abs() >= QMAX - 1e-6
        k = torch.where(top, torch.round(w / s), k)  # each channel's largest |w| stays at +-127 steps
    return k * s


def convolutions(model: nn.Module, prefixes: Sequence[str]) -> List[str]:
    """Names of the Conv2d modules of ``model`` inside any of the module paths ``prefixes``, in model order."""
    return [n for n, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and any(n == p or n.startswith(p + ".") for p in prefixes)]


def following_activation(model: nn.Module, conv_name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation module right after the convolution in its nn.Sequential (BatchNorm folded away), else identity."""
    parent_name, _, child = conv_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, nn.Sequential):
        names = list(parent._modules)
        for later in names[names.index(child) + 1:]:
            mod = parent._modules[later]
            if isinstance(mod, nn.Identity):
                continue  # the folded BatchNorm
            if isinstance(mod, (nn.ReLU, nn.ReLU6, nn.Hardtanh)):
                return mod
            break
    return lambda t: t


def collect_inputs(model: nn.Module, names: Sequence[str], batches: Iterable[torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The float inputs each named convolution receives over ``batches`` (NCHW network inputs), concatenated."""
    seen: Dict[str, List[torch.Tensor]] = {n: [] for n in names}
    hooks = [model.get_submodule(n).register_forward_pre_hook(lambda m, a, n=n: seen[n].append(a[0].detach()))
             for n in names]
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in hooks:
            h.remove()
    return {n: torch.cat(v) for n, v in seen.items()}


def adaround(folded: nn.Module, prefixes: Sequence[str], batches: Sequence[torch.Tensor],
             cfg: AdaRoundConfig = AdaRoundConfig(), log: Optional[Callable[[str], None]] = None) -> dict:
    """Replace, in place, the weights of every convolution under ``prefixes`` of a BatchNorm-folded network.

    ``batches`` are NCHW network inputs (e.g. normalised training crops).
    Returns a record for the export's metadata.
    """
    names = convolutions(folded, prefixes)
    if not names:
        raise ValueError(f"no convolutions under {list(prefixes)}")
    reference = copy.deepcopy(folded)  # the float network, untouched
    for k, n in enumerate(names):
        conv = folded.get_submodule(n)
        # One layer's inputs at a time (a forward each), so memory does not grow with the number of layers.
        inputs = collect_inputs(reference, [n], batches)[n]
        # What this layer sees once the ones before it are rounded (they were written back in place).
        rounded = collect_inputs(folded, [n], batches)[n] if k and cfg.asymmetric else None
        new = adaround_conv(conv, inputs, following_activation(folded, n), cfg, rounded)
        if log:
            changed = (new != nearest_weights(conv.weight.detach())).float().mean().item()
            log(f"adaround {n}: {100 * changed:.1f}% of weights rounded the other way")
        with torch.no_grad():
            conv.weight.copy_(new)
    return {"modules": list(prefixes), "convolutions": len(names), "crops": int(sum(b.shape[0] for b in batches)),
            **asdict(cfg)}
