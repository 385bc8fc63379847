"""Pixel difference convolutions (training/models/pdc.py) against the definitions of PiDiNet (Su et al., ICCV 2021).

The reference below computes each kind from its definition, pixel differences
summed with the weights, on a zero-padded image; the module computes it as a
plain convolution with a transformed kernel. The hand-computed cases use ramps,
whose differences are known without either.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need torch (pip install -e '.[dev]')")

from networks import random_student  # noqa: E402
from training.models.pdc import PixelDifferenceConv2d, difference_kernel, fold_pixel_differences  # noqa: E402

# (dy, dx) of the 3x3 ring, clockwise from the top-left corner, as PiDiNet's Fig. 3 pairs them.
RING = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]


def reference(x: np.ndarray, w: np.ndarray, kind: str, stride: int = 1, dilation: int = 1) -> np.ndarray:
    """One channel in, one out: x (H, W), w (3, 3), outputs at the conv's sampling positions; outside is 0."""
    d = dilation
    h, wd = x.shape
    pad = 2 * d
    xp = np.pad(x.astype(np.float64), pad)

    def at(y, xx, dy, dx):  # the pixel at offset (dy, dx) steps of the dilation from (y, xx)
        return xp[pad + y + dy * d, pad + xx + dx * d]

    ys, xs = range(0, h, stride), range(0, wd, stride)
    out = np.zeros((len(ys), len(xs)))
    for i, y in enumerate(ys):
        for j, xx in enumerate(xs):
            s = 0.0
            if kind == "cv":
                s = sum(w[1 + dy, 1 + dx] * at(y, xx, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
            elif kind == "cd":  # each neighbour (and the centre, which gives 0) minus the centre
                s = sum(w[1 + dy, 1 + dx] * (at(y, xx, dy, dx) - at(y, xx, 0, 0)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
            elif kind == "ad":  # each ring pixel minus the next one clockwise
                for k, (dy, dx) in enumerate(RING):
                    ny, nx = RING[(k + 1) % 8]
                    s += w[1 + dy, 1 + dx] * (at(y, xx, dy, dx) - at(y, xx, ny, nx))
            elif kind == "rd":  # two steps out minus one step out, per direction
                for dy, dx in RING:
                    s += w[1 + dy, 1 + dx] * (at(y, xx, 2 * dy, 2 * dx) - at(y, xx, dy, dx))
            out[i, j] = s
    return out


def run(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)[None, None].float())[0, 0].double().numpy()


@pytest.mark.parametrize("kind", ["cv", "cd", "ad", "rd"])
@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2), (2, 3)])
def test_each_kind_computes_its_pixel_differences(kind, stride, dilation):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(11, 13))
    m = PixelDifferenceConv2d(1, 1, kind, stride=stride, dilation=dilation)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(rng.normal(size=(1, 1, 3, 3))))
    np.testing.assert_allclose(run(m, x), reference(x, m.weight[0, 0].detach().double().numpy(), kind, stride, dilation),
                               atol=1e-5)


