"""The evaluation's forward pass: single scale as before, and RCF's multi-scale test."""

import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need torch (pip install -e '.[dev]')")
cv2 = pytest.importorskip("cv2")

from torch import nn  # noqa: E402

from training.__main__ import parse_scales, scales_note  # noqa: E402
from training.evaluate import MULTI_SCALES, forward_scales, predict, side_outputs  # noqa: E402
from training.models.interface import CAFFE_VGG_INPUT, EdgeOutputs  # noqa: E402


class PixelNet(nn.Module):
    """A per-pixel network (a 1x1 convolution): its map of a uniform image is uniform at any scale."""

    INPUT = CAFFE_VGG_INPUT

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([0.01, -0.02, 0.03]).view(1, 3, 1, 1))
            self.conv.bias.fill_(0.1)

    def forward(self, x, with_features=False):
        return EdgeOutputs(self.conv(x), [], x if with_features else None)


def test_single_scale_is_the_padded_forward_bit_for_bit():
    # 37x53: not a multiple of the stride 32, so the forward reflection-pads to 64x64 and crops back.
    from training.checkpoint import build_model
    from training.data import to_input

    torch.manual_seed(0)
    model = build_model({"kind": "student"}).eval()
    bgr = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    padded = np.pad(bgr, ((0, 64 - 37), (0, 64 - 53), (0, 0)), mode="symmetric")
    with torch.inference_mode():
        # channels_last as the evaluation runs (another layout differs in the last bit).
        x = torch.from_numpy(to_input(padded, type(model).INPUT))[None].contiguous(memory_format=torch.channels_last)
        expected = torch.sigmoid(model(x).fused)[0, 0, :37, :53].numpy()
    np.testing.assert_array_equal(predict(model, bgr), expected)


def test_multi_scale_averages_instead_of_summing():
    # Uniform image through a per-pixel net: every scale gives the same value, sigmoid(w.x + b),
    # computed here by hand from the Caffe-VGG input (BGR minus the ImageNet mean).
    bgr = np.full((40, 60, 3), (200, 100, 50), np.uint8)
    x = np.array([200, 100, 50], np.float64) - np.array(CAFFE_VGG_INPUT.mean, np.float64)
    expected = 1 / (1 + np.exp(-(0.01 * x[0] - 0.02 * x[1] + 0.03 * x[2] + 0.1)))
    prob, feats = forward_scales(PixelNet(), bgr, MULTI_SCALES, with_features=True)
    assert prob.shape == (40, 60)
    np.testing.assert_allclose(prob, expected, rtol=1e-5)
    # The features (here the input itself) are pooled per scale and averaged: the uniform input.
    np.testing.assert_allclose(feats, x, rtol=1e-5)


