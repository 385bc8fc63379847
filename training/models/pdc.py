"""Pixel difference convolutions (PiDiNet) that fold into plain convolutions for deployment.

A pixel difference convolution multiplies its weights with differences of
pixels instead of the pixels themselves:

- ``cv`` (vanilla): ``sum_i w_i x_i``, the plain convolution;
- ``cd`` (central): ``sum_i w_i (x_i - x_c)``, each neighbour against the centre;
- ``ad`` (angular): ``sum_i w_i (x_i - x_i')``, each pixel of the 3x3 ring against
  its clockwise neighbour on the ring;
- ``rd`` (radial): ``sum_d w_d (x_{2d} - x_d)`` over the eight directions ``d``,
  the pixel two steps out against the one a step out (a 5x5 footprint).

Each is linear in the pixels, so it equals a plain convolution whose kernel is
a fixed linear map of the weights (:func:`difference_kernel`): training uses
that kernel, and :func:`fold_pixel_differences` swaps every module for the
``nn.Conv2d`` holding it, so an exported graph has plain convolutions only
(3x3 for ``cd``/``ad``, 5x5 when ``rd`` is a term).

A kind may be a sum of terms, ``"cv+cd"``: the first term's weight holds the
initial (e.g. ImageNet) weights and the others start at zero, so such a layer
starts as the convolution it was initialised from and learns difference
terms beside it.

References
----------
Z. Su, W. Liu, Z. Yu, D. Hu, Q. Liao, Q. Tian, M. Pietikäinen and L. Liu,
"Pixel Difference Networks for Efficient Edge Detection", ICCV 2021, Sec. 3.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("cv", "cd", "ad", "rd")

# A 3x3 kernel's ring, flattened indices, clockwise from the top-left corner, and each one's predecessor.
_RING = (0, 1, 2, 5, 8, 7, 6, 3)
_RING_PREV = tuple(_RING[(k - 1) % 8] for k in range(8))
# The eight directions (dy, dx) of the 3x3 positions that are not the centre, in raster order.
_DIRECTIONS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def parse_kind(kind: str) -> Tuple[str, ...]:
    """The terms of a kind such as ``"cv+cd"``; ValueError for an unknown or repeated term."""
    terms = tuple(t.strip() for t in kind.split("+"))
    bad = [t for t in terms if t not in KINDS]
    if bad or not terms or len(set(terms)) != len(terms):
        raise ValueError(f"pixel difference kind {kind!r}: terms must be distinct, from {list(KINDS)}")
    return terms


def kernel_size(kind: str) -> int:
    """3, or 5 when the radial term is in ``kind``."""
    return 5 if "rd" in parse_kind(kind) else 3


def difference_kernel(weight: torch.Tensor, kind: str) -> torch.Tensor:
    """The plain convolution kernel equal to a pixel difference convolution with ``weight``.

    Parameters
    ----------
    weight : (O, I, 3, 3) the difference convolution's weights.
    kind : one term of :data:`KINDS`.

    Returns
    -------
    (O, I, 3, 3), or (O, I, 5, 5) for ``rd``; convolving with it (padding
    ``dilation * (k - 1) // 2``) equals the difference convolution.
    """
    if weight.ndim != 4 or weight.shape[-2:] != (3, 3):
        raise ValueError(f"difference_kernel needs (O, I, 3, 3) weights, got {tuple(weight.shape)}")
    if kind == "cv":
        return weight
    if kind == "cd":
        # sum_i w_i (x_i - x_c) = sum_i w_i x_i - (sum_i w_i) x_c
        centre = torch.zeros_like(weight)
        centre[..., 1, 1] = 1.0
        return weight - weight.sum(dim=(-2, -1), keepdim=True) * centre
    if kind == "ad":
        # sum_i w_i (x_i - x_next(i)): x_j also gets -w_prev(j), prev on the ring counter-clockwise.
        flat = weight.flatten(-2)
        minus = torch.zeros_like(flat)
        minus[..., list(_RING)] = flat[..., list(_RING_PREV)]
        out = flat - minus
        out[..., 4] = 0.0  # the centre is not on the ring: its weight pairs nothing
        return out.view_as(weight)
    if kind == "rd":
        out = weight.new_zeros(weight.shape[:-2] + (5, 5))
        for (dy, dx) in _DIRECTIONS:
            w = weight[..., 1 + dy, 1 + dx]
            out[..., 2 + 2 * dy, 2 + 2 * dx] = w
            out[..., 2 + dy, 2 + dx] = -w
        return out
    raise ValueError(f"pixel difference kind {kind!r}: one of {list(KINDS)}")


class PixelDifferenceConv2d(nn.Module):
    """A 3x3 convolution of pixel differences (see the module docstring for the kinds).

    Parameters
    ----------
    in_channels, out_channels, stride, dilation, groups, bias : as for ``nn.Conv2d`` with a 3x3 kernel.
    kind : a term of :data:`KINDS` or a sum of them (``"cv+cd"``).

    The first term's weight is ``weight`` (so weights saved for a plain
    3x3 convolution load into it); each further term ``t`` has its own
    ``weight_<t>``, zero at the start.
    """

    def __init__(self, in_channels: int, out_channels: int, kind: str = "cd", stride: int = 1, dilation: int = 1,
                 groups: int = 1, bias: bool = False):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels} -> {out_channels} not divisible by groups {groups}")
        self.terms = parse_kind(kind)
        self.kind = "+".join(self.terms)
        self.kernel_size = kernel_size(self.kind)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.dilation, self.groups = stride, dilation, groups
        shape = (out_channels, in_channels // groups, 3, 3)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        for t in self.terms[1:]:
            self.register_parameter(f"weight_{t}", nn.Parameter(torch.zeros(shape)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def term_weights(self) -> List[Tuple[str, torch.Tensor]]:
        return [(self.terms[0], self.weight)] + [(t, getattr(self, f"weight_{t}")) for t in self.terms[1:]]

    def kernel(self) -> torch.Tensor:
        """The plain kernel this layer equals: the sum of its terms' kernels, 3x3 or 5x5."""
        k = self.kernel_size
        total = None
        for t, w in self.term_weights():
            kt = difference_kernel(w, t)
            if kt.shape[-1] < k:
                kt = F.pad(kt, (1, 1, 1, 1))
            total = kt if total is None else total + kt
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel()
        pad = self.dilation * (k.shape[-1] - 1) // 2
        return F.conv2d(x, k, self.bias, self.stride, pad, self.dilation, self.groups)

    def fold(self) -> nn.Conv2d:
        """The ``nn.Conv2d`` computing the same function (for export)."""
        k = self.kernel_size
        conv = nn.Conv2d(self.in_channels, self.out_channels, k, self.stride, self.dilation * (k - 1) // 2,
                         self.dilation, self.groups, bias=self.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(self.kernel())
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.to(self.weight.device).train(self.training)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kind={self.kind}, stride={self.stride}, "
                f"dilation={self.dilation}, groups={self.groups}")


def conv3x3(in_channels: int, out_channels: int, kind: str = "cv", stride: int = 1, dilation: int = 1,
            groups: int = 1, bias: bool = False) -> nn.Module:
    """A 3x3 conv padded to keep the size: ``nn.Conv2d`` for ``"cv"``, else a difference conv of ``kind``."""
    if kind == "cv":
        return nn.Conv2d(in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation, groups=groups,
                         bias=bias)
    return PixelDifferenceConv2d(in_channels, out_channels, kind, stride, dilation, groups, bias)


def fold_pixel_differences(model: nn.Module) -> int:
    """Replace every :class:`PixelDifferenceConv2d` in ``model`` by its plain convolution; returns how many."""
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, PixelDifferenceConv2d):
                setattr(parent, name, child.fold())
                n += 1
    return n
