"""The training loop: config in, checkpoints, a log and a saved model out (the CLI adds the results row).

Resumable exactly: batch k of rank r is a pure function of (seed, k, r), and the
checkpoint holds the model, adaptor, optimizer, scheduler and RNG state at an
iteration boundary. Data-parallel over processes with torchrun (gloo on CPU).
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Protocol, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from edgesdk import io as fileio
from training.checkpoint import (
    architecture,
    atomic_save,
    build_for_init,
    check_resume_config,
    git_commit,
    init_weights,
    save_model,
)
from training.config import TrainConfig
from training.data import Augment, BsdsEdges
from training.losses import (KnowledgeAdaptor, agreement_bce, balance_weights, boundary_tracing_loss, deep_supervision,
                             dice_loss, hinton_kd, teacher_logits, texture_suppression_loss)
from training.paths import bsds500_dir

# Settings a resumed run may change: where and how fast it runs, how it logs, where it is evaluated.
RESUMABLE_CHANGES = ("source", "run.name", "run.threads", "run.workers", "run.device", "run.log_every",
                     "run.checkpoint_minutes", "eval.split", "eval.thresholds", "eval.limit")


def bf16_available() -> bool:
    """CPU bfloat16 autocast is worth it only with native bf16 instructions (AVX512-BF16/AMX)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch
        return False


def resolve_device(name: str) -> torch.device:
    """The device a run asks for: ``cpu``, ``cuda[:N]``, or ``auto`` (a GPU when torch sees one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run.device = {name!r}, but this torch sees no CUDA device (torch {torch.__version__})")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"run.device = {name!r}: expected cpu, cuda, cuda:N or auto")
    return device


def bf16_autocast_available(device: torch.device) -> bool:
    """bfloat16 autocast pays on CPUs with native bf16 instructions and on GPUs that have bf16 (Ampere on)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bf16_available()


def memory_format_for(model: nn.Module) -> torch.memory_format:
    """channels_last for the VGG models (dense convs, ~2x faster on oneDNN); NCHW for students.

    torch 2.13 CPU crashes (SIGSEGV) in the backward pass of a depthwise conv
    with dilation 8 under bf16 autocast in channels_last (repro: 16 channels,
    160x160, nn.Conv2d(16, 16, 3, padding=8, dilation=8, groups=16)); a
    student's stride-2 SEM hits exactly that. NCHW costs the students ~10 %.
    """
    from training.models.student import EdgeStudent

    return torch.contiguous_format if isinstance(model, EdgeStudent) else torch.channels_last


class BatchStream(Sampler):
    """Batches of (epoch, index) keys for iterations [start, stop) of one rank.

    The global sample stream walks a fresh seeded permutation each epoch;
    iteration k of rank r takes positions k*B*W + r*B ... + B - 1.
    """

    def __init__(self, n: int, batch: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        self.n, self.batch, self.seed, self.start, self.stop, self.rank, self.world = n, batch, seed, start, stop, rank, world
        self._perms: Dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch, 7]).permutation(self.n)}
        return self._perms[epoch]

    def keys(self, iteration: int) -> List[Tuple[int, int]]:
        base = (iteration * self.world + self.rank) * self.batch
        out = []
        for p in range(base, base + self.batch):
            epoch, pos = divmod(p, self.n)
            out.append((epoch, int(self._perm(epoch)[pos])))
        return out

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        for k in range(self.start, self.stop):
            yield self.keys(k)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def loader_worker_ignores_sigterm(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: leave SIGTERM to the training process.

    A job scheduler (Slurm, systemd, Kubernetes, ``kill -- -PGID``) signals
    every process of the job. A worker killed by it would take the trainer
    down with "DataLoader worker ... is killed" before the trainer could
    checkpoint; ignoring it, the worker lives until the trainer has saved and
    shuts its loader down.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class KeyedDataset(torch.utils.data.Dataset):
    """Adapts BsdsEdges to (epoch, index) keys."""

    def __init__(self, base: BsdsEdges):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: Tuple[int, int]):
        epoch, idx = key
        self.base.set_epoch(epoch)
        return self.base[idx]


def batch_loader(dataset: BsdsEdges, batch: int, seed: int, start: int, stop: int, workers: int,
                 rank: int = 0, world: int = 1, pin_memory: bool = False) -> DataLoader:
    """The batches of iterations [start, stop) of one rank (BatchStream), loaded by ``workers`` processes.

    ``pin_memory`` (for a GPU run) lets the host-to-device copy overlap the step.
    """
    return DataLoader(
        KeyedDataset(dataset),
        batch_sampler=BatchStream(len(dataset), batch, seed, start, stop, rank, world),
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=2 if workers else None,
        worker_init_fn=loader_worker_ignores_sigterm,
        pin_memory=pin_memory,
    )


