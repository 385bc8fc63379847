"""Export (int8 and fp32 TFLite, TorchScript) of a real student network, run back through the runtime.

The network has random weights (a fresh clone has no trained checkpoint), but
the path is the real one: PT2E quantisation calibrated on BSDS images, a
multi-signature .tflite, the sidecar, LiteRT with int8 (de)quantisation.
"""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="conversion needs torch (pip install -e '.[dev]')")
pytest.importorskip("litert_torch", reason="TFLite export needs litert-torch (pip install -e '.[dev]')")

from convert.calibration import calibration_batches  # noqa: E402
from datasets import sample_bsds_tree  # noqa: E402
from networks import random_student  # noqa: E402
from convert.deploy import DeployModel  # noqa: E402
from convert.tflite import bucket_name, export_tflite  # noqa: E402
from convert.torchscript import export_torchscript  # noqa: E402
from edgesdk.errors import InputError  # noqa: E402
from edgesdk.runtime import load  # noqa: E402
from edgesdk.runtime.metadata import Bucket, InputNorm, ModelInfo, sha256_file  # noqa: E402
from training.checkpoint import build_model  # noqa: E402

SIZES = [(96, 128), (128, 96)]


@pytest.fixture(scope="module")
def student():
    return random_student()


@pytest.fixture(scope="module")
def tiny_bsds(tmp_path_factory):
    return sample_bsds_tree(tmp_path_factory.mktemp("bsds"), {"train": None})


def _sidecar(path, backend, precision, buckets=()):
    spec = build_model({"kind": "student", "preset": "so-model"}).INPUT
    info = ModelInfo(name=path.stem, file=path.name, sha256=sha256_file(path), backend=backend, precision=precision,
                     input=InputNorm(spec.channel_order, tuple(spec.mean), tuple(spec.std)), buckets=tuple(buckets))
    return info.write(path.with_suffix(".json"))


