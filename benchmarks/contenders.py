"""The models the speed suite compares: the RCF teachers, built from their architecture, and the students.

A user's clone has no trained teacher (``runs/`` and ``exports/`` are the training
machine's), so the teacher is made here from the training code: RCF and the
50 %-pruned RCF, exported to fp32 TFLite and TorchScript exactly as
``python -m convert export`` exports a checkpoint. Latency and memory do not depend
on the weight values, only on the architecture and the file format, so the weights
are the shared HED VGG16 (RCF's initialisation in training) when ``../shared`` holds
it, and a seed-0 initialisation otherwise; the report says which.

Exports are cached under ``.cache/bench-teachers/`` (git-ignored), in a folder named
by a key of everything that decides the files: the source of the model, pruning and
conversion code, the torch and litert-torch versions, the buckets and the weights.
Changing any of them makes a new folder; a folder is used only once complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench-teachers"
# What decides the exported files besides the versions and the buckets.
SOURCES = ("training/models", "training/pruning.py", "training/checkpoint.py", "convert/deploy.py",
           "convert/tflite.py", "convert/torchscript.py", "edgesdk/runtime/metadata.py")
TEACHERS = ("rcf", "rcf-pruned")
PRUNE_RATIO = 0.5  # the article's pruned teacher: half the filters of every conv

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contender:
    """One model file the suite measures."""

    name: str  # as reported: "rcf-fp32", "model-int8", ...
    sidecar: Path
    role: str  # "teacher" or "student"


def _hed_weights() -> Optional[Path]:
    from training.paths import weights_path

    path = weights_path("hed_bsds500_vgg16.pth")
    return path if path.is_file() else None


def cache_key(buckets: Sequence[Tuple[int, int]]) -> str:
    """A digest of everything that decides the teacher files."""
    from importlib.metadata import version

    import torch

    h = hashlib.sha256()
    for rel in SOURCES:
        path = ROOT / rel
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(ROOT).as_posix().encode())
            h.update(f.read_bytes())
    hed = _hed_weights()
    h.update(json.dumps({"torch": torch.__version__, "litert-torch": version("litert-torch"),
                         "buckets": [list(b) for b in buckets], "prune_ratio": PRUNE_RATIO,
                         "weights": hed.stat().st_size if hed else "seed-0"}).encode())
    return h.hexdigest()[:16]


def build(architecture: str, vgg_weights: Optional[Path] = None):
    """The network of ``architecture`` (rcf, rcf-pruned, model, so-model), seed 0, in eval mode.

    ``vgg_weights`` (RCF's training initialisation, the shared HED VGG16) are loaded into an
    RCF before it is pruned. The one builder of the suite's networks: the teacher exports
    and the eager measurements (``eager_bench.py``) both use it.
    """
    import torch

    from training.models.rcf import RCF
    from training.models.student import MODEL, SO_MODEL, EdgeStudent
    from training.pruning import plan_pruning, prune_rcf

    torch.manual_seed(0)
    if architecture in ("rcf", "rcf-pruned"):
        model = RCF()
        if vgg_weights is not None:
            model.load_vgg(torch.load(vgg_weights, map_location="cpu", weights_only=True))
        if architecture == "rcf-pruned":
            model = prune_rcf(model, plan_pruning(model, PRUNE_RATIO))
    elif architecture in ("model", "so-model"):
        model = EdgeStudent(MODEL if architecture == "model" else SO_MODEL)
    else:
        raise ValueError(f"unknown architecture {architecture!r} (rcf, rcf-pruned, model, so-model)")
    return model.eval()


def teacher_exports(buckets: Sequence[Tuple[int, int]], cache: Path = CACHE) -> Tuple[List[Contender], str]:
    """The teachers' fp32 TFLite and TorchScript files (built once per cache key); returns them and the weights used."""
    from convert.export import file_info
    from convert.tflite import export_tflite
    from convert.torchscript import export_torchscript

    folder = Path(cache) / cache_key(buckets)
    done = folder / "DONE.json"
    if not done.is_file():
        if folder.exists():  # an interrupted build: start it again
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        weights = ""
        for kind in TEACHERS:
            hed = _hed_weights()
            model, weights = build(kind, hed), ("shared HED VGG16" if hed else "seed-0 initialisation")
            logger.info("exporting %s (%s) for the benchmark into %s", kind, weights, folder)
            for path in (export_tflite(model, folder / f"{kind}-fp32.tflite", buckets, int8=False, log=logger.info),
                         export_torchscript(model, folder / f"{kind}-torchscript.ts")):
                info = file_info(path, model, buckets, "fp32", training={"benchmark_only": True, "weights": weights})
                info.write(path.with_suffix(".json"))
        from edgesdk import io as fileio

        fileio.write_json(done, {"weights": weights, "buckets": [list(b) for b in buckets]})
    weights = json.loads(done.read_text())["weights"]
    teachers = [Contender(p.stem, p, "teacher") for kind in TEACHERS
                for p in (folder / f"{kind}-fp32.json", folder / f"{kind}-torchscript.json")]
    return teachers, weights


def bundled_students() -> List[Contender]:
    from edgesdk.runtime import list_models

    return [Contender(info.name, path.with_suffix(".json"), "student") for info, path in list_models()]