class SteppedJob(Protocol):
    """What run_steps drives: the trainer, a QAT run."""

    iteration: int
    wall_s: float

    def step(self, batch: Dict[str, torch.Tensor]) -> Mapping[str, torch.Tensor]: ...

    def save_checkpoint(self) -> None: ...

    def log(self, msg: str) -> None: ...


def run_steps(job: SteppedJob, loader: Iterable[Dict[str, torch.Tensor]], stop_at: int, *, log_every: int,
              checkpoint_minutes: float, lr: Callable[[], float],
              stop_requested: Callable[[bool], bool] = bool, on_step: Callable[[], None] = lambda: None) -> bool:
    """Step ``job`` through ``loader`` (the batches of its iterations up to ``stop_at``).

    Wall time (data waits included) adds up in ``job.wall_s``; every ``log_every``
    iterations, and at ``stop_at``, a line ``it N <loss parts> lr X`` is logged; a
    checkpoint is saved every ``checkpoint_minutes``. SIGTERM (a job scheduler,
    ``kill``) does not kill the process: it asks for a stop, honoured at the next
    iteration boundary with a checkpoint. ``stop_requested`` turns this process's
    request into the decision (data-parallel ranks must all stop at the same step).

    Returns True when the loader is exhausted, False when stopped by the signal.
    """
    requested = False

    def on_sigterm(signum, frame) -> None:
        nonlocal requested
        requested = True

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    last_ckpt, t_prev = time.monotonic(), time.perf_counter()
    try:
        for batch in loader:
            parts = job.step(batch)
            now = time.perf_counter()
            job.wall_s, t_prev = job.wall_s + now - t_prev, now
            on_step()
            if job.iteration % log_every == 0 or job.iteration == stop_at:
                job.log(f"it {job.iteration} " + " ".join(f"{k} {float(v):.4g}" for k, v in parts.items()) + f" lr {lr():.3g}")
            if stop_requested(requested):
                job.save_checkpoint()
                job.log("stopped by signal; resume with --resume")
                return False
            if time.monotonic() - last_ckpt > 60 * checkpoint_minutes:
                job.save_checkpoint()
                last_ckpt = time.monotonic()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return True


def make_optimizer(cfg: TrainConfig, model: nn.Module, extra: List[nn.Parameter]) -> torch.optim.Optimizer:
    # backbone_lr_mult slows the pretrained backbone; the difference terms a pixel difference conv adds
    # beside pretrained weights (training/models/pdc.py: "weight_<kind>", zero at the start) are new.
    def pretrained(name: str) -> bool:
        return name.startswith("backbone.") and ".weight_" not in name

    backbone = [p for n, p in model.named_parameters() if pretrained(n)]
    heads = [p for n, p in model.named_parameters() if not pretrained(n)] + extra
    groups = [
        {"params": backbone, "lr": cfg.optim.lr * cfg.model.backbone_lr_mult},
        {"params": heads, "lr": cfg.optim.lr},
    ]
    if cfg.optim.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    if cfg.optim.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.optim.lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optim.name!r} (adamw, sgd)")


