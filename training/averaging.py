"""Weight averaging of checkpoints that share an architecture and a starting point ("model soups")."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch


def normalised_weights(weights: Optional[Sequence[float]], n: int) -> List[float]:
    """`weights` (default uniform) scaled to sum to one; ValueError unless n non-negative numbers, sum > 0."""
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} state dicts")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {w}")
    return [x / sum(w) for x in w]


def average_state_dicts(state_dicts: Sequence[Mapping[str, torch.Tensor]],
                        weights: Optional[Sequence[float]] = None) -> Dict[str, torch.Tensor]:
    """The weighted mean of several state dicts, tensor by tensor.

    Parameters
    ----------
    state_dicts : the models' ``state_dict()``; same keys, shapes and dtypes.
    weights : one non-negative weight per state dict, not all zero (normalised
        here); default uniform.

    Returns
    -------
    A new state dict. Floating tensors (weights, biases, BatchNorm running
    statistics) are averaged in float64 and cast back to their dtype. Integer
    buffers (BatchNorm's ``num_batches_tracked``) are counters, not weights:
    they are taken from the first state dict.

    Raises
    ------
    ValueError when the state dicts disagree on keys, shapes or dtypes, or the
    weights are not one non-negative number per state dict with a positive sum.

    References
    ----------
    M. Wortsman et al., "Model soups: averaging weights of multiple fine-tuned
    models improves accuracy without increasing inference time", ICML 2022
    (the uniform soup). Averaging works for models fine-tuned from one starting
    point, which stay in one basin of the loss; it is meaningless for models
    trained independently from scratch.
    """
    if not state_dicts:
        raise ValueError("nothing to average: no state dicts given")
    w = normalised_weights(weights, len(state_dicts))
    first = state_dicts[0]
    for i, sd in enumerate(state_dicts[1:], start=1):
        if set(sd) != set(first):
            diff = sorted(set(sd) ^ set(first))
            raise ValueError(f"state dict {i} has other keys than state dict 0, e.g. {diff[:3]}")
        for k, v in sd.items():
            if v.shape != first[k].shape or v.dtype != first[k].dtype:
                raise ValueError(f"state dict {i}, {k}: {tuple(v.shape)} {v.dtype}, "
                                 f"state dict 0 has {tuple(first[k].shape)} {first[k].dtype}")
    out: Dict[str, torch.Tensor] = {}
    for k, v0 in first.items():
        if not v0.is_floating_point():
            out[k] = v0.clone()
            continue
        acc = torch.zeros(v0.shape, dtype=torch.float64)
        for wi, sd in zip(w, state_dicts):
            acc += wi * sd[k].detach().cpu().double()
        out[k] = acc.to(v0.dtype)
    return out


def average_checkpoints(paths: Sequence[Path], out: Path, weights: Optional[Sequence[float]] = None) -> Dict[str, Any]:
    """Average saved models (``save_model`` files of one architecture) into a new one at `out`.

    Returns the saved document without its weights. The document records its
    sources and weights, and no training config: it was not trained as one
    run, and a config would make it pass for one.

    Raises
    ------
    ValueError naming the file whose architecture or input differs from the
    first one's, or whose weights do not match it.
    """
    from training.checkpoint import atomic_save

    w = normalised_weights(weights, len(paths))  # before any file is read: a bad --weights fails at once
    docs: List[Dict[str, Any]] = []
    for p in paths:
        try:
            docs.append(torch.load(p, map_location="cpu", weights_only=True))
        except FileNotFoundError:
            raise
        except Exception as e:  # a truncated file or another format: say which file
            raise ValueError(f"{p}: not a readable torch file ({type(e).__name__}: {e})") from None
    for p, d in zip(paths, docs):
        if not isinstance(d, dict) or "state_dict" not in d or "arch" not in d:
            raise ValueError(f"{p}: not a saved model (no arch/state_dict); give the runs' model.pt files")
        if d["arch"] != docs[0]["arch"] or d.get("input") != docs[0].get("input"):
            raise ValueError(f"{p}: another architecture or input than {paths[0]}; only one model's checkpoints average")
    try:
        state = average_state_dicts([d["state_dict"] for d in docs], w)
    except ValueError as e:
        raise ValueError(f"{', '.join(map(str, paths))}: {e}") from None
    doc = {"arch": docs[0]["arch"], "input": docs[0].get("input"), "state_dict": state,
           "averaged_from": [str(p) for p in paths], "average_weights": w}
    atomic_save(doc, Path(out))
    return {k: v for k, v in doc.items() if k != "state_dict"}