def test_multi_scale_is_the_mean_of_the_resized_single_scale_maps():
    from training.checkpoint import build_model

    torch.manual_seed(1)
    model = build_model({"kind": "student"}).eval()
    bgr = np.random.default_rng(1).integers(0, 256, (48, 70, 3), dtype=np.uint8)
    maps = []
    for s in MULTI_SCALES:
        small = cv2.resize(bgr, (round(70 * s), round(48 * s)), interpolation=cv2.INTER_LINEAR)
        maps.append(cv2.resize(predict(model, small), (70, 48), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_allclose(predict(model, bgr, MULTI_SCALES), np.mean(maps, axis=0), atol=1e-6)


def test_flip_maps_the_mirrored_forward_back_onto_the_image():
    # A per-pixel net commutes with mirroring: averaged with the flipped image's map, mirrored back,
    # the map is the plain one. Forgetting to mirror back would average each map with its mirror.
    bgr = np.random.default_rng(2).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    plain = predict(PixelNet(), bgr)
    assert not np.allclose(plain, plain[:, ::-1], atol=1e-3)
    np.testing.assert_allclose(predict(PixelNet(), bgr, flip=True), plain, atol=1e-6)
    np.testing.assert_allclose(predict(PixelNet(), bgr, MULTI_SCALES, flip=True), predict(PixelNet(), bgr, MULTI_SCALES),
                               atol=1e-6)


def test_flip_is_the_mean_with_the_mirrored_image_s_map():
    from training.checkpoint import build_model

    torch.manual_seed(2)
    model = build_model({"kind": "student"}).eval()
    bgr = np.random.default_rng(3).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    mirrored = predict(model, np.ascontiguousarray(bgr[:, ::-1]))[:, ::-1]
    np.testing.assert_allclose(predict(model, bgr, flip=True), (predict(model, bgr) + mirrored) / 2, atol=1e-6)


def small_rcf():
    """A narrow RCF (no BatchNorm, no dropout: training mode computes the same convolutions)."""
    from training.models.rcf import RCF

    torch.manual_seed(4)
    return RCF(channels=((8, 8), (8, 8), (8, 8, 8), (8, 8, 8), (8, 8, 8)), mid=4)


def test_late_merging_is_the_mean_of_the_fused_and_side_probabilities():
    # Reference: the training forward, which upsamples every side to full size for deep supervision
    # (and fuses them with an einsum, not the inference path's per-side sum), run by hand here.
    from training.data import to_input

    model = small_rcf()
    with torch.no_grad():  # a non-uniform fusion, so a wrong weighting of the sides would show
        model.fusion.weight.copy_(torch.tensor([0.5, -0.2, 0.9, 0.3, 1.4]))
        model.fusion.bias.fill_(-0.3)
    bgr = np.random.default_rng(5).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    padded = np.pad(bgr, ((0, 64 - 37), (0, 64 - 53), (0, 0)), mode="symmetric")
    model.train()
    with torch.no_grad():
        out = model(torch.from_numpy(to_input(padded, type(model).INPUT))[None])
    maps = [torch.sigmoid(t)[0, 0, :37, :53].numpy() for t in [out.fused, *out.sides]]
    assert len(maps) == 6
    merged = predict(model, bgr, merge_sides=True)
    np.testing.assert_allclose(merged, np.mean(maps, axis=0), atol=1e-5)
    np.testing.assert_allclose(predict(model, bgr), maps[0], atol=1e-5)  # and the fused map alone without it
    assert np.abs(merged - maps[0]).max() > 0.01  # the sides changed the map: the test can tell them apart


def test_late_merging_of_hed_whose_sides_come_with_every_forward():
    # HED (Xie and Tu's own late merging) returns its sides in eval mode too; reference: its forward by hand.
    from training.data import to_input
    from training.models.hed import HED

    torch.manual_seed(6)
    model = HED(channels=((8, 8), (8, 8), (8, 8, 8), (8, 8, 8), (8, 8, 8))).eval()
    bgr = np.random.default_rng(6).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    padded = np.pad(bgr, ((0, 64 - 40), (0, 64 - 50), (0, 0)), mode="symmetric")
    with torch.no_grad():
        out = model(torch.from_numpy(to_input(padded, type(model).INPUT))[None])
    maps = [torch.sigmoid(t)[0, 0, :40, :50].numpy() for t in [out.fused, *out.sides]]
    assert len(maps) == 6
    np.testing.assert_allclose(predict(model, bgr, merge_sides=True), np.mean(maps, axis=0), atol=1e-5)
    np.testing.assert_allclose(predict(model, bgr), maps[0], atol=1e-5)


def test_late_merging_leaves_the_model_as_it_was():
    model = small_rcf().eval()
    x = torch.zeros(1, 3, 32, 32)
    predict(model, np.zeros((32, 32, 3), np.uint8), merge_sides=True)
    assert model(x).sides == []  # inference builds no full-size sides again
    with pytest.raises(RuntimeError, match="boom"):
        with side_outputs(model):
            assert len(model(x).sides) == 5
            raise RuntimeError("boom")
    assert model(x).sides == []


def test_late_merging_refuses_a_model_without_side_outputs():
    with pytest.raises(ValueError, match="PixelNet has no side outputs"):
        predict(PixelNet(), np.zeros((8, 8, 3), np.uint8), merge_sides=True)


@pytest.mark.parametrize("bad", [(), (0.0,), (1.0, -0.5)])
def test_non_positive_scales_are_refused(bad):
    with pytest.raises(ValueError, match="scales"):
        forward_scales(PixelNet(), np.zeros((8, 8, 3), np.uint8), bad)


def test_cli_scales_parse_and_refuse():
    assert parse_scales("0.5,1,1.5") == MULTI_SCALES
    for text in ("a,1", "0,1", "1,-2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_scales(text)


def test_results_note_names_one_rescaled_forward_apart_from_a_multi_scale_test():
    assert scales_note((1.25,)) == "one forward at input scale 1.25 (map resized back)"
    assert scales_note(MULTI_SCALES) == "multi-scale test, scales 0.5,1.0,1.5"
    assert scales_note((1.0,), flip=True) == "averaged with the horizontally flipped image's map"
    assert scales_note(MULTI_SCALES, flip=True) == (
        "multi-scale test, scales 0.5,1.0,1.5, averaged with the horizontally flipped image's map")
    assert scales_note((1.0,), flip=True, merge_sides=True) == (
        "averaged with the horizontally flipped image's map, "
        "late merging: the fused and every side output's map averaged")