def lr_factor(cfg: TrainConfig, it: int) -> float:
    warm = cfg.optim.warmup
    if it < warm:
        return (it + 1) / warm
    if cfg.optim.schedule == "constant":
        return 1.0
    if cfg.optim.schedule == "cosine":
        span = max(1, cfg.run.iterations - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (it - warm) / span)))
    raise ValueError(f"unknown schedule {cfg.optim.schedule!r} (cosine, constant)")


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: Path, data_root: Optional[Path] = None):
        self.cfg, self.out = cfg, Path(out_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        torch.manual_seed(cfg.run.seed)
        self.device = resolve_device(cfg.run.device)
        self.use_bf16 = cfg.run.bf16 and bf16_autocast_available(self.device)
        self.model = build_for_init({"kind": cfg.model.kind, "preset": cfg.model.preset, "pdc": cfg.model.pdc},
                                    cfg.model.init)
        self.init_note = init_weights(self.model, cfg.model.init)
        self.arch = architecture(self.model, cfg.model.kind)
        self.memory_format = memory_format_for(self.model)
        self.model = self.model.to(self.device, memory_format=self.memory_format)
        kinds = set(cfg.loss.kind.split("+"))
        unknown = kinds - {"rcf", "hinton", "adaptor"}
        if unknown:
            raise ValueError(f"unknown loss kinds {sorted(unknown)} (rcf, hinton, adaptor)")
        for key in ("dice_weight", "boundary_weight", "texture_weight", "side_boundary_weight", "side_texture_weight"):
            if not getattr(cfg.loss, key) >= 0:
                raise ValueError(f"loss.{key} must be >= 0 (0: no such term), got {getattr(cfg.loss, key)}")
        if cfg.data.labels not in ("eta", "agreement"):
            raise ValueError(f"data.labels must be 'eta' or 'agreement', got {cfg.data.labels!r}")
        if cfg.loss.tracing_radius < 1:
            raise ValueError(f"loss.tracing_radius must be >= 1, got {cfg.loss.tracing_radius}")
        self.kinds = kinds
        self.adaptor = None
        if "adaptor" in kinds:
            self.adaptor = KnowledgeAdaptor(self.model.feature_channels, cfg.teacher.feature_channels).to(self.device)
        needs_teacher = bool(kinds & {"hinton", "adaptor"})
        if needs_teacher and not cfg.teacher.cache:
            raise ValueError("distillation losses need [teacher] cache (python -m training cache-teacher)")
        d = cfg.data
        self.dataset = BsdsEdges(
            data_root or bsds500_dir(),
            d.splits,
            type(self.model).INPUT,
            eta=d.eta,
            augment=Augment(crop=d.crop, scales=tuple(d.scales), rotations=tuple(d.rotations), jitter_deg=d.jitter_deg),
            seed=cfg.run.seed,
            teacher_dir=Path(cfg.teacher.cache) if needs_teacher else None,
            limit=d.limit,
            agreement=d.labels == "agreement",
        )
        self.net: nn.Module = self.model
        if self.world > 1:
            # A student's 1280-channel feature conv feeds only the adaptor loss; without
            # it those parameters get no gradient and DDP must be told to expect that.
            self.net = nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=self.adaptor is None)
        extra = list(self.adaptor.parameters()) if self.adaptor else []
        self.optimizer = make_optimizer(cfg, self.model, extra)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda it: lr_factor(cfg, it))
        self.iteration = 0
        self.wall_s = 0.0
        # The code a run was started from (kept across resumes; the results row records it).
        self.commit = git_commit()

    # -- state -----------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def state(self) -> dict:
        return {
            "iteration": self.iteration,
            "wall_s": self.wall_s,
            "model": self.model.state_dict(),
            "adaptor": self.adaptor.state_dict() if self.adaptor else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "config": self.cfg.as_dict(),
            "arch": self.arch,
            "commit": self.commit,
        }

    def save_checkpoint(self) -> None:
        if self.rank == 0:
            atomic_save(self.state(), self.ckpt_path)
            self.log(f"checkpoint at iteration {self.iteration}")

    def resume(self) -> bool:
        if not self.ckpt_path.is_file():
            return False
        st = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        check_resume_config(self.ckpt_path, st["config"], self.cfg.as_dict(), RESUMABLE_CHANGES,
                            TrainConfig().as_dict())
        self.model.load_state_dict(st["model"])
        if self.adaptor is not None:
            self.adaptor.load_state_dict(st["adaptor"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["torch_rng"])
        self.iteration, self.wall_s = int(st["iteration"]), float(st["wall_s"])
        now, self.commit = self.commit, st.get("commit", self.commit)
        self.log(f"resumed at iteration {self.iteration} ({self.wall_s / 60:.1f} min trained), started at commit "
                 f"{self.commit}, now {now}")
        return True

    def log(self, msg: str) -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        fileio.append_text(self.out / "train.log", line + "\n")

    # -- one step --------------------------------------------------------------
    def losses(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        x = batch["image"].contiguous(memory_format=self.memory_format)
        label = batch["label"]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            out = self.net(x, with_features=self.adaptor is not None)
        if self.cfg.data.labels == "agreement":
            parts = {"gt": deep_supervision(out.fused, out.sides, batch["agreement"], loss=agreement_bce)}
        else:
            parts = {"gt": deep_supervision(out.fused, out.sides, label)}
        total = parts["gt"]
        if "hinton" in self.kinds:
            weight = balance_weights(label)[1] if self.cfg.loss.kd_balance else None
            parts["kd"] = hinton_kd(out.fused, teacher_logits(batch["teacher"]), self.cfg.loss.temperature, weight)
            a = self.cfg.loss.alpha
            total = (1 - a) * parts["gt"] + a * parts["kd"]
        if self.adaptor is not None:
            parts["adapt"] = self.adaptor.loss(out.features, batch["teacher_feat"])
            total = total + self.cfg.loss.adaptor_lambda * parts["adapt"]
        if self.cfg.loss.dice_weight:
            parts["dice"] = deep_supervision(out.fused, out.sides, label, loss=dice_loss)
            total = total + self.cfg.loss.dice_weight * parts["dice"]
        lc = self.cfg.loss
        for name, fn, w_fused, w_side in (
            ("boundary", boundary_tracing_loss, lc.boundary_weight, lc.side_boundary_weight),
            ("texture", texture_suppression_loss, lc.texture_weight, lc.side_texture_weight),
        ):
            if w_fused or w_side:
                parts[name] = w_fused * fn(out.fused, label, lc.tracing_radius) + w_side * sum(
                    (fn(side, label, lc.tracing_radius) for side in out.sides), torch.zeros((), device=label.device))
                total = total + parts[name]
        parts["total"] = total
        return parts

    def step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """One optimizer step; returns the detached loss parts (tensors: reading them waits for a GPU)."""
        self.net.train()
        parts = self.losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        if self.world > 1 and self.adaptor is not None:
            # The adaptor sits outside DDP: average its gradients by hand.
            for p in self.adaptor.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world
        self.optimizer.step()
        self.scheduler.step()
        self.iteration += 1
        return {k: v.detach() for k, v in parts.items()}

    # -- the loop --------------------------------------------------------------
    def loader(self, start: int, stop: int) -> DataLoader:
        return batch_loader(self.dataset, self.cfg.run.batch, self.cfg.run.seed, start, stop, self.cfg.run.workers,
                            self.rank, self.world, pin_memory=self.device.type == "cuda")

    def fit(self, until: Optional[int] = None, progress: bool = False) -> bool:
        """Train to `until` (default: the configured iterations); True if finished, False if stopped."""
        stop_at = min(until or self.cfg.run.iterations, self.cfg.run.iterations)
        from tqdm.auto import tqdm

        bar = tqdm(total=stop_at, initial=self.iteration, disable=not progress or self.rank != 0, desc=self.cfg.run.name)
        self.log(
            f"start {self.cfg.run.name}: iterations {self.iteration}->{stop_at}, batch {self.cfg.run.batch}x{self.world}, "
            f"device {self.device}, bf16 {self.use_bf16}, init {self.init_note}, commit {git_commit()}"
        )
        try:
            finished = run_steps(self, self.loader(self.iteration, stop_at), stop_at, log_every=self.cfg.run.log_every,
                                 checkpoint_minutes=self.cfg.run.checkpoint_minutes,
                                 lr=lambda: self.optimizer.param_groups[-1]["lr"], stop_requested=self._sync_stop,
                                 on_step=lambda: bar.update(1))
        finally:
            bar.close()
        if not finished:
            return False
        self.save_checkpoint()
        if self.world > 1:
            self.check_replicas()
        return self.iteration >= self.cfg.run.iterations

    def weights_digest(self) -> str:
        """sha256 of every parameter and buffer (bitwise; replicas must agree exactly)."""
        import hashlib

        h = hashlib.sha256()
        for name, t in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().contiguous().cpu().numpy().tobytes())
        return h.hexdigest()

    def check_replicas(self) -> None:
        """Fail loudly if data-parallel ranks drifted apart (they must hold identical weights).

        DDP keeps parameters equal by averaging gradients and copies rank 0's
        buffers (BatchNorm running statistics) to the others before each forward;
        after the last step each rank's buffers hold its own batch, so rank 0's
        are broadcast first: they are the ones saved.
        """
        for b in self.model.buffers():
            dist.broadcast(b, src=0)
        digests: List[Optional[str]] = [None] * self.world
        dist.all_gather_object(digests, self.weights_digest())
        if len(set(digests)) != 1:
            raise RuntimeError(f"data-parallel replicas differ after iteration {self.iteration}: {digests}")
        self.log(f"replicas identical on {self.world} ranks: weights sha256 {digests[0][:16]}")

    def _sync_stop(self, requested: bool) -> bool:
        """Stop when any rank was asked to (all ranks must leave the loop at the same step)."""
        if self.world == 1:
            return requested
        flag = torch.tensor([1.0 if requested else 0.0])
        dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def save_final(self) -> Path:
        path = self.out / "model.pt"
        if self.rank == 0:
            save_model(path, self.model, self.arch, {"config": self.cfg.as_dict(), "iterations": self.iteration,
                                                     "wall_s": self.wall_s, "commit": self.commit})
            fileio.write_json(self.out / "config.json", self.cfg.as_dict())
        return path
