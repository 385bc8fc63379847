"""The models: sizes in and out, the fused head's two orders, weights loading, pruning."""

import pytest

torch = pytest.importorskip("torch")

from training.models.fusion import SideFusion  # noqa: E402
from training.models.mobilenet import MobileNetV2Backbone  # noqa: E402
from training.models.rcf import RCF  # noqa: E402
from training.models.student import MODEL, SO_MODEL, EdgeStudent  # noqa: E402
from training.paths import weights_path  # noqa: E402
from training.pruning import plan_pruning, prune_rcf  # noqa: E402


@pytest.mark.parametrize("make", [lambda: EdgeStudent(MODEL), lambda: EdgeStudent(SO_MODEL), lambda: RCF()])
@pytest.mark.parametrize("size", [(321, 481), (17, 23), (1, 1)])
def test_outputs_keep_the_input_size(make, size):
    model = make()
    # Training needs batch 2: BatchNorm cannot normalise one value per channel
    # (a stride-32 stage of a tiny image is 1x1).
    x = torch.rand(2, 3, *size)
    model.train()
    out = model(x, with_features=True)
    assert out.fused.shape == (2, 1, *size) and all(s.shape == (2, 1, *size) for s in out.sides)
    assert out.features is not None and out.features.shape[1] == model.feature_channels
    model.eval()
    x = x[:1]
    with torch.inference_mode():
        assert model(x).fused.shape == (1, 1, *size)


def test_student_at_1000x1000():
    with torch.inference_mode():
        assert EdgeStudent(MODEL).eval()(torch.rand(1, 3, 1000, 1000)).fused.shape == (1, 1, 1000, 1000)


def test_fusion_inference_order_equals_training_order():
    fusion = SideFusion(3)
    with torch.no_grad():
        fusion.weight.copy_(torch.tensor([0.3, -1.2, 2.0]))
        fusion.bias.fill_(0.7)
    sides = [torch.randn(2, 1, 40, 60), torch.randn(2, 1, 20, 30), torch.randn(2, 1, 5, 8)]
    fused_train, full = fusion.train()(sides, (80, 120))
    fused_eval, none = fusion.eval()(sides, (80, 120))
    assert len(full) == 3 and none == []
    torch.testing.assert_close(fused_eval, fused_train, rtol=1e-5, atol=1e-5)


def test_mobilenet_backbone_takes_all_imagenet_weights():
    path = weights_path("mobilenet_v2_imagenet.pth")
    if not path.is_file():
        pytest.skip(f"{path} not found")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    backbone = MobileNetV2Backbone(last_channels=1280)
    loaded = backbone.load_imagenet(sd)
    assert set(loaded) == set(backbone.state_dict())  # every backbone tensor came from ImageNet
    assert not any(k.startswith("classifier") for k in loaded)


def test_pruning_keeps_outputs_when_pruned_filters_are_zero():
    torch.manual_seed(0)
    model = RCF().eval()
    plan = plan_pruning(model, 0.5)
    # Zero every filter (and bias) the plan drops: they output ReLU(0) = 0, so
    # removing them cannot change anything downstream.
    with torch.no_grad():
        for block, keeps in zip(model.backbone.blocks, plan):
            for conv, keep in zip(block, keeps):
                drop = torch.ones(conv.out_channels, dtype=torch.bool)
                drop[keep] = False
                conv.weight[drop] = 0
                conv.bias[drop] = 0
    pruned = prune_rcf(model, plan).eval()
    x = torch.rand(1, 3, 64, 80)
    with torch.inference_mode():
        torch.testing.assert_close(pruned(x).fused, model(x).fused, rtol=1e-4, atol=1e-4)
    full = sum(p.numel() for p in model.parameters())
    small = sum(p.numel() for p in pruned.parameters())
    assert small < 0.3 * full  # half the filters of every conv: about a quarter of the weights
    assert pruned.channels[0] == [32, 32] and pruned.channels[4] == [256, 256, 256]


def test_global_pruning_keeps_a_minimum_per_layer():
    torch.manual_seed(1)
    model = RCF()
    with torch.no_grad():
        model.backbone.blocks[2][1].weight.mul_(1e-3)  # a layer of tiny filters
    plan = plan_pruning(model, 0.6, scope="global", min_keep=0.2)
    assert len(plan[2][1]) >= 0.2 * 256
    kept = sum(len(k) for b in plan for k in b)
    total = sum(c for b in model.channels for c in b)
    assert kept <= 0.45 * total
