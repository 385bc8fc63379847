"""Real optimisation on the bundled BSDS500 sample: loss goes down, resume is exact, SIGTERM checkpoints, DDP agrees.

The three bundled test images (examples/bsds500-sample) are laid out as a tiny
BSDS500 tree (train and test splits) so these tests run on a fresh clone
without the shared dataset or weights (students start from random weights).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need torch (pip install -e '.[dev]')")

from datasets import REPO, sample_bsds_tree  # noqa: E402
from training.config import from_dict  # noqa: E402
from training.train import Trainer  # noqa: E402



@pytest.fixture(scope="module")
def tiny_bsds(tmp_path_factory) -> Path:
    return sample_bsds_tree(tmp_path_factory.mktemp("bsds"), {"train": None, "test": None})


def tiny_config(**run):
    doc = {
        "run": {"name": "tiny", "iterations": 6, "batch": 2, "bf16": False, "workers": 0, "log_every": 1,
                "threads": 1, **run},
        "model": {"kind": "student", "preset": "so-model", "init": ""},
        "data": {"splits": ["train"], "crop": 96},
        "optim": {"lr": 1e-3, "warmup": 2},
        "eval": {"split": "test", "thresholds": 9},
    }
    return from_dict(doc)


def test_a_few_steps_reduce_the_loss(tiny_bsds, tmp_path):
    cfg = tiny_config()
    cfg.optim.schedule = "constant"
    trainer = Trainer(cfg, tmp_path / "run", data_root=tiny_bsds)
    # One fixed batch of three real images (with their augmentation), stepped on repeatedly.
    items = [trainer.dataset[i] for i in range(3)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    with torch.no_grad():
        before = float(trainer.losses(batch)["total"])
    for _ in range(15):
        trainer.step(batch)
    with torch.no_grad():
        after = float(trainer.losses(batch)["total"])
    assert after < 0.8 * before, (before, after)


def test_the_dice_term_enters_the_total_with_its_weight(tiny_bsds, tmp_path):
    cfg = tiny_config()
    trainer = Trainer(cfg, tmp_path / "plain", data_root=tiny_bsds)
    items = [trainer.dataset[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    cfg_dice = tiny_config()
    cfg_dice.loss.dice_weight = 250.0
    with_dice = Trainer(cfg_dice, tmp_path / "dice", data_root=tiny_bsds)
    with_dice.model.load_state_dict(trainer.model.state_dict())
    with torch.no_grad():
        plain, parts = trainer.losses(batch), with_dice.losses(batch)
    assert "dice" not in plain and float(parts["dice"]) > 0
    assert float(parts["gt"]) == pytest.approx(float(plain["gt"]), rel=1e-6)
    assert float(parts["total"]) == pytest.approx(float(plain["total"]) + 250.0 * float(parts["dice"]), rel=1e-6)
    cfg_dice.loss.dice_weight = -1.0
    with pytest.raises(ValueError, match="dice_weight"):
        Trainer(cfg_dice, tmp_path / "negative", data_root=tiny_bsds)


def test_the_tracing_terms_enter_the_total_with_their_weights(tiny_bsds, tmp_path):
    from training.losses import boundary_tracing_loss, texture_suppression_loss

    trainer = Trainer(tiny_config(), tmp_path / "plain", data_root=tiny_bsds)
    items = [trainer.dataset[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    cfg = tiny_config()
    cfg.loss.boundary_weight, cfg.loss.side_boundary_weight = 4.0, 2.0
    cfg.loss.texture_weight, cfg.loss.side_texture_weight = 0.02, 0.1
    cats = Trainer(cfg, tmp_path / "cats", data_root=tiny_bsds)
    cats.model.load_state_dict(trainer.model.state_dict())
    with torch.no_grad():
        plain, parts = trainer.losses(batch), cats.losses(batch)
        cats.net.train()
        out = cats.net(batch["image"])
    label = batch["label"]
    boundary = 4.0 * boundary_tracing_loss(out.fused, label) + 2.0 * sum(boundary_tracing_loss(s, label) for s in out.sides)
    texture = 0.02 * texture_suppression_loss(out.fused, label) + 0.1 * sum(
        texture_suppression_loss(s, label) for s in out.sides)
    assert len(out.sides) == 4 and float(boundary) > 0 and float(texture) > 0
    assert float(parts["boundary"]) == pytest.approx(float(boundary), rel=1e-5)
    assert float(parts["texture"]) == pytest.approx(float(texture), rel=1e-5)
    assert float(parts["total"]) == pytest.approx(float(plain["total"]) + float(boundary) + float(texture), rel=1e-5)
    for key, value in (("side_texture_weight", -0.1), ("tracing_radius", 0)):
        bad = tiny_config()
        setattr(bad.loss, key, value)
        with pytest.raises(ValueError, match=key):
            Trainer(bad, tmp_path / key, data_root=tiny_bsds)


def test_agreement_labels_give_each_pixel_its_annotators_fraction(tiny_bsds, tmp_path):
    from training.losses import agreement_bce, deep_supervision

    cfg = tiny_config()
    cfg.data.labels, cfg.data.eta = "agreement", 0.3
    cfg.data.crop = 512  # larger than the 481x321 images: every crop holds pixels from outside them
    trainer = Trainer(cfg, tmp_path / "agree", data_root=tiny_bsds)
    items = [trainer.dataset[i] for i in range(3)]
    for it in items:
        a, label = it["agreement"][0].numpy(), it["label"][0].numpy()
        inside = a >= 0
        assert inside.any() and (~inside).any()
        assert np.all(label[~inside] == 2)  # those are ignored by the eta label as well
        # Where the eta rule calls a pixel an edge, more than eta of the annotators marked it; a
        # non-edge none of them did. Fractions lie in [0, 1] and take values between (soft labels).
        assert np.all(a[label == 1] > 0.3) and np.all(a[label == 0] == 0.0) and a.max() <= 1.0
        assert np.any((a > 0) & (a < 1))
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    with torch.no_grad():
        parts = trainer.losses(batch)
        trainer.net.train()
        out = trainer.net(batch["image"])
    expected = deep_supervision(out.fused, out.sides, batch["agreement"], loss=agreement_bce)
    assert float(parts["gt"]) == pytest.approx(float(expected), rel=1e-5)
    bad = tiny_config()
    bad.data.labels = "mean"
    with pytest.raises(ValueError, match="data.labels"):
        Trainer(bad, tmp_path / "bad", data_root=tiny_bsds)


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_bsds, tmp_path):
    straight = Trainer(tiny_config(), tmp_path / "straight", data_root=tiny_bsds)
    assert straight.fit()
    first = Trainer(tiny_config(), tmp_path / "interrupted", data_root=tiny_bsds)
    assert not first.fit(until=3)
    assert first.iteration == 3
    del first
    second = Trainer(tiny_config(), tmp_path / "interrupted", data_root=tiny_bsds)
    assert second.resume()
    assert second.iteration == 3
    assert second.fit()
    a, b = _weights(straight), _weights(second)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # The optimizer state went through the checkpoint too.
    sa, sb = straight.optimizer.state_dict()["state"], second.optimizer.state_dict()["state"]
    for k in sa:
        assert torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]), k


def _write_config(path: Path, iterations: int, workers: int = 0) -> Path:
    path.write_text(
        f"""
