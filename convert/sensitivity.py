"""Which modules of a network lose most accuracy under int8: the ones worth leaving in float.

The network is quantised as the export quantises it (``convert.tflite.quantize_pt2e``:
PT2E post-training quantisation on the same calibration images). The converted
graph simulates int8 in torch by quantize/dequantize pairs. For one module at a
time, the pairs of its weights and of the activations it produces are bypassed,
and the error of the output probability map against the fp32 network (mean
squared difference over some val images) is measured again: the fraction of
the int8 error that goes away is that module's share. Only the roundings a
float module really drops are bypassed: those of its weights and of the tensors
it passes between its own ops (``QDQ.internal``); what it receives from and
hands to int8 neighbours stays int8, as in a ``--float-modules`` export. So the
share is what that export wins back, up to interactions between modules.

Reference: the layer-wise sensitivity analysis of R. Krishnamoorthi,
"Quantizing deep convolutional networks for efficient inference: A whitepaper",
arXiv:1806.08342 (2018), section 3.7.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import fx

from convert.deploy import traced_modules

@dataclass(frozen=True)
class QDQ:
    """One quantize -> dequantize pair of the converted graph."""

    dequant: fx.Node
    source: fx.Node  # the float tensor that gets rounded
    module: Optional[str]  # the module group it belongs to (None: outside the edge network)
    kind: str  # "weight" or "activation"
    readers: Tuple[Optional[str], ...] = ()  # the groups of the ops that read the rounded tensor

    @property
    def internal(self) -> bool:
        """Whether leaving ``module`` float removes this rounding: a weight of it, or a tensor only it reads back.

        A tensor a float module hands to an int8 one stays int8 (the reader
        quantizes its input), and so does one it receives.
        """
        return self.kind == "weight" or all(r == self.module for r in self.readers)


def module_group(path: str) -> str:
    """The group of a module path: up to its first list index within three levels, else its first level.

    ``backbone.features.1.conv.0.0`` -> ``backbone.features.1`` (one inverted residual block),
    ``sems.0.branches.1`` -> ``sems.0``, ``fusion`` -> ``fusion``.
    """
    parts = path.split(".")
    numeric = [i for i, p in enumerate(parts[:3]) if p.isdigit()]
    return ".".join(parts[: numeric[-1] + 1]) if numeric else parts[0]


def node_group(node: fx.Node) -> Optional[str]:
    """The module group ``node`` was traced in, from torch.export's ``nn_module_stack``."""
    paths = traced_modules(node)
    return module_group(paths[-1]) if paths else None


def qdq_pairs(graph: fx.GraphModule) -> List[QDQ]:
    """Every quantize/dequantize pair of a ``convert_pt2e(..., fold_quantize=False)`` graph, with its group.

    A weight (a ``get_attr`` input) belongs to the module of the op that uses
    it; an activation to the module of the op that produced it (a tensor from
    outside the network, e.g. the input, to none).
    """
    out = []
    for n in graph.graph.nodes:
        if n.op != "call_function" or not re.search(r"\bdequantize_per_(tensor|channel)\b", str(n.target)):
            continue
        q = n.args[0]
        if not (isinstance(q, fx.Node) and re.search(r"\bquantize_per_(tensor|channel)\b", str(q.target))):
            continue
        src, readers = q.args[0], tuple(node_group(u) for u in n.users)
        if src.op == "get_attr":
            out.append(QDQ(n, src, readers[0] if readers else None, "weight", readers))
        else:
            out.append(QDQ(n, src, node_group(src) if src.op == "call_function" else None, "activation", readers))
    return out


@contextlib.contextmanager
def bypassed(graph: fx.GraphModule, pairs: Sequence[QDQ]) -> Iterator[fx.GraphModule]:
    """``graph`` with ``pairs`` skipped (their users read the float source), restored on exit."""
    rewired: List[Tuple[QDQ, List[fx.Node]]] = []
    try:
        for p in pairs:
            users = list(p.dequant.users)
            p.dequant.replace_all_uses_with(p.source)
            rewired.append((p, users))
        graph.recompile()
        yield graph
    finally:
        for p, users in rewired:
            for u in users:
                u.replace_input_with(p.source, p.dequant)
        graph.recompile()


def output_error(net, inputs: Sequence[Tuple[torch.Tensor, int, int]], refs: Sequence[torch.Tensor]) -> float:
    """Mean over images of the mean squared difference between ``net``'s map (cropped to h x w) and the reference."""
    with torch.no_grad():
        return float(np.mean([((net(x)[0, :h, :w, 0] - r) ** 2).mean().item() for (x, h, w), r in zip(inputs, refs)]))


@dataclass
class Sensitivity:
    """Per group: int8 error with that group in float; and the error as the most sensitive groups are floated in turn."""

    int8_error: float
    groups: Dict[str, Dict[str, float]]  # group -> {"weights", "activations", "error", "share"}
    cumulative: List[Tuple[str, float]]  # (group added, error with it and those before it in float)


def sensitivity(graph: fx.GraphModule, inputs, refs, cumulative: int = 6) -> Sensitivity:
    """Measure each module group's share of the int8 error of ``graph`` (see the module docstring).

    Parameters
    ----------
    graph : the converted PT2E graph (``quantize_pt2e(...)[0]``).
    inputs : (1, H, W, 3) tensors with the (h, w) of the image inside each.
    refs : the fp32 network's (h, w) maps of the same inputs.
    cumulative : float this many of the most sensitive groups, one after another.

    Returns
    -------
    Sensitivity, its groups ordered by decreasing share.
    """
    pairs = [p for p in qdq_pairs(graph) if p.module is not None and p.internal]
    base = output_error(graph, inputs, refs)
    rows = {}
    for group in dict.fromkeys(p.module for p in pairs):
        sel = [p for p in pairs if p.module == group]
        with bypassed(graph, sel):
            err = output_error(graph, inputs, refs)
        rows[group] = {"weights": sum(p.kind == "weight" for p in sel), "activations": sum(p.kind == "activation" for p in sel),
                       "error": err, "share": 1.0 - err / base if base > 0 else 0.0}
    rows = dict(sorted(rows.items(), key=lambda kv: -kv[1]["share"]))
    steps, chosen = [], []
    for group in list(rows)[:cumulative]:
        chosen.append(group)
        with bypassed(graph, [p for p in pairs if p.module in chosen]):
            steps.append((group, output_error(graph, inputs, refs)))
    return Sensitivity(base, rows, steps)
