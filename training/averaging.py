"""Weight averaging of checkpoints that share an architecture and a starting point ("model soups")."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn


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


def recompute_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Re-estimate every BatchNorm's running statistics from forward passes over `batches`.

    An average of networks is a new network: the mean of its ingredients' running
    statistics is not the statistics of its own activations. Each BatchNorm's
    statistics are reset, then accumulated as the equal-weight mean over the
    batches (``momentum=None``) of each batch's mean and unbiased variance, in
    train mode and without gradients; the weights are not touched.

    Parameters
    ----------
    model : the network; left in the mode (train/eval) it came in.
    batches : input tensors, each as the model's forward takes it.

    Returns
    -------
    The number of batches seen (0: no BatchNorm, nothing run).

    References
    ----------
    P. Izmailov et al., "Averaging weights leads to wider optima and better
    generalization", UAI 2018 (SWA's BatchNorm update); it is
    ``torch.optim.swa_utils.update_bn``, used here.
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return 0
    it = iter(batches)
    first = next(it, None)
    if first is None:  # before update_bn resets anything: no data must not leave zeroed statistics
        raise ValueError("no batches to re-estimate BatchNorm statistics from")
    seen = 0

    def counted() -> Iterator[torch.Tensor]:
        nonlocal seen
        for x in itertools.chain([first], it):
            seen += 1
            yield x

    with torch.no_grad():
        torch.optim.swa_utils.update_bn(counted(), model)
    return seen


def training_crops(root: Path, spec, batches: int, batch: int, seed: int = 0,
                   splits: Sequence[str] = ("train", "val")) -> Iterator[torch.Tensor]:
    """`batches` batches of `batch` augmented training crops (the trainer's defaults), as model input.

    Deterministic for a seed: the images and their augmentations are drawn from it.
    """
    from training.data import Augment, BsdsEdges

    dataset = BsdsEdges(root, splits, spec, augment=Augment(), seed=seed)  # FileNotFoundError: no images there
    rng = np.random.default_rng(seed)
    for _ in range(batches):
        yield torch.stack([dataset[int(i)]["image"] for i in rng.integers(0, len(dataset), batch)])


def average_checkpoints(paths: Sequence[Path], out: Path, weights: Optional[Sequence[float]] = None,
                        bn_batches: int = 0, bn_batch: int = 8, data_root: Optional[Path] = None) -> Dict[str, Any]:
    """Average saved models (``save_model`` files of one architecture) into a new one at `out`.

    With ``bn_batches`` > 0, the average's BatchNorm statistics are then re-estimated
    (:func:`recompute_batchnorm`) on that many batches of ``bn_batch`` augmented
    BSDS500 train+val crops from ``data_root`` (default: the shared copy).

    Returns the saved document without its weights. The document records its
    sources and weights (and ``bn_recomputed``: how its statistics were
    re-estimated), and no training config: it was not trained as one run, and
    a config would make it pass for one.

    Raises
    ------
    ValueError naming the file whose architecture or input differs from the
    first one's, or whose weights do not match it.
    """
    from training.checkpoint import atomic_save

    w = normalised_weights(weights, len(paths))  # before any file is read: a bad --weights fails at once
    if bn_batches < 0 or bn_batch < 1:
        raise ValueError(f"BatchNorm re-estimation needs bn_batches >= 0 and bn_batch >= 1, got {bn_batches}, {bn_batch}")
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
    if bn_batches > 0:
        from training.checkpoint import build_model
        from training.paths import bsds500_dir

        model = build_model(doc["arch"])
        model.load_state_dict(state)
        root, splits, seed = Path(data_root or bsds500_dir()), ("train", "val"), 0
        seen = recompute_batchnorm(model, training_crops(root, type(model).INPUT, bn_batches, bn_batch, seed, splits))
        doc["state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        doc["bn_recomputed"] = {"batches": seen, "batch": bn_batch, "splits": list(splits), "seed": seed,
                                "data": str(root)}
    atomic_save(doc, Path(out))
    return {k: v for k, v in doc.items() if k != "state_dict"}