def test_hand_computed_ramps():
    # A ramp rising by 1 per column: every horizontal step differs by 1, every vertical step by 0.
    x = np.tile(np.arange(9, dtype=np.float64), (9, 1))

    def one(kind, r, c):  # a single weight of 1 at (r, c)
        m = PixelDifferenceConv2d(1, 1, kind)
        with torch.no_grad():
            m.weight.zero_()
            m.weight[0, 0, r, c] = 1.0
        return run(m, x)[4, 4]

    assert one("cd", 1, 2) == 1.0  # east neighbour minus centre: 5 - 4
    assert one("cd", 0, 0) == -1.0  # north-west minus centre: 3 - 4
    assert one("cd", 1, 1) == 0.0  # the centre against itself
    assert one("ad", 0, 0) == -1.0  # top-left minus top-middle (its clockwise neighbour): 3 - 4
    assert one("ad", 0, 2) == 0.0  # top-right minus middle-right: 5 - 5
    assert one("ad", 0, 1) == -1.0  # top-middle minus top-right: 4 - 5
    assert one("ad", 2, 1) == 1.0  # bottom-middle minus bottom-left: 4 - 3
    assert one("ad", 1, 0) == 0.0  # middle-left minus top-left: 3 - 3
    assert one("ad", 1, 1) == 0.0  # the centre is not on the ring
    assert one("rd", 1, 2) == 1.0  # two steps east minus one step east: 6 - 5
    assert one("rd", 1, 0) == -1.0  # two steps west minus one step west: 2 - 3
    assert one("rd", 0, 2) == 1.0  # two steps north-east minus one: 6 - 5
    assert one("rd", 0, 1) == 0.0  # straight up the ramp's columns: 4 - 4
    # Uniform weights: the central differences of a ramp cancel in pairs; a constant image gives 0 for every kind.
    m = PixelDifferenceConv2d(1, 1, "cd")
    with torch.no_grad():
        m.weight.fill_(1.0)
    assert run(m, x)[4, 4] == 0.0
    for kind in ("cd", "ad", "rd"):
        m = PixelDifferenceConv2d(1, 1, kind)
        assert np.abs(run(m, np.full((9, 9), 3.0))[2:-2, 2:-2]).max() < 1e-5, kind


def test_a_sum_of_terms_is_the_sum_of_their_differences():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 12))
    m = PixelDifferenceConv2d(1, 1, "cv+ad+rd", stride=2)
    ws = {t: rng.normal(size=(3, 3)) for t in ("cv", "ad", "rd")}
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(ws["cv"])[None, None])
        m.weight_ad.copy_(torch.from_numpy(ws["ad"])[None, None])
        m.weight_rd.copy_(torch.from_numpy(ws["rd"])[None, None])
    expected = sum(reference(x, w, t, stride=2) for t, w in ws.items())
    np.testing.assert_allclose(run(m, x), expected, atol=1e-5)


def test_a_sum_starts_as_the_convolution_it_was_initialised_from():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6, bias=False)
    m = PixelDifferenceConv2d(6, 6, "cv+cd+rd", stride=2, groups=6)
    m.load_state_dict({"weight": conv.weight, "weight_cd": m.weight_cd, "weight_rd": m.weight_rd})
    x = torch.randn(2, 6, 17, 20)
    with torch.no_grad():
        assert torch.allclose(m(x), conv(x), atol=1e-6)
    # ... and the added terms learn: they get a gradient.
    m(x).square().sum().backward()
    assert m.weight_cd.grad.abs().sum() > 0 and m.weight_rd.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["cd", "ad", "rd", "cv+cd", "cv+ad", "cv+rd", "cd+ad+rd"])
def test_folding_gives_a_plain_convolution_with_the_same_output(kind):
    torch.manual_seed(1)
    m = PixelDifferenceConv2d(8, 8, kind, stride=2, dilation=2, groups=4, bias=True)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    x = torch.randn(1, 8, 23, 19)
    conv = m.fold()
    assert type(conv) is torch.nn.Conv2d
    assert conv.kernel_size == ((5, 5) if "rd" in kind else (3, 3))
    with torch.no_grad():
        assert torch.allclose(conv(x), m(x), atol=1e-5)


def test_bad_kinds_are_refused():
    for kind in ("xd", "cd+cd", "", "cv+"):
        with pytest.raises(ValueError, match="pixel difference kind"):
            PixelDifferenceConv2d(1, 1, kind)
    with pytest.raises(ValueError, match=r"\(O, I, 3, 3\)"):
        difference_kernel(torch.zeros(1, 1, 5, 5), "cd")


def pdc_student(pdc):
    from training.checkpoint import build_model

    torch.manual_seed(0)
    return build_model({"kind": "student", "preset": "so-model", "pdc": pdc}).eval()


