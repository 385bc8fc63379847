"""AdaRound (convert/adaround.py): learnt up/down rounding of int8 weights, checked against round-to-nearest."""

import pytest

torch = pytest.importorskip("torch", reason="AdaRound needs torch (pip install -e '.[dev]')")
pytest.importorskip("litert_torch", reason="the export's quantizer needs litert-torch (pip install -e '.[dev]')")

from torch import nn  # noqa: E402

from convert.adaround import (AdaRoundConfig, adaround, adaround_conv, channel_scales, convolutions,  # noqa: E402
                              following_activation, nearest_weights)
from convert.qat import fold_batchnorm  # noqa: E402
from networks import random_student  # noqa: E402


def test_scales_and_nearest_rounding_by_hand():
    w = torch.tensor([[1.0, -0.5, 0.26], [0.0, 0.0, -2.54]]).view(2, 3, 1, 1)
    s = channel_scales(w).flatten()
    assert torch.allclose(s, torch.tensor([1 / 127, 2.54 / 127]))
    # 127, -63.5 -> -64 (half to even), 33.02 -> 33; 0, 0, -127 steps of 0.02
    expect = torch.tensor([[127 / 127, -64 / 127, 33 / 127], [0.0, 0.0, -2.54]]).view(2, 3, 1, 1)
    assert torch.allclose(nearest_weights(w), expect)


def _correlated_inputs(seed):
    # One smooth field shared by every channel plus a little noise: neighbouring pixels and channels
    # move together, as in images, so rounding errors of one filter add up instead of averaging out.
    g = torch.Generator().manual_seed(seed)
    base = nn.functional.interpolate(torch.randn(64, 1, 3, 3, generator=g), size=(8, 8), mode="bilinear",
                                     align_corners=True)
    return base.expand(-1, 8, -1, -1) + 0.1 * torch.randn(64, 8, 8, 8, generator=g)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_learnt_rounding_stays_on_the_grid_and_beats_nearest_on_the_output(seed):
    torch.manual_seed(seed)
    conv = nn.Conv2d(8, 4, 3, padding=1)
    x = _correlated_inputs(seed)
    w = conv.weight.detach()
    ada = adaround_conv(conv, x, lambda t: t, AdaRoundConfig(iterations=300))
    s = channel_scales(w)
    k = ada / s
    assert torch.allclose(k, k.round(), atol=1e-4) and k.abs().max() <= 127 + 1e-4
    assert torch.all((k.round() == torch.floor(w / s)) | (k.round() == torch.ceil(w / s)))  # up or down, nothing else
    assert torch.allclose(channel_scales(ada), s)  # each channel's largest |w| is kept, so the export's scale is too

    def err(weight):
        return (nn.functional.conv2d(x, weight, conv.bias, padding=1) - nn.functional.conv2d(x, w, conv.bias, padding=1)).pow(2).mean()

    assert err(ada) < 0.9 * err(nearest_weights(w))


@pytest.fixture(scope="module")
def folded_student():
    return fold_batchnorm(random_student())


def test_convolutions_and_their_activations_are_found(folded_student):
    names = convolutions(folded_student, ["backbone.features.1"])
    assert names == ["backbone.features.1.conv.0.0", "backbone.features.1.conv.1"]  # depthwise, then projection
    assert isinstance(following_activation(folded_student, names[0]), nn.ReLU6)  # the folded BatchNorm is skipped
    x = torch.randn(5)
    assert torch.equal(following_activation(folded_student, names[1])(x), x)  # the projection is linear
    with pytest.raises(ValueError, match="no convolutions"):
        adaround(folded_student, ["nothing.here"], [torch.zeros(1, 3, 32, 32)])


def test_the_export_quantizer_reproduces_the_learnt_weights_exactly(folded_student, tmp_path):
    import copy
    import functools

    from convert.deploy import DeployModel
    from convert.sensitivity import qdq_pairs
    from convert.tflite import quantize_pt2e

    model = copy.deepcopy(folded_student)
    crops = [torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))]
    rec = adaround(model, ["backbone.features.1"], crops, AdaRoundConfig(iterations=20))
    assert rec["convolutions"] == 2 and rec["crops"] == 4 and rec["iterations"] == 20
    graph, _ = quantize_pt2e(DeployModel(model), [torch.randn(1, 64, 64, 3)], torch.zeros(1, 64, 64, 3))
    def value(a):  # a get_attr node's tensor (its target may be a dotted path), or the argument itself
        return functools.reduce(getattr, a.target.split("."), graph) if isinstance(a, torch.fx.Node) else a

    checked = 0
    for p in qdq_pairs(graph):
        if p.kind != "weight" or p.module != "backbone.features.1":
            continue
        q, w = p.dequant.args[0], value(p.source)
        with torch.no_grad():
            back = p.dequant.target(q.target(w, *map(value, q.args[1:])), *map(value, p.dequant.args[1:]))
        assert torch.allclose(back, w, atol=1e-7), (back - w).abs().max()
        checked += 1
    assert checked == 2


def test_export_cli_reports_every_rounded_layer_and_records_the_rounding(tmp_path, capsys):
    # The whole `python -m convert export --adaround` path on the bundled sample laid out as train/val/test:
    # one progress line per convolution as it is rounded (the step takes minutes on a real network), the
    # rounding's record in the int8 file's metadata, and a file the runtime scores on both splits.
    import json

    from convert.__main__ import main as convert_main
    from datasets import sample_bsds_tree
    from training.checkpoint import architecture, save_model

    model = random_student(0)
    ckpt = tmp_path / "model.pt"
    save_model(ckpt, model, architecture(model, "student"), {"iterations": 0})
    data = sample_bsds_tree(tmp_path / "bsds", {"train": None, "val": None, "test": None})
    rc = convert_main(["export", "--ckpt", str(ckpt), "--name", "m", "--out", str(tmp_path / "out"), "--formats", "int8",
                       "--data", str(data), "--buckets", "96x128", "--calib", "2", "--threads", "1",
                       "--adaround", "backbone.features.1,backbone.features.2", "--adaround-iterations", "3"])
    assert rc == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("adaround backbone.")]
    expected = convolutions(fold_batchnorm(model), ["backbone.features.1", "backbone.features.2"])
    assert len(expected) == 5  # block 1: depthwise + projection; block 2: expansion + depthwise + projection
    assert [ln.split(":")[0].split()[1] for ln in lines] == expected  # in model order, each once
    side = json.loads((tmp_path / "out" / "m-int8.json").read_text())
    record = side["training"]["quantization"]["adaround"]
    assert record["convolutions"] == 5 and record["iterations"] == 3 and record["crops"] == 2
    assert record["modules"] == ["backbone.features.1", "backbone.features.2"]
    assert side["metrics"]["bsds500_val"]["images"] == 3 and side["metrics"]["bsds500_test"]["images"] == 3
