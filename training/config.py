"""Training configuration: TOML files read into typed sections (unknown keys are errors)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 0
    iterations: int = 1000
    batch: int = 4
    checkpoint_minutes: float = 5.0
    log_every: int = 10
    bf16: bool = True  # autocast to bfloat16 where the device supports it
    device: str = "auto"  # cpu | cuda | cuda:N | auto (cuda when torch sees one)
    threads: int = 0  # torch intra-op threads (0: default)
    workers: int = 1  # data-loader processes


@dataclass
class ModelConfig:
    kind: str = "student"  # rcf | hed | student
    preset: str = "model"  # student: model | so-model
    init: str = ""  # shared weights name (../shared/weights/...) or a saved model path
    backbone_lr_mult: float = 1.0  # learning-rate factor of the pretrained backbone
    # Pixel difference kinds (training/models/pdc.py) of a student's first inverted-residual blocks'
    # depthwise convs, or of RCF's first VGG convs, e.g. ["cv+cd", "cv+ad", "cv+rd"]; empty: plain convs.
    pdc: List[str] = field(default_factory=list)


@dataclass
class DataConfig:
    splits: List[str] = field(default_factory=lambda: ["train", "val"])
    crop: int = 320
    eta: float = 0.5
    # "eta": RCF's label rule (edge above eta, ignored in between); "agreement": the ground-truth term's
    # target is the fraction of annotators marking each pixel (training.losses.agreement_bce).
    labels: str = "eta"
    scales: Tuple[float, float] = (0.75, 1.25)
    rotations: List[float] = field(default_factory=lambda: [0.0, 90.0, 180.0, 270.0])
    jitter_deg: float = 15.0
    limit: int = 0  # use only the first N images (tests)


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | sgd
    lr: float = 1e-4
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup: int = 50
    schedule: str = "cosine"  # cosine | constant


@dataclass
class LossConfig:
    kind: str = "rcf"  # rcf | hinton | adaptor | hinton+adaptor
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the distillation term against the ground-truth term
    # Weigh the KD term's pixels with RCF's class balance (as the ground-truth term is); off: every pixel 1.
    kd_balance: bool = False
    adaptor_lambda: float = 1e4
    # Weight of the Dice term (training.losses.dice_loss, fused and side outputs) added to the total; 0: off.
    # Our BCE is summed over pixels; at 1000 the Dice sum (about 15 over the six outputs of the bundled
    # student on 320-pixel crops) weighs about as much as the rest of the loss (about 1.6e4).
    dice_weight: float = 0.0
    # CATS' tracing terms (training.losses.boundary_tracing_loss, texture_suppression_loss), each added to the
    # total with its weight on the fused output and on every side output; 0: off. CATS trained BSDS500 with
    # boundary 4 / texture 0.02 on its fused output and 1-2 / 0.05-0.1 on its sides.
    boundary_weight: float = 0.0
    texture_weight: float = 0.0
    side_boundary_weight: float = 0.0
    side_texture_weight: float = 0.0
    tracing_radius: int = 2


@dataclass
class TeacherConfig:
    cache: str = ""  # folder written by `python -m training cache-teacher`
    feature_channels: int = 512


@dataclass
class EvalConfig:
    split: str = "val"
    thresholds: int = 99
    limit: int = 0


@dataclass
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    source: Optional[str] = None  # the file it came from

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _section(cls, values: Dict[str, Any], where: str):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(names)})")
    kwargs = {}
    for k, v in values.items():
        kind = names[k].type
        # A mistyped value would pass silently: the string "false" is truthy.
        expected = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}.get(kind)
        if expected and (not isinstance(v, expected) or (kind != "bool" and isinstance(v, bool))):
            raise ValueError(f"{where}: {k} must be {kind}, got {v!r}")
        kwargs[k] = tuple(v) if kind.startswith("Tuple") else v
    return cls(**kwargs)


def from_dict(doc: Dict[str, Any], where: str = "config") -> TrainConfig:
    sections = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name != "source"}
    unknown = sorted(set(doc) - set(sections))
    if unknown:
        raise ValueError(f"{where}: unknown sections {unknown} (known: {sorted(sections)})")
    kwargs = {}
    for name, f in sections.items():
        cls = f.default_factory().__class__  # type: ignore[misc]
        kwargs[name] = _section(cls, doc.get(name, {}), f"{where} [{name}]")
    return TrainConfig(**kwargs)


def load_config(path: Path, overrides: Optional[Dict[str, Any]] = None) -> TrainConfig:
    """Read a TOML config; `overrides` maps "section.key" to values (from the command line)."""
    path = Path(path)
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        doc.setdefault(section, {})[key] = value
    cfg = from_dict(doc, str(path))
    cfg.source = str(path)
    return cfg
