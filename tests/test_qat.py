"""Quantisation-aware fine-tuning: BatchNorm folding, learning through fake quantisation, exact resume, and an
int8 TFLite that computes what the fine-tuned graph simulated.

A random-weight student (a fresh clone has no trained checkpoint) on the
bundled BSDS500 sample laid out as a tiny training tree.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="QAT needs torch (pip install -e '.[dev]')")
pytest.importorskip("litert_torch", reason="QAT needs litert-torch (pip install -e '.[dev]')")

from convert.__main__ import main as convert_main  # noqa: E402
from convert.deploy import DeployModel  # noqa: E402
from convert.qat import QATConfig, QATRun, set_observers, fold_batchnorm, load_qat, prepare_qat  # noqa: E402
from convert.tflite import bucket_name, export_tflite  # noqa: E402
from datasets import sample_bsds_tree  # noqa: E402
from edgesdk.runtime import load  # noqa: E402
from edgesdk.runtime.metadata import Bucket, InputNorm, ModelInfo, sha256_file  # noqa: E402
from training.checkpoint import architecture, save_model  # noqa: E402
from training.config import from_dict  # noqa: E402
from training.losses import balanced_bce_on_probabilities  # noqa: E402
from networks import random_student  # noqa: E402

SIZE = (96, 128)


def _student(seed: int = 0):
    return random_student(seed, affine=True)  # random BatchNorm scales too, so folding has something to fold


@pytest.fixture(scope="module")
def tiny_bsds(tmp_path_factory):
    return sample_bsds_tree(tmp_path_factory.mktemp("bsds"), {"train": None})


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    model = _student()
    cfg = from_dict({"model": {"kind": "student", "preset": "so-model"}, "data": {"splits": ["train"], "crop": 96}})
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_model(path, model, architecture(model, "student"), {"config": cfg.as_dict(), "iterations": 0})
    return path


def _cfg(**kw) -> QATConfig:
    return QATConfig(**{"iterations": 4, "batch": 2, "threads": 1, "workers": 0, "log_every": 1, **kw})


def _quiet(msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def straight(ckpt, tiny_bsds, tmp_path_factory):
    run = QATRun(ckpt, tmp_path_factory.mktemp("qat") / "straight", _cfg(), tiny_bsds, log=_quiet)
    assert run.fit()
    return run


def test_fold_batchnorm_keeps_the_output_and_leaves_no_batchnorm():
    model = _student()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert all(p.requires_grad for p in folded.parameters())  # the BatchNorm shift, now a conv bias, included
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(folded(x).fused, model(x).fused, atol=1e-4, rtol=1e-4)


def test_fold_batchnorm_refuses_a_batchnorm_without_its_conv():
    lone = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match="cannot fold"):
        fold_batchnorm(lone)


def test_fake_quantised_graph_stays_close_to_the_float_network():
    model = _student()
    graph = prepare_qat(model, crop=64)
    x = torch.randn(2, 64, 96, 3)
    with torch.no_grad():
        graph(x)  # observers see the activations once
        set_observers(graph, False)
        got = graph(x)
        ref = DeployModel(model)(x)
    d = (got - ref).abs()
    # The PTQ export's bound against the eager network (test_convert): int8 moves a probability a few 1/256 steps.
    assert d.mean() < 0.01 and d.max() < 0.08, (float(d.mean()), float(d.max()))
    assert not torch.equal(got, ref)  # it does simulate rounding


def test_every_weight_learns_through_fake_quantisation(ckpt, tiny_bsds, tmp_path):
    run = QATRun(ckpt, tmp_path / "run", _cfg(iterations=10_000, lr=1e-3), tiny_bsds, log=_quiet)
    items = [run.dataset[i] for i in range(3)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    x = batch["image"].permute(0, 2, 3, 1).contiguous()
    with torch.no_grad():
        run.graph(x)  # activation ranges observed once, so the loss below is that of a calibrated graph

    def loss() -> float:
        with torch.no_grad():
            set_observers(run.graph, False)
            return float(balanced_bce_on_probabilities(run.graph(x).permute(0, 3, 1, 2), batch["label"]))

    before = loss()
    run.step(batch)
    # Straight-through gradients reach every weight, the folded BatchNorm shifts (conv biases) included.
    frozen = [n for n, p in run.graph.named_parameters() if p.grad is None or not p.grad.abs().max() > 0]
    assert not frozen, frozen
    for _ in range(14):
        run.step(batch)
    # A random network's output is nearly constant and has to learn structure; the measured fall is ~2 %.
    assert loss() < 0.99 * before


def test_resume_gives_the_same_graph_as_an_uninterrupted_run(ckpt, tiny_bsds, straight, tmp_path):
    first = QATRun(ckpt, tmp_path / "run", _cfg(), tiny_bsds, log=_quiet)
    assert not first.fit(until=2)
    assert not (tmp_path / "run" / "qat.pt").exists()
    other = _cfg()
    other.lr *= 2
    with pytest.raises(ValueError, match=r"was trained with other settings \(lr: "):
        QATRun(ckpt, tmp_path / "run", other, tiny_bsds, log=_quiet).resume()
    second = QATRun(ckpt, tmp_path / "run", _cfg(), tiny_bsds, log=_quiet)
    assert second.resume() and second.iteration == 2
    assert second.fit()
    a, b = straight.graph.state_dict(), second.graph.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # The weights did move, and the activation ranges were observed (then frozen).
    start = prepare_qat(_student()).state_dict()
    assert any(not torch.equal(a[k], start[k]) for k in a if k.endswith("weight"))


def test_int8_tflite_computes_what_the_fine_tuned_graph_simulated(ckpt, straight, tmp_path):
    model = _student()
    quantized, record = load_qat(model, straight.out / "qat.pt", ckpt)
    assert record["method"] == "qat" and record["iterations"] == 4
    path = export_tflite(model, tmp_path / "q-int8.tflite", [SIZE], int8=True, quantized=quantized, log=_quiet)
    spec = type(model).INPUT
    info = ModelInfo(name="q-int8", file=path.name, sha256=sha256_file(path), backend="litert", precision="int8",
                     input=InputNorm(spec.channel_order, tuple(spec.mean), tuple(spec.std)),
                     buckets=(Bucket(bucket_name(SIZE), *SIZE),))
    det = load(info.write(path.with_suffix(".json")))
    x = np.random.default_rng(0).normal(0, 1, (*SIZE, 3)).astype(np.float32)
    got = det.backend.run(x, bucket_name(SIZE))
    set_observers(straight.graph, False)
    with torch.no_grad():
        simulated = straight.graph(torch.from_numpy(x[None]))[0, :, :, 0].numpy()
        fp32 = DeployModel(model)(torch.from_numpy(x[None]))[0, :, :, 0].numpy()
    d = np.abs(got - simulated)
    # Integer kernels round intermediate requantisations where fake quantisation keeps float: a step or two of 1/256.
    assert d.mean() < 1.5 / 256 and d.max() < 8 / 256, (d.mean(), d.max())
    # ... and much closer to the simulation than to the float network it started from.
    assert d.mean() < 0.5 * np.abs(got - fp32).mean()


def test_load_qat_refuses_another_checkpoint_and_an_unfinished_run(ckpt, straight, tmp_path):
    other = tmp_path / "other.pt"
    m = _student(seed=1)
    save_model(other, m, architecture(m, "student"))
    with pytest.raises(ValueError, match="sha256 differs"):
        load_qat(_student(), straight.out / "qat.pt", other)
    with pytest.raises(ValueError, match="stopped at iteration 4 of 9"):
        doc = torch.load(straight.out / "qat.pt", weights_only=False)
        doc["config"]["iterations"] = 9
        torch.save(doc, tmp_path / "unfinished.pt")
        load_qat(_student(), tmp_path / "unfinished.pt")


def test_export_refuses_qat_for_float_formats(ckpt, straight):
    with pytest.raises(SystemExit, match="the int8 graph only: export it with formats int8"):
        convert_main(["export", "--ckpt", str(ckpt), "--name", "x", "--qat", str(straight.out / "qat.pt"),
                      "--formats", "int8,fp32"])
