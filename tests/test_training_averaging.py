"""Checkpoint averaging (model soups) against means computed by hand."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from training.__main__ import main  # noqa: E402
from training.averaging import average_state_dicts  # noqa: E402
from training.checkpoint import architecture, build_model, load_model, save_model  # noqa: E402


def _net(weight: float, bias: float, running_mean: float, batches: int) -> nn.Module:
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))
    with torch.no_grad():
        net[0].weight.fill_(weight)
        net[0].bias.fill_(bias)
        net[1].running_mean.fill_(running_mean)
    net[1].num_batches_tracked.fill_(batches)
    return net


def test_uniform_and_weighted_means_by_hand():
    a, b = _net(1.0, -2.0, 0.5, 7).state_dict(), _net(4.0, 2.0, 1.5, 9).state_dict()
    uniform = average_state_dicts([a, b])
    assert uniform["0.weight"].item() == 2.5 and uniform["0.bias"].item() == 0.0
    assert uniform["1.running_mean"].item() == 1.0
    # a counter, not a weight: the first model's
    assert uniform["1.num_batches_tracked"].item() == 7
    assert uniform["1.num_batches_tracked"].dtype == torch.int64
    # weights 3:1 -> 0.75 * 1 + 0.25 * 4
    weighted = average_state_dicts([a, b], weights=[3, 1])
    assert weighted["0.weight"].item() == 1.75 and weighted["0.bias"].item() == -1.0
    # the inputs are left as they were
    assert a["0.weight"].item() == 1.0 and b["0.weight"].item() == 4.0


def test_bf16_weights_average_exactly_and_keep_their_dtype():
    a = {"w": torch.tensor([1.0, 3.0], dtype=torch.bfloat16)}
    b = {"w": torch.tensor([2.0, 5.0], dtype=torch.bfloat16)}
    out = average_state_dicts([a, b])["w"]
    assert out.dtype == torch.bfloat16 and out.tolist() == [1.5, 4.0]


@pytest.mark.parametrize("other, message", [
    ({"0.weight": torch.zeros(1, 1, 1, 1)}, "other keys"),
    ({**_net(0, 0, 0, 0).state_dict(), "0.weight": torch.zeros(2, 1, 1, 1)}, "0.weight"),
])
def test_mismatched_models_are_refused_with_the_key(other, message):
    with pytest.raises(ValueError, match=message):
        average_state_dicts([_net(1, 1, 1, 1).state_dict(), other])


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0]])
def test_bad_weights_are_refused(weights):
    sd = _net(1, 1, 1, 1).state_dict()
    with pytest.raises(ValueError, match="weights"):
        average_state_dicts([sd, sd], weights=weights)


def test_cli_averages_two_saved_students_into_a_loadable_model(tmp_path):
    torch.manual_seed(0)
    paths = []
    models = [build_model({"kind": "student", "preset": "so-model"}) for _ in range(2)]
    for i, m in enumerate(models):
        paths.append(tmp_path / f"run{i}" / "model.pt")
        save_model(paths[-1], m, architecture(m, "student"), {"config": {"run": {"name": f"run{i}"}}})
    out = tmp_path / "soup" / "model.pt"
    assert main(["average", "--ckpt", str(paths[0]), "--ckpt", str(paths[1]), "--out", str(out)]) == 0
    soup = load_model(out)
    k = "backbone.features.0.0.weight"
    expected = (models[0].state_dict()[k] + models[1].state_dict()[k]) / 2
    torch.testing.assert_close(soup.state_dict()[k], expected)
    doc = torch.load(out, weights_only=True)
    assert doc["averaged_from"] == [str(p) for p in paths] and doc["average_weights"] == [0.5, 0.5]
    # not one training run: no config that would make it pass for one
    assert "config" not in doc


def test_cli_refuses_models_of_two_architectures(tmp_path):
    paths = []
    for i, preset in enumerate(("model", "so-model")):
        m = build_model({"kind": "student", "preset": preset})
        paths.append(tmp_path / f"{preset}.pt")
        save_model(paths[-1], m, architecture(m, "student"))
    with pytest.raises(SystemExit, match="so-model.pt: another architecture"):
        main(["average", "--ckpt", str(paths[0]), "--ckpt", str(paths[1]), "--out", str(tmp_path / "x.pt")])
    assert not (tmp_path / "x.pt").exists()


def test_cli_names_a_file_that_is_not_a_saved_model(tmp_path):
    good = tmp_path / "good.pt"
    m = build_model({"kind": "student", "preset": "so-model"})
    save_model(good, m, architecture(m, "student"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    plain = tmp_path / "plain.pt"
    torch.save(m.state_dict(), plain)  # weights without the architecture record
    for bad, message in ((junk, "junk.pt: not a readable torch file"), (plain, "plain.pt: not a saved model"),
                         (tmp_path / "missing.pt", "missing.pt")):
        with pytest.raises(SystemExit, match=message):
            main(["average", "--ckpt", str(good), "--ckpt", str(bad), "--out", str(tmp_path / "x.pt")])
    assert not (tmp_path / "x.pt").exists()


def test_cli_weights_are_checked(tmp_path, capsys):
    m = build_model({"kind": "student", "preset": "so-model"})
    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for p in paths:
        save_model(p, m, architecture(m, "student"))
    args = ["average", "--ckpt", str(paths[0]), "--ckpt", str(paths[1]), "--out", str(tmp_path / "x.pt")]
    with pytest.raises(SystemExit):
        main(args + ["--weights", "1,x"])
    assert "not a comma-separated list of numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="3 weights for 2"):
        main(args + ["--weights", "1,2,3"])
    assert main(args + ["--weights", "3,1"]) == 0
    assert torch.load(tmp_path / "x.pt", weights_only=True)["average_weights"] == [0.75, 0.25]


def test_recompute_batchnorm_matches_statistics_computed_by_hand():
    from training.averaging import recompute_batchnorm

    net = _net(2.0, 1.0, 5.0, 3).eval()  # conv y = 2x + 1; stale running mean 5
    net[1].running_var.fill_(9.0)
    x1 = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).reshape(2, 1, 2, 2)
    x2 = torch.tensor([1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0]).reshape(2, 1, 2, 2)
    assert recompute_batchnorm(net, iter([x1, x2])) == 2
    # by hand: y1 = 1, 3, ..., 15 (mean 8, unbiased var 2^2 * 6 = 24); y2 = 3 x4, 7 x4 (mean 5,
    # eight squared deviations of 2^2: unbiased var 32/7); equal-weight means over the two batches
    assert net[1].running_mean.item() == pytest.approx((8 + 5) / 2)
    assert net[1].running_var.item() == pytest.approx((24 + 32 / 7) / 2)
    assert net[0].weight.item() == 2.0 and net[0].bias.item() == 1.0  # weights untouched
    assert not net.training and net[1].momentum == 0.1  # left as it came


def test_recompute_batchnorm_without_batches_fails_and_keeps_the_statistics():
    from training.averaging import recompute_batchnorm

    net = _net(2.0, 1.0, 5.0, 3)
    with pytest.raises(ValueError, match="no batches"):
        recompute_batchnorm(net, iter([]))
    assert net[1].running_mean.item() == 5.0 and net[1].num_batches_tracked.item() == 3


def test_recompute_batchnorm_runs_nothing_without_batchnorm():
    from training.averaging import recompute_batchnorm

    def never():
        raise AssertionError("a model without BatchNorm must not be run")
        yield  # pragma: no cover

    assert recompute_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 1)), never()) == 0


def test_cli_re_estimates_the_averages_batchnorm_statistics_on_training_crops(tmp_path):
    from datasets import sample_bsds_tree

    from training.averaging import training_crops

    root = sample_bsds_tree(tmp_path / "bsds", {"train": None, "val": None})
    torch.manual_seed(0)
    paths, models = [], [build_model({"kind": "student", "preset": "so-model"}) for _ in range(2)]
    for i, m in enumerate(models):
        paths.append(tmp_path / f"run{i}.pt")
        save_model(paths[-1], m, architecture(m, "student"))
    out = tmp_path / "soup.pt"
    args = ["average", "--ckpt", str(paths[0]), "--ckpt", str(paths[1]), "--out", str(out), "--data", str(root)]
    assert main(args + ["--bn-batches", "2", "--bn-batch", "2"]) == 0
    doc = torch.load(out, weights_only=True)
    assert doc["bn_recomputed"]["batches"] == 2 and doc["bn_recomputed"]["batch"] == 2
    plain = average_state_dicts([m.state_dict() for m in models])
    conv, bn = "backbone.features.0.0.weight", "backbone.features.0.1"
    torch.testing.assert_close(doc["state_dict"][conv], plain[conv])  # weights: the plain average
    # statistics: those of the average's own first conv on the same crops, computed here by hand
    model = build_model(doc["arch"])
    model.load_state_dict(plain)
    first_conv = model.backbone.features[0][0]
    batches = list(training_crops(root, type(model).INPUT, 2, 2))
    with torch.no_grad():
        ys = [first_conv(x).double() for x in batches]
    mean = sum(y.mean(dim=(0, 2, 3)) for y in ys) / 2
    var = sum(y.var(dim=(0, 2, 3), unbiased=True) for y in ys) / 2
    torch.testing.assert_close(doc["state_dict"][f"{bn}.running_mean"].double(), mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(doc["state_dict"][f"{bn}.running_var"].double(), var, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(doc["state_dict"][f"{bn}.running_mean"], plain[f"{bn}.running_mean"])


def test_cli_refuses_bad_batchnorm_settings_and_a_missing_dataset(tmp_path):
    m = build_model({"kind": "student", "preset": "so-model"})
    path = tmp_path / "a.pt"
    save_model(path, m, architecture(m, "student"))
    args = ["average", "--ckpt", str(path), "--out", str(tmp_path / "x.pt")]
    with pytest.raises(SystemExit, match="bn_batch >= 1"):
        main(args + ["--bn-batches", "2", "--bn-batch", "0"])
    with pytest.raises(SystemExit, match="nowhere"):
        main(args + ["--bn-batches", "2", "--data", str(tmp_path / "nowhere")])
    assert not (tmp_path / "x.pt").exists()