def test_the_student_places_the_kinds_on_its_blocks_and_loads_plain_weights():
    from training.checkpoint import build_model

    m = pdc_student(["cv+cd", "ad", "cv+rd"])
    dw = [m.backbone.features[i].conv[-3][0] for i in (1, 2, 3, 4)]  # each block's depthwise conv
    assert [getattr(c, "kind", "plain") for c in dw] == ["cv+cd", "ad", "cv+rd", "plain"]
    # Weights of the plain network (as ImageNet's are) load by name and shape into the first term.
    plain = build_model({"kind": "student", "preset": "so-model"})
    loaded = m.backbone.load_imagenet(plain.backbone.state_dict())
    assert len(loaded) == len(plain.backbone.state_dict())
    assert torch.equal(dw[0].weight, plain.backbone.features[1].conv[0][0].weight)
    with pytest.raises(ValueError, match="list of kinds"):
        build_model({"kind": "student", "pdc": "cd"})
    with pytest.raises(ValueError, match="students and RCF"):
        build_model({"kind": "hed", "pdc": ["cd"]})
    with pytest.raises(ValueError, match="inverted-residual blocks"):
        pdc_student(["cd"] * 20)


def test_a_saved_student_keeps_its_kinds_and_the_export_folds_them(tmp_path):
    from convert.deploy import load_deployable
    from training.checkpoint import architecture, load_model, save_model
    from training.complexity import count_flops

    m = pdc_student(["cv+cd", "cv+ad", "cv+rd"])
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "weight_" in name:
                p.normal_(0, 0.2)
    ckpt = tmp_path / "m.pt"
    save_model(ckpt, m, architecture(m, "student"))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = m(x).fused
        assert torch.equal(load_model(ckpt).eval()(x).fused, ref)
        deploy = load_deployable(ckpt)
        assert not any(isinstance(mod, PixelDifferenceConv2d) for mod in deploy.modules())
        assert torch.allclose(deploy(x).fused, ref, atol=1e-5)
    # The folded cd and ad kernels are 3x3, as the plain network's: the same FLOPs. The rd block's
    # depthwise kernel is 5x5: 16 more multiply-adds per output of its 144 channels at stride 4.
    plain = pdc_student([])
    extra = count_flops(deploy, (64, 96)) - count_flops(plain, (64, 96))
    assert extra == 2 * 16 * 144 * (64 // 4) * (96 // 4)


def test_an_rcf_teacher_takes_them_in_its_first_convs_and_loads_vgg_weights(tmp_path):
    from training.checkpoint import architecture, build_model, load_model, save_model
    from training.pruning import plan_pruning
    from training.train import make_optimizer
    from training.config import from_dict

    torch.manual_seed(0)
    plain = build_model({"kind": "rcf"}).eval()
    rcf = build_model({"kind": "rcf", "pdc": ["cv+cd", "cv+ad", "cd"]}).eval()
    convs = [c for block in rcf.backbone.blocks for c in block]
    assert [getattr(c, "kind", "plain") for c in convs[:4]] == ["cv+cd", "cv+ad", "cd", "plain"]
    assert convs[0].bias is not None  # VGG's convs have biases
    # VGG16 weights (here the plain network's) load into the first terms; the added terms stay zero.
    vgg = {f"blocks.{k}": v for k, v in plain.backbone.blocks.state_dict().items()}
    rcf.load_vgg(vgg)
    plain_heads = {k: v for k, v in plain.state_dict().items() if not k.startswith("backbone.")}
    rcf.load_state_dict(plain_heads, strict=False)
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        # cv+cd and cv+ad start as the plain convs; conv 2 ("cd" alone) computes differences, not the plain conv.
        assert not torch.allclose(rcf(x).fused, plain(x).fused, atol=1e-4)
        rcf.backbone.blocks[1][0] = plain.backbone.blocks[1][0]  # make conv 2 plain again
        assert torch.allclose(rcf(x).fused, plain(x).fused, atol=1e-4)
    with pytest.raises(KeyError, match="missing"):
        rcf.load_vgg({k: v for k, v in vgg.items() if "blocks.0.1" not in k})
    # The record keeps the kinds; the optimizer gives the added terms the full rate, not the backbone's.
    rcf = build_model({"kind": "rcf", "pdc": ["cv+cd", "cv+ad"]})
    save_model(tmp_path / "r.pt", rcf, architecture(rcf, "rcf"))
    assert [c.kind for c in list(load_model(tmp_path / "r.pt").backbone.blocks[0])] == ["cv+cd", "cv+ad"]
    cfg = from_dict({"model": {"kind": "rcf", "backbone_lr_mult": 0.1}, "optim": {"lr": 1.0}})
    groups = make_optimizer(cfg, rcf, []).param_groups
    slow = {id(p) for p in groups[0]["params"]}
    assert groups[0]["lr"] == 0.1 and groups[1]["lr"] == 1.0
    first = rcf.backbone.blocks[0][0]
    assert id(first.weight) in slow and id(first.weight_cd) not in slow
    assert id(rcf.backbone.blocks[0][1].weight_ad) in {id(p) for p in groups[1]["params"]}
    with pytest.raises(ValueError, match="pruning"):
        plan_pruning(rcf, 0.5)


def test_fold_replaces_every_module_and_counts_them():
    m = pdc_student(["cd", "ad", "rd", "cv"])
    assert fold_pixel_differences(m) == 3
    assert fold_pixel_differences(m) == 0
    assert random_student(0) is not None  # the plain test network still builds


def test_a_config_trains_a_student_with_difference_terms_and_the_export_runs_in_the_runtime(tmp_path):
    # The whole path: a TOML-style config names the kinds, a real training step moves the added
    # terms away from zero, the saved model rebuilds them, and `python -m convert export` writes a
    # plain-convolution file whose output through the runtime is the trained (unfolded) network's.
    from convert.__main__ import main as convert_main
    from datasets import sample_bsds_tree
    from edgesdk.runtime import load
    from training.checkpoint import load_model
    from training.config import from_dict
    from training.train import Trainer

    data = sample_bsds_tree(tmp_path / "bsds", {"train": None, "val": None, "test": None})
    kinds = ["cv+cd", "cv+ad", "cv+rd"]
    cfg = from_dict({
        "run": {"name": "pdc", "iterations": 2, "batch": 2, "bf16": False, "workers": 0, "threads": 1},
        "model": {"kind": "student", "preset": "so-model", "init": "", "pdc": kinds},
        "data": {"splits": ["train"], "crop": 64},
        "optim": {"lr": 1e-2, "warmup": 1},
    })
    trainer = Trainer(cfg, tmp_path / "run", data_root=data)
    assert trainer.fit()
    ckpt = trainer.save_final()
    model = load_model(ckpt).eval()
    dw = [model.backbone.features[i].conv[-3][0] for i in (1, 2, 3)]
    assert [c.kind for c in dw] == kinds
    assert all(getattr(c, f"weight_{k[3:]}").abs().max() > 0 for c, k in zip(dw, kinds))

    rc = convert_main(["export", "--ckpt", str(ckpt), "--name", "m", "--out", str(tmp_path / "out"), "--formats",
                       "fp32", "--data", str(data), "--buckets", "64x96", "--calib", "1", "--threads", "1"])
    assert rc == 0
    det = load(tmp_path / "out" / "m-fp32.json")
    x = np.random.default_rng(0).normal(size=(64, 96, 3)).astype(np.float32)
    with torch.no_grad():
        ref = torch.sigmoid(model(torch.from_numpy(x).permute(2, 0, 1)[None]).fused)[0, 0].numpy()
    np.testing.assert_allclose(det.infer(x)[0], ref, atol=1e-4)


def test_profile_reports_a_config_as_exported(capsys):
    # `python -m training profile --config`: the folded network. model-pdc's two radial blocks get
    # 5x5 depthwise kernels: 16 more multiply-adds per output pixel of 144 channels at stride 4 and of
    # 192 channels at stride 8 (the hand count of test_a_saved_student_keeps_its_kinds...).
    from datasets import REPO
    from training.__main__ import main

    assert main(["profile", "--size", "320", "--config", str(REPO / "training/configs/model-pdc.toml")]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    gflops = {name: float(row[row.index("GFLOPs@320x320") + 1]) for name, row in rows.items()}
    extra = 2 * 16 * (144 * 80 * 80 + 192 * 40 * 40) / 1e9  # 0.039; the table prints 3 decimals
    assert gflops["model-pdc"] - gflops["student:model"] == pytest.approx(extra, abs=1.5e-3)