[run]
name = "tiny-cli"
iterations = {iterations}
batch = 2
bf16 = false
workers = {workers}
log_every = 1
threads = 1
checkpoint_minutes = 60

[model]
kind = "student"
preset = "so-model"

[data]
splits = ["train"]
crop = 96

[optim]
lr = 1e-3
warmup = 2

[eval]
split = "test"
thresholds = 9
"""
    )
    return path


def _env(tiny_bsds):
    env = dict(os.environ, EDGESDK_BSDS500=str(tiny_bsds), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def test_cli_train_evaluates_and_records_a_results_row(tiny_bsds, tmp_path):
    cfg = _write_config(tmp_path / "tiny.toml", iterations=3)
    results = tmp_path / "RESULTS.md"
    out = subprocess.run(
        [sys.executable, "-m", "training", "train", "--config", str(cfg), "--out", str(tmp_path / "run"),
         "--results", str(results), "--notes", "ci"],
        env=_env(tiny_bsds), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    m = re.search(r"test: ODS (\d\.\d+) OIS (\d\.\d+) AP (\d\.\d+) \(3 images\)", out.stdout)
    assert m, out.stdout
    ods, ois = float(m.group(1)), float(m.group(2))
    assert 0.0 < ods <= ois <= 1.0
    assert (tmp_path / "run" / "model.pt").is_file()
    # The row goes into the run's folder, and into a shared file only when one is named.
    for path in (tmp_path / "run" / "results.md", results):
        row = [line for line in path.read_text().splitlines() if "tiny-cli" in line]
        assert len(row) == 1 and f"{ods:.4f}" in row[0] and "ci" in row[0]
    assert not (REPO / "training" / "RESULTS.md").exists()


def test_repeated_set_options_all_apply():
    # argparse's plain nargs list kept only the last --set: "--set a --set b" silently dropped a.
    from training.__main__ import _parse_set, build_parser

    args = build_parser().parse_args(["train", "--config", "c.toml", "--set", "run.seed=3", "run.bf16=false",
                                      "--set", "model.pdc=['cd']"])
    assert _parse_set(args.set) == {"run.seed": 3, "run.bf16": False, "model.pdc": ["cd"]}


# A job scheduler (Slurm, systemd, Kubernetes) sends SIGTERM to every process of the job, data-loader
# workers included; the trainer must still be the one that stops, and it must checkpoint first.
@pytest.mark.parametrize("workers,to_group", [(0, False), (1, True)], ids=["trainer", "process-group-with-worker"])
def test_sigterm_writes_a_checkpoint_and_resume_finishes(tiny_bsds, tmp_path, workers, to_group):
    cfg = _write_config(tmp_path / "tiny.toml", iterations=10_000, workers=workers)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "training", "train", "--config", str(cfg), "--out", str(run), "--no-eval"],
        env=_env(tiny_bsds), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    log = run / "train.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (log.is_file() and re.search(r"\bit 2\b", log.read_text())):
        time.sleep(0.2)
    if to_group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "stopped at iteration" in stdout
    assert "stopped by signal" in log.read_text()
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    stopped = ckpt["iteration"]
    assert stopped >= 2
    out = subprocess.run(
        [sys.executable, "-m", "training", "train", "--config", str(cfg), "--out", str(run), "--no-eval", "--resume",
         "--until", str(stopped + 2)],
        env=_env(tiny_bsds), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert f"resumed at iteration {stopped}" in log.read_text()
    assert torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["iteration"] == stopped + 2


def test_torchrun_two_processes_keep_identical_weights(tiny_bsds, tmp_path):
    cfg = _write_config(tmp_path / "tiny.toml", iterations=3)
    run = tmp_path / "ddp"
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "training", "train", "--config", str(cfg), "--out", str(run), "--no-eval"],
        env=_env(tiny_bsds), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    log = (run / "train.log").read_text()
    assert "batch 2x2" in log  # two ranks, each with its own batch
    assert re.search(r"replicas identical on 2 ranks: weights sha256 [0-9a-f]{16}", log), log


def test_device_choice_is_checked_and_auto_falls_back_to_the_cpu():
    from training.train import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="expected cpu, cuda"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            resolve_device("cuda")


def test_saved_models_hold_cpu_tensors_and_name_the_commit_given(tiny_bsds, tmp_path, monkeypatch):
    # A run on another machine (a GPU lease) reports the commit it was told, not its copy's stale .git.
    monkeypatch.setenv("EDGESDK_COMMIT", "abc1234")
    trainer = Trainer(tiny_config(iterations=1, device="auto"), tmp_path / "run", data_root=tiny_bsds)
    assert trainer.fit()
    doc = torch.load(trainer.save_final(), map_location="meta", weights_only=True)
    assert doc["commit"] == "abc1234"
    st = torch.load(tmp_path / "run" / "model.pt", weights_only=True)  # no map_location: as saved
    assert {t.device.type for t in st["state_dict"].values()} == {"cpu"}


def test_resume_refuses_a_config_that_changes_the_schedule(tiny_bsds, tmp_path):
    first = Trainer(tiny_config(), tmp_path / "run", data_root=tiny_bsds)
    assert not first.fit(until=2)
    longer = tiny_config()
    longer.run.iterations += 4  # another cosine curve from the same checkpoint
    with pytest.raises(ValueError, match=r"checkpoint\.pt was trained with other settings \(run\.iterations: \d+ in the "
                                         r"checkpoint, \d+ now\)\. Resume with the same ones \(--set run\.iterations="):
        Trainer(longer, tmp_path / "run", data_root=tiny_bsds).resume()
    # Where and how it runs may change.
    moved = tiny_config()
    moved.run.threads, moved.run.log_every = 2, 7
    assert Trainer(moved, tmp_path / "run", data_root=tiny_bsds).resume()
    # A checkpoint written before a setting existed trained with its default: it resumes under the
    # default, and refuses another value.
    st = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    del st["config"]["model"]["pdc"], st["config"]["loss"]["boundary_weight"]
    torch.save(st, tmp_path / "run" / "checkpoint.pt")
    assert Trainer(tiny_config(), tmp_path / "run", data_root=tiny_bsds).resume()
    newer = tiny_config()
    newer.loss.boundary_weight = 4.0
    with pytest.raises(ValueError, match=r"loss\.boundary_weight: 0\.0 in the checkpoint, 4\.0 now"):
        Trainer(newer, tmp_path / "run", data_root=tiny_bsds).resume()
