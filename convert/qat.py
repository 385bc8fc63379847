"""Quantisation-aware fine-tuning (QAT) for the int8 TFLite export.

Post-training quantisation (``convert.tflite.quantize_pt2e``) rounds weights
and activations that were never trained to be rounded; on the Model it costs
0.001-0.005 ODS. QAT fine-tunes the weights through simulated int8 (fake
quantisation of weights and activations, straight-through gradients) on the
training crops, so they settle where rounding hurts least; ``convert_pt2e``
then turns the same graph into the int8 graph the TFLite converter writes.

BatchNorm is folded into the convolutions first, with its running statistics,
and so stays frozen: the deployed network uses those statistics, a batch of 4
crops would estimate them worse, and the folded weights are then exactly what
gets rounded.

Reference: B. Jacob et al., "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference", CVPR 2018.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from convert.deploy import DeployModel
from edgesdk import io as fileio
from edgesdk.runtime.metadata import sha256_file

QAT_FORMAT = 1


class FoldedQATQuantizer(PT2EQuantizer):
    """litert-torch's PT2E quantizer for a network whose BatchNorms are already folded.

    Its conv+BN QAT annotators cannot match anything after folding, and on
    torch 2.13 they fail before matching (they hand torch.export a function
    instead of a module), so they are skipped; every other pattern (conv,
    conv+relu, add, cat, the sigmoid's fixed range ...) is annotated as for PTQ.
    """

    STATIC_QAT_ONLY_OPS: list = []


def qat_quantizer() -> FoldedQATQuantizer:
    """Per-channel symmetric int8 weights, per-tensor int8 activations: the PTQ scheme, with fake quantisers."""
    return FoldedQATQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=True))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every Conv2d -> BatchNorm2d pair of an nn.Sequential folded.

    The BatchNorm becomes nn.Identity and the convolution takes its scale and
    shift (running statistics), so the output is unchanged.

    Raises
    ------
    ValueError
        if a BatchNorm2d is left that does not follow a Conv2d in a Sequential.
    """
    folded = copy.deepcopy(model).eval()
    for mod in list(folded.modules()):
        if not isinstance(mod, nn.Sequential):
            continue
        names = list(mod._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = mod._modules[a], mod._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                mod._modules[a] = fuse_conv_bn_eval(conv, bn)
                mod._modules[b] = nn.Identity()
    left = [n for n, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if left:
        raise ValueError(f"cannot fold BatchNorm layers that do not follow a Conv2d in a Sequential: {left}")
    # fuse_conv_bn_eval gives a bias-free conv's new bias (the BatchNorm's shift) requires_grad=False;
    # it is a weight to fine-tune like any other.
    for p in folded.parameters():
        p.requires_grad_(True)
    return folded


def prepare_qat(model: nn.Module, crop: int = 320) -> torch.fx.GraphModule:
    """The deploy graph (NHWC in, probability out) of ``model`` with BatchNorm folded and fake quantisers inserted.

    Batch, height and width are dynamic (H, W multiples of 32, as the buckets
    are), so the graph trains on batches of crops and converts for every
    bucket. The example has batch 2 because torch.export specialises a size-1
    dimension.
    """
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    deploy = DeployModel(fold_batchnorm(model))
    b = torch.export.Dim("batch", min=1, max=64)
    h, w = torch.export.Dim("h", min=1, max=128), torch.export.Dim("w", min=1, max=128)
    example = torch.zeros(2, crop, crop, 3)
    graph = torch.export.export(deploy, (example,), dynamic_shapes=({0: b, 1: 32 * h, 2: 32 * w},), strict=True).module()
    return prepare_qat_pt2e(graph, qat_quantizer())


def set_observers(graph: torch.fx.GraphModule, on: bool) -> None:
    """Let the fake quantisers update their activation ranges (on) or keep them fixed (off)."""
    from torchao.quantization.pt2e import disable_observer, enable_observer

    graph.apply(enable_observer if on else disable_observer)


@dataclass
class QATConfig:
    """What a QAT run does; stored in its checkpoint and in the exported sidecar."""

    iterations: int = 800
    lr: float = 2e-5  # 2 % of the training lr: the weights only need to move by a few rounding steps
    batch: int = 4
    observe_fraction: float = 0.5  # activation ranges follow the weights for this fraction, then freeze
    weight_decay: float = 0.0
    seed: int = 0
    threads: int = 0
    workers: int = 1
    limit: int = 0  # first N training images only (tests)
    checkpoint_minutes: float = 5.0
    log_every: int = 10


def qat_lr_factor(cfg: QATConfig, it: int) -> float:
    """Cosine from 1 to 0 over the run (the weights start trained; no warm-up)."""
    return 0.5 * (1 + math.cos(math.pi * min(1.0, it / max(1, cfg.iterations))))


class QATRun:
    """Fine-tunes the fake-quantised deploy graph of a checkpoint; resumable like training runs.

    Files in ``out``: ``qat-checkpoint.pt`` (every few minutes and at a
    stop), ``qat.pt`` (the finished graph's state, what ``python -m convert
    export --qat`` reads) and ``qat.log``.
    """

    def __init__(self, ckpt: Path, out: Path, cfg: QATConfig, data_root: Path, log: Callable[[str], None] = print):
        from convert.deploy import load_deployable
        from training.config import from_dict
        from training.data import Augment, BsdsEdges

        self.ckpt, self.out, self.cfg, self._print = Path(ckpt), Path(out), cfg, log
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        doc = torch.load(self.ckpt, map_location="cpu", weights_only=True)
        model = load_deployable(self.ckpt)
        # The checkpoint's own training crops and augmentation, so QAT sees the distribution it was trained on.
        saved = {k: v for k, v in (doc.get("config") or {}).items() if k != "source"}
        d = from_dict(saved, str(self.ckpt)).data
        if d.crop % 32:
            raise ValueError(f"{self.ckpt}: crop {d.crop} is not a multiple of 32, which the deploy graph needs")
        self.dataset = BsdsEdges(
            data_root, d.splits, type(model).INPUT, eta=d.eta,
            augment=Augment(crop=d.crop, scales=tuple(d.scales), rotations=tuple(d.rotations), jitter_deg=d.jitter_deg),
            seed=cfg.seed, limit=cfg.limit,
        )
        self.graph = prepare_qat(model, d.crop)
        self.optimizer = torch.optim.AdamW(self.graph.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda it: qat_lr_factor(cfg, it))
        self.ckpt_sha256 = sha256_file(self.ckpt)
        self.iteration, self.wall_s = 0, 0.0

    def log(self, msg: str) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        fileio.append_text(self.out / "qat.log", line + "\n")
        self._print(line)

    def state(self) -> Dict:
        return {"format": QAT_FORMAT, "checkpoint": str(self.ckpt), "checkpoint_sha256": self.ckpt_sha256,
                "config": dataclasses.asdict(self.cfg), "iteration": self.iteration, "wall_s": self.wall_s,
                "graph": self.graph.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "torch_rng": torch.get_rng_state()}

    def save(self, name: str = "qat-checkpoint.pt") -> Path:
        from training.checkpoint import atomic_save

        path = self.out / name
        atomic_save(self.state(), path)
        return path

    def save_checkpoint(self) -> None:
        self.save()

    def resume(self) -> bool:
        from training.checkpoint import check_resume_config

        path = self.out / "qat-checkpoint.pt"
        if not path.is_file():
            return False
        st = torch.load(path, map_location="cpu", weights_only=True)
        if st["checkpoint_sha256"] != self.ckpt_sha256:
            raise ValueError(f"{path} fine-tunes {st['checkpoint']} with another content than {self.ckpt} has now")
        check_resume_config(path, st["config"], dataclasses.asdict(self.cfg), ("threads", "workers", "log_every", "checkpoint_minutes"))
        self.graph.load_state_dict(st["graph"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["torch_rng"])
        self.iteration, self.wall_s = int(st["iteration"]), float(st["wall_s"])
        self.log(f"resumed at iteration {self.iteration}")
        return True

    def step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        from training.losses import balanced_bce_on_probabilities

        set_observers(self.graph, self.iteration < self.cfg.observe_fraction * self.cfg.iterations)
        prob = self.graph(batch["image"].permute(0, 2, 3, 1).contiguous())  # NHWC, as deployed
        loss = balanced_bce_on_probabilities(prob.permute(0, 3, 1, 2), batch["label"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.iteration += 1
        return {"loss": loss.detach()}

    def fit(self, until: Optional[int] = None) -> bool:
        """Fine-tune to ``until`` (default: all iterations); True when finished (``qat.pt`` written)."""
        from training.train import batch_loader, run_steps

        cfg = self.cfg
        stop_at = min(until or cfg.iterations, cfg.iterations)
        loader = batch_loader(self.dataset, cfg.batch, cfg.seed, self.iteration, stop_at, cfg.workers)
        self.log(f"qat {self.ckpt}: iterations {self.iteration}->{stop_at}, batch {cfg.batch}, lr {cfg.lr:g}, "
                 f"observers until {int(cfg.observe_fraction * cfg.iterations)}")
        if not run_steps(self, loader, stop_at, log_every=cfg.log_every, checkpoint_minutes=cfg.checkpoint_minutes,
                         lr=lambda: self.optimizer.param_groups[0]["lr"]):
            return False
        self.save()
        if self.iteration < cfg.iterations:
            return False
        path = self.save("qat.pt")
        self.log(f"finished {self.iteration} iterations in {self.wall_s / 60:.1f} min -> {path}")
        return True


def load_qat(model: nn.Module, path: Path, ckpt: Optional[Path] = None) -> Tuple[Tuple[torch.fx.GraphModule, Any], dict]:
    """(int8 graph, quantizer) of a finished QAT run of ``model`` (from ``qat.pt``), and the run's record.

    The pair is what ``export_tflite(..., quantized=...)`` takes.

    ``ckpt``, when given, must be the checkpoint the run fine-tuned (checked by sha256).
    """
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    st = torch.load(path, map_location="cpu", weights_only=True)
    if st.get("format") != QAT_FORMAT:
        raise ValueError(f"{path}: not a QAT state written by python -m convert qat")
    if ckpt is not None and sha256_file(Path(ckpt)) != st["checkpoint_sha256"]:
        raise ValueError(f"{path} fine-tuned {st['checkpoint']}, not {ckpt} (sha256 differs)")
    cfg = st["config"]
    if st["iteration"] < cfg["iterations"]:
        raise ValueError(f"{path}: QAT stopped at iteration {st['iteration']} of {cfg['iterations']}")
    graph = prepare_qat(model)
    graph.load_state_dict(st["graph"])
    converted = move_exported_model_to_eval(convert_pt2e(graph, fold_quantize=False))
    record = {"method": "qat", "file": str(path), "iterations": st["iteration"], "lr": cfg["lr"], "batch": cfg["batch"],
              "observe_fraction": cfg["observe_fraction"], "minutes": round(st["wall_s"] / 60, 1)}
    return (converted, qat_quantizer()), record