def _eager(student, x):
    with torch.no_grad():
        return DeployModel(student)(torch.from_numpy(x[None]))[0, :, :, 0].numpy()


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (h, w, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def exported(student, tiny_bsds, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    buckets = [Bucket(bucket_name(s), *s) for s in SIZES]
    fp32 = export_tflite(student, out / "s-fp32.tflite", SIZES, int8=False, log=lambda m: None)
    calib = calibration_batches(student.INPUT, tiny_bsds, SIZES, count=3)
    int8 = export_tflite(student, out / "s-int8.tflite", SIZES, int8=True, calibration=calib, log=lambda m: None)
    ts = export_torchscript(student, out / "s.ts")
    return {
        "fp32": _sidecar(fp32, "litert", "fp32", buckets),
        "int8": _sidecar(int8, "litert", "int8", buckets),
        "torchscript": _sidecar(ts, "torchscript", "fp32"),
    }


@pytest.mark.parametrize("fmt,tol_max,tol_mean", [("fp32", 1e-4, 1e-5), ("torchscript", 1e-5, 1e-6), ("int8", 0.08, 0.01)])
def test_exports_match_the_eager_model_at_every_bucket(student, exported, fmt, tol_max, tol_mean):
    det = load(exported[fmt])
    for k, (h, w) in enumerate(SIZES):
        x = _image(h, w, k)
        name = bucket_name((h, w)) if fmt != "torchscript" else None
        got = det.backend.run(x, name)
        ref = _eager(student, x)
        assert got.shape == (h, w)
        d = np.abs(got - ref)
        assert d.max() < tol_max and d.mean() < tol_mean, (fmt, d.max(), d.mean())
    assert det.info.precision == ("int8" if fmt == "int8" else "fp32")


def test_int8_file_has_int8_io_and_is_smaller(exported):
    det = load(exported["int8"])
    runner = det.backend._runner(bucket_name(SIZES[0]))
    assert runner[2]["dtype"] == np.int8 and runner[4]["dtype"] == np.int8
    fp32 = Path(load(exported["fp32"]).path)
    assert det.path.stat().st_size < 0.5 * fp32.stat().st_size


@pytest.mark.parametrize("fmt", ["int8", "torchscript"])
@pytest.mark.parametrize("shape", [(5, 7, 3), (96, 128, 3), (97, 130, 3), (300, 200, 3)])
def test_output_always_has_the_input_size(exported, fmt, shape):
    det = load(exported[fmt])
    img = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    em = det.detect(img)
    assert em.probability.shape == shape[:2] and em.edges.shape == shape[:2]
    assert em.edges.dtype == bool
    assert 0.0 <= em.probability.min() and em.probability.max() <= 1.0
    if fmt == "int8" and shape == (300, 200, 3):
        assert em.tiles > 1  # larger than every bucket: tiled, not resized


def test_torchscript_padding_is_invisible_when_the_size_is_already_a_multiple(student, exported):
    det = load(exported["torchscript"])
    x = _image(64, 96, 3)
    np.testing.assert_allclose(det.infer(x)[0], _eager(student, x), atol=1e-5)


def test_checksum_and_signature_mismatches_are_refused(exported, tmp_path):
    import json
    import shutil

    src = Path(exported["int8"])
    for f in (src, src.with_suffix(".tflite")):
        shutil.copy(f, tmp_path / f.name)
    tampered = tmp_path / src.with_suffix(".tflite").name
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    with pytest.raises(InputError, match="checksum mismatch"):
        load(tmp_path / src.name)
    shutil.copy(src.with_suffix(".tflite"), tampered)
    doc = json.loads((tmp_path / src.name).read_text())
    doc["buckets"].append({"name": "s999x999", "height": 999, "width": 999})
    (tmp_path / src.name).write_text(json.dumps(doc))
    with pytest.raises(Exception, match="s999x999"):
        load(tmp_path / src.name)


def test_provenance_records_the_label_threshold_teacher_and_init_of_a_checkpoint():
    from convert.export import provenance

    cfg = {"source": "training/configs/model-hinton.toml", "run": {"name": "kd-eta"}, "model": {"init": "runs/a/model.pt"},
           "data": {"eta": 0.3}, "loss": {"kind": "hinton", "alpha": 0.5}, "teacher": {"cache": "runs/teacher-x"}}
    rec = provenance({"config": cfg, "iterations": 3000}, Path("runs/kd-eta/model.pt"))
    assert rec["checkpoint"] == "runs/kd-eta/model.pt" and rec["run"] == "kd-eta" and rec["iterations"] == 3000
    assert rec["init"] == "runs/a/model.pt" and rec["label_eta"] == 0.3
    assert rec["loss"] == {"kind": "hinton", "alpha": 0.5} and rec["teacher"] == {"cache": "runs/teacher-x"}
    # A model trained on the ground truth alone carries no teacher; a config without a data section, no threshold.
    plain = provenance({"config": {"loss": {"kind": "rcf"}}}, "m.pt")
    assert "teacher" not in plain and "loss" not in plain and "label_eta" not in plain


# Leaving modules in float inside an int8 export (python -m convert sensitivity / export --float-modules).

CHILDREN = ["backbone", "sems", "sides", "fusion"]  # every top-level module of the student


@pytest.fixture(scope="module")
def calibrated(student, tiny_bsds):
    from convert.tflite import quantize_pt2e

    def quantize(float_modules=()):
        calib = calibration_batches(student.INPUT, tiny_bsds, SIZES, count=3)
        return quantize_pt2e(DeployModel(student), calib, torch.zeros(1, *SIZES[0], 3), float_modules)[0]

    return quantize


def test_module_groups_are_blocks_and_heads():
    from convert.sensitivity import module_group

    assert module_group("backbone.features.1.conv.0.0") == "backbone.features.1"
    assert module_group("backbone.features.12") == "backbone.features.12"
    assert module_group("sems.0.branches.1") == "sems.0"
    assert module_group("fusion") == "fusion" and module_group("fusion.weight") == "fusion"


def test_float_modules_keep_their_weights_and_activations_float(calibrated):
    from convert.sensitivity import qdq_pairs

    full = {(p.module, p.kind) for p in qdq_pairs(calibrated())}
    assert ("backbone.features.1", "weight") in full and ("backbone.features.1", "activation") in full
    part = qdq_pairs(calibrated(["backbone.features.1", "sides"]))
    floated = [p for p in part if p.module == "backbone.features.1" or (p.module or "").startswith("sides.")]
    # What is left of the float modules: the tensors they hand to int8 neighbours, which those quantize.
    assert floated and all(p.kind == "activation" and not p.internal for p in floated), floated
    assert {("backbone.features.2", "weight"), ("sems.0", "weight")} <= {(p.module, p.kind) for p in part}
    # Every module float: nothing is rounded (the sigmoid after the network is quantized only after an int8 op).
    assert qdq_pairs(calibrated(CHILDREN)) == []


def test_unknown_float_modules_are_named_in_the_error(student):
    from convert.tflite import check_module_names

    check_module_names(student, ["backbone.features.0", "sems.2"])
    with pytest.raises(ValueError, match=r"backbone\.feature\.1"):
        check_module_names(student, ["backbone.feature.1", "sems.2"])


def test_bypassing_every_pair_gives_the_float_network_then_restores_it(student, calibrated):
    from convert.sensitivity import bypassed, qdq_pairs

    graph, x = calibrated(), torch.from_numpy(_image(*SIZES[0], 5)[None])
    with torch.no_grad():
        before, ref = graph(x), DeployModel(student)(x)
        with bypassed(graph, qdq_pairs(graph)) as g:
            assert (g(x) - ref).abs().max() < 1e-5  # only BatchNorm folding's float reordering differs
        after = graph(x)
    assert (before - ref).abs().max() > 1e-3  # the int8 graph really rounds
    assert torch.equal(before, after)


def test_sensitivity_ranks_modules_and_floating_all_leaves_the_output_step(student, calibrated):
    from convert.sensitivity import sensitivity

    graph = calibrated()
    inputs = [(torch.from_numpy(_image(*s, k)[None]), *s) for k, s in enumerate(SIZES)]
    with torch.no_grad():
        refs = [DeployModel(student)(x)[0, :, :, 0] for x, _, _ in inputs]
    res = sensitivity(graph, inputs, refs, cumulative=100)
    shares = [r["share"] for r in res.groups.values()]
    assert shares == sorted(shares, reverse=True) and res.int8_error > 0
    assert len(res.cumulative) == len(res.groups)
    # All groups float: only the output's int8 step (scale 1/256, round to nearest) is left, |error| <= 1/512.
    assert res.cumulative[-1][1] <= (1 / 512) ** 2


def test_a_partly_float_int8_file_runs_in_the_runtime(student, tiny_bsds, exported, tmp_path):
    float_modules = ["backbone.features.0", "backbone.features.1"]
    calib = calibration_batches(student.INPUT, tiny_bsds, SIZES, count=3)
    path = export_tflite(student, tmp_path / "s-mixed.tflite", SIZES, int8=True, calibration=calib, log=lambda m: None,
                         float_modules=float_modules)
    det = load(_sidecar(path, "litert", "int8", [Bucket(bucket_name(s), *s) for s in SIZES]))
    # The first convolution is float, so the file takes the normalised float image.
    assert det.backend._runner(bucket_name(SIZES[0]))[2]["dtype"] == np.float32
    for k, (h, w) in enumerate(SIZES):
        x = _image(h, w, k)
        d = np.abs(det.backend.run(x, bucket_name((h, w))) - _eager(student, x))
        assert d.max() < 0.08 and d.mean() < 0.01, (d.max(), d.mean())
    # Only two small blocks keep float weights: the file stays near the int8 size, far below the fp32 one.
    assert path.stat().st_size < 0.6 * Path(load(exported["fp32"]).path).stat().st_size
