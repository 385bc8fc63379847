"""Building models from configs, and saving/loading weights and resumable training state."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn

from edgesdk import io as fileio
from training.models.hed import HED
from training.models.rcf import RCF
from training.models.student import MODEL, SO_MODEL, EdgeStudent, StudentConfig
from training.models.vgg import VGG16_BLOCKS
from training.paths import REPO, weights_path

STUDENT_PRESETS = {"model": MODEL, "so-model": SO_MODEL}


def build_model(arch: Dict[str, Any]) -> nn.Module:
    """A model from its architecture record: ``{"kind": "rcf"|"hed"|"student", ...}``."""
    kind = arch["kind"]
    if isinstance(arch.get("pdc"), str):
        raise ValueError(f"pdc must be a list of kinds, one per conv, got the string {arch['pdc']!r}")
    if arch.get("pdc") and kind not in ("student", "rcf"):
        raise ValueError(f"pixel difference convolutions are built into students and RCF, not {kind!r}")
    if kind == "rcf":
        return RCF(arch.get("channels") or VGG16_BLOCKS, pdc=arch.get("pdc") or ())
    if kind == "hed":
        return HED(arch.get("channels", VGG16_BLOCKS))
    if kind == "student":
        if "student" in arch:
            return EdgeStudent(StudentConfig.from_dict(arch["student"]))
        preset = STUDENT_PRESETS[arch.get("preset", "model")]
        return EdgeStudent(dataclasses.replace(preset, pdc=tuple(arch.get("pdc") or ())))
    raise ValueError(f"unknown model kind {kind!r} (rcf, hed, student)")


def architecture(model: nn.Module, kind: str) -> Dict[str, Any]:
    """The record build_model() needs to rebuild `model` (widths included, e.g. after pruning)."""
    if isinstance(model, EdgeStudent):
        c = model.config
        return {
            "kind": "student",
            "student": {
                "stages": [[s.t, s.c, s.n, s.s] for s in c.stages],
                "side_stages": list(c.side_stages),
                "width": c.width,
                "dilations": list(c.dilations),
                "last_channels": c.last_channels,
                "pdc": list(c.pdc),
            },
        }
    record = {"kind": kind, "channels": [list(b) for b in model.channels] if hasattr(model, "channels") else None}
    if getattr(model, "pdc", None):
        record["pdc"] = list(model.pdc)
    return record


def build_for_init(spec: Dict[str, Any], init: Optional[str]) -> nn.Module:
    """The model a config asks for; when ``init`` is a saved model (e.g. a pruned RCF), its own architecture.

    A pruned model has fewer channels than the config's ``kind`` builds by
    default, so its recorded architecture wins.
    """
    if init:
        path = Path(init)
        if path.suffix == ".pt" and path.is_file():
            doc = torch.load(path, map_location="cpu", weights_only=True)
            if "arch" in doc:
                if doc["arch"].get("kind") != spec.get("kind"):
                    raise ValueError(f"{path}: holds a {doc['arch'].get('kind')!r} model, the config asks for {spec.get('kind')!r}")
                return build_model(doc["arch"])
    return build_model(spec)


def init_weights(model: nn.Module, init: Optional[str]) -> str:
    """Initialise from a shared weights file or a saved model; returns what was loaded."""
    if not init:
        return "random"
    path = Path(init)
    if not path.is_absolute() and not path.exists():
        path = weights_path(init)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: initial weights not found (see ../shared/weights/README.md)")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in sd:  # a model saved by save_model
        model.load_state_dict(sd["state_dict"])
        return f"{path.name} (all)"
    if isinstance(model, RCF):
        model.load_vgg(sd)
        return f"{path.name} (VGG16 convs)"
    if isinstance(model, HED):
        model.load_hed_weights(sd)
        return f"{path.name} (all)"
    if isinstance(model, EdgeStudent):
        loaded = model.backbone.load_imagenet(sd)
        return f"{path.name} ({len(loaded)} MobileNetV2 tensors)"
    raise ValueError(f"cannot initialise {type(model).__name__} from {path}")


def save_model(path: Path, model: nn.Module, arch: Dict[str, Any], extra: Optional[Dict[str, Any]] = None) -> None:
    """Weights (on the CPU, whatever device trained them) plus what is needed to rebuild and feed the model."""
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    doc = {"arch": arch, "input": type(model).INPUT.as_dict(), "state_dict": weights, **(extra or {})}
    atomic_save(doc, path)


def load_model(path: Path) -> nn.Module:
    doc = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(doc["arch"])
    model.load_state_dict(doc["state_dict"])
    return model


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_bytes(path, lambda fh: torch.save(obj, fh))


def _flatten(doc: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def check_resume_config(path: Path, saved: Dict[str, Any], now: Dict[str, Any], free: Sequence[str],
                        defaults: Optional[Dict[str, Any]] = None) -> None:
    """Refuse to resume a checkpoint under settings other than those it was trained with.

    A learning-rate schedule is a function of the configured length, so
    resuming a 5000-iteration run with a config that says 4000 silently
    continues on another curve (it happened: runs/model-c4, 2026-11-26).
    ``free`` names the keys that may change (threads, logging, the device).
    ``defaults`` (the config's defaults) stands in for keys a checkpoint
    written before they existed lacks: such a run trained with the default.

    Raises
    ------
    ValueError naming the checkpoint, each changed key and both values.
    """
    a, b = {**_flatten(defaults or {}), **_flatten(saved)}, _flatten(now)
    changed = [k for k in sorted(set(a) | set(b)) if k not in free and a.get(k) != b.get(k)]
    if changed:
        diffs = "; ".join(f"{k}: {a.get(k)!r} in the checkpoint, {b.get(k)!r} now" for k in changed)
        sets = " ".join(f"{k}={a[k]!r}" for k in changed if k in a)
        raise ValueError(f"{path} was trained with other settings ({diffs}). Resume with the same ones "
                         f"(--set {sets}) or train into a new run folder")


def git_commit() -> str:
    """The repository's short commit (``-dirty`` with uncommitted changes).

    ``$EDGESDK_COMMIT``, when set, wins: a copy of the tree on another machine
    (a rented GPU, a container) may carry no ``.git`` or a stale one, and its
    runs must still say what code made them.
    """
    if os.environ.get("EDGESDK_COMMIT"):
        return os.environ["EDGESDK_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
