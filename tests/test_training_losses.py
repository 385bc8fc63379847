"""Each loss against a value computed by hand on a tiny tensor."""

import math

import pytest

torch = pytest.importorskip("torch")

from training.data import IGNORE, edge_label  # noqa: E402
from training.losses import (  # noqa: E402
    KnowledgeAdaptor,
    agreement_bce,
    balanced_bce,
    balanced_bce_on_probabilities,
    balance_weights,
    boundary_tracing_loss,
    deep_supervision,
    dice_loss,
    hinton_kd,
    teacher_logits,
    texture_suppression_loss,
)


def test_balanced_bce_by_hand():
    # Pixels: edge (logit 0), non-edge (0), non-edge (2), ignored (5).
    logits = torch.tensor([[[[0.0, 0.0], [2.0, 5.0]]]])
    label = torch.tensor([[[[1, 0], [0, IGNORE]]]], dtype=torch.uint8)
    # P = 1, N = 2: edges weigh 2/3, non-edges 1.1 * 1/3.
    expected = 2 / 3 * math.log(2) + 1.1 / 3 * (math.log(2) + math.log(1 + math.e**2))
    assert balanced_bce(logits, label).item() == pytest.approx(expected, rel=1e-6)


def test_balanced_bce_averages_images_of_a_batch():
    one = torch.tensor([[[[0.0, 0.0]]]])
    lab = torch.tensor([[[[1, 0]]]], dtype=torch.uint8)
    # P = N = 1: weights 1/2 and 1.1/2; both logits 0 -> (0.5 + 0.55) ln 2 per image.
    assert balanced_bce(one, lab).item() == pytest.approx(1.05 * math.log(2))
    assert balanced_bce(one.repeat(3, 1, 1, 1), lab.repeat(3, 1, 1, 1)).item() == pytest.approx(1.05 * math.log(2))


def test_dice_loss_by_hand():
    # Pixels: edge, non-edge, ignored, non-edge; every logit 0, so p = 0.5 on the three labelled pixels.
    label = torch.tensor([[[[1, 0], [IGNORE, 0]]]], dtype=torch.uint8)
    logits = torch.zeros(1, 1, 2, 2)
    # sum p^2 = 0.75, sum g^2 = 1, 2 sum p g = 1; eps = 1 on both sides: (1.75 + 1) / (1 + 1).
    assert dice_loss(logits, label).item() == pytest.approx(1.375)
    assert dice_loss(logits, label, eps=0.0).item() == pytest.approx(1.75)
    # A perfect map: p = 1 on the edge, 0 on the non-edges, anything on the ignored pixel.
    perfect = torch.tensor([[[[40.0, -40.0], [40.0, -40.0]]]])
    assert dice_loss(perfect, label, eps=0.0).item() == pytest.approx(1.0)
    # A thick map (the non-edges at 0.5 too) scores worse than the thin one of the same recall.
    thick = torch.tensor([[[[40.0, 0.0], [0.0, 0.0]]]])
    assert dice_loss(thick, label, eps=0.0).item() == pytest.approx((1 + 0.5 + 1) / 2)


def test_dice_loss_skips_images_without_edges_but_counts_them_in_the_batch():
    label = torch.tensor([[[[1, 0], [IGNORE, 0]]], [[[0, 0], [0, 0]]]], dtype=torch.uint8)
    logits = torch.zeros(2, 1, 2, 2)
    assert dice_loss(logits, label).item() == pytest.approx(1.375 / 2)
    logits.requires_grad_(True)
    dice_loss(logits, label).backward()
    assert torch.all(logits.grad[1] == 0) and torch.all(torch.isfinite(logits.grad))
    assert logits.grad[0, 0, 1, 0] == 0  # the ignored pixel gets no gradient
    assert logits.grad[0, 0, 0, 0] < 0 < logits.grad[0, 0, 0, 1]  # raise the edge, lower the non-edge


def test_agreement_bce_by_hand():
    # Pixels: agreement 1 (logit 0), 0.25 (logit 0), 0 (logit 2), outside the image (-1, logit 5).
    logits = torch.tensor([[[[0.0, 0.0], [2.0, 5.0]]]])
    agreement = torch.tensor([[[[1.0, 0.25], [0.0, -1.0]]]])
    # P = 1.25, N = 0 + 0.75 + 1 = 1.75: edge parts weigh 1.75/3, non-edge parts 1.1 * 1.25/3.
    wp, wn = 1.75 / 3, 1.1 * 1.25 / 3
    ln2, sp2 = math.log(2), math.log(1 + math.e**2)  # softplus(0), softplus(2)
    expected = wp * (1 * ln2 + 0.25 * ln2) + wn * (0.75 * ln2 + 1 * sp2)
    assert agreement_bce(logits, agreement).item() == pytest.approx(expected, rel=1e-6)


def test_agreement_bce_with_all_or_nothing_targets_is_rcf_balanced_bce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 8, 9, generator=g)
    label = torch.randint(0, 2, (3, 1, 8, 9), generator=g, dtype=torch.uint8)
    label[0, 0, :2] = IGNORE
    agreement = label.float()
    agreement[label == IGNORE] = -1.0
    assert agreement_bce(logits, agreement).item() == pytest.approx(balanced_bce(logits, label).item(), rel=1e-6)


def _logits(p):
    p = torch.tensor(p, dtype=torch.float64)
    return (torch.log(p) - torch.log1p(-p)).clamp(min=-60.0)[None, None]  # p = 0 -> sigmoid 1e-26


def test_boundary_tracing_loss_by_hand():
    # 5x5, one edge pixel in the centre with p 0.5, its eight neighbours 0.1, the rest 0; radius 1.
    p = [[0.0] * 5 for _ in range(5)]
    for r in (1, 2, 3):
        for c in (1, 2, 3):
            p[r][c] = 0.1
    p[2][2] = 0.5
    label = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    label[0, 0, 2, 2] = 1
    # At the edge pixel: on the edge 0.5, beside it 8 x 0.1 -> -log(0.5 / 1.3).
    assert boundary_tracing_loss(_logits(p), label, radius=1).item() == pytest.approx(math.log(1.3 / 0.5), rel=1e-6)
    # An ignored pixel counts as an edge: (2, 3) joins E. At the centre: E 0.5 + 0.1, beside the other 7 x 0.1.
    # At (2, 3): E 0.6 again; beside it (1, 2), (3, 2), (1, 3), (3, 3) at 0.1 and column 4 at 0 -> 0.4.
    label[0, 0, 2, 3] = IGNORE
    expected = math.log(1.3 / 0.6) + math.log(1.0 / 0.6)
    assert boundary_tracing_loss(_logits(p), label, radius=1).item() == pytest.approx(expected, rel=1e-6)
    # Two images: the batch mean.
    two = boundary_tracing_loss(_logits(p).repeat(2, 1, 1, 1), label.repeat(2, 1, 1, 1), radius=1)
    assert two.item() == pytest.approx(expected, rel=1e-6)


def test_boundary_tracing_prefers_the_same_probability_on_the_edge_to_beside_it():
    # A vertical edge in column 3 of a 7x7 crop; the same total probability per row, on it or smeared over it.
    label = torch.zeros(1, 1, 7, 7, dtype=torch.uint8)
    label[0, 0, :, 3] = 1
    crisp = [[0.9 if c == 3 else 0.0 for c in range(7)] for _ in range(7)]
    thick = [[0.3 if c in (2, 3, 4) else 0.0 for c in range(7)] for _ in range(7)]
    a = boundary_tracing_loss(_logits(crisp), label).item()
    b = boundary_tracing_loss(_logits(thick), label).item()
    assert a < 1e-6 < b
    # Each edge pixel's window holds as much probability in each side column as on the edge: -log(1/3) apiece.
    assert b == pytest.approx(7 * math.log(3.0), rel=1e-6)


def test_texture_suppression_loss_by_hand():
    # 5x5, p 0.09 everywhere, one edge in the centre; radius 1: the outer ring (16 pixels) is "far".
    # Zeros outside the image: a corner's 3x3 mean is 4 x 0.09 / 9 = 0.04, the other ring pixels' 6 x 0.09 / 9.
    p = [[0.09] * 5 for _ in range(5)]
    label = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    label[0, 0, 2, 2] = 1
    expected = -4 * math.log(1 - 0.04) - 12 * math.log(1 - 0.06)
    assert texture_suppression_loss(_logits(p), label, radius=1).item() == pytest.approx(expected, rel=1e-6)
    # Radius 2 reaches every pixel of the 5x5 crop: nothing is far from the edge.
    assert texture_suppression_loss(_logits(p), label, radius=2).item() == 0.0
    # An ignored pixel counts as an edge: at (0, 0), only the pixels within radius 1 of (2, 2) or (0, 0) are near.
    label[0, 0, 0, 0] = IGNORE
    far_corners, far_sides = 3, 12 - 2  # (0, 0) itself and its two ring neighbours (0, 1), (1, 0) are no longer far
    expected = -far_corners * math.log(1 - 0.04) - far_sides * math.log(1 - 0.06)
    assert texture_suppression_loss(_logits(p), label, radius=1).item() == pytest.approx(expected, rel=1e-6)


def test_deep_supervision_sums_a_loss_over_fused_and_side_outputs():
    label = torch.tensor([[[[1, 0], [IGNORE, 0]]]], dtype=torch.uint8)
    z = torch.zeros(1, 1, 2, 2)
    assert deep_supervision(z, [z, z], label, loss=dice_loss).item() == pytest.approx(3 * 1.375)
    assert deep_supervision(z, [z], label).item() == pytest.approx(2 * balanced_bce(z, label).item())


def test_balanced_bce_on_probabilities_by_hand():
    # The same four pixels as above, given as probabilities: sigmoid(0) = 0.5, sigmoid(2).
    prob = torch.sigmoid(torch.tensor([[[[0.0, 0.0], [2.0, 5.0]]]]))
    label = torch.tensor([[[[1, 0], [0, IGNORE]]]], dtype=torch.uint8)
    expected = 2 / 3 * math.log(2) + 1.1 / 3 * (math.log(2) + math.log(1 + math.e**2))
    assert balanced_bce_on_probabilities(prob, label).item() == pytest.approx(expected, rel=1e-5)


def test_balanced_bce_on_probabilities_clamps_the_value_but_not_the_gradient():
    # An edge at p = 0 (an int8 output rounds there): the loss is -ln(eps) * weight, finite, and the
    # gradient is that of -ln(p) at p = eps, not the zero a plain clamp would give.
    eps = 1.0 / 512
    prob = torch.tensor([[[[0.0, 0.5]]]], requires_grad=True)
    label = torch.tensor([[[[1, 0]]]], dtype=torch.uint8)
    loss = balanced_bce_on_probabilities(prob, label, eps=eps)
    # P = N = 1: the edge weighs 1/2, the non-edge 1.1/2.
    assert loss.item() == pytest.approx(0.5 * -math.log(eps) + 0.55 * math.log(2), rel=1e-5)
    loss.backward()
    assert prob.grad[0, 0, 0, 0].item() == pytest.approx(-0.5 / eps, rel=1e-5)
    assert prob.grad[0, 0, 0, 1].item() == pytest.approx(0.55 / 0.5, rel=1e-5)


def kl_bernoulli(p, q):
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_hinton_kd_by_hand(temperature):
    t_logit, s_logit = math.log(3.0), -1.0
    p_t = 1 / (1 + math.exp(-t_logit / temperature))
    p_s = 1 / (1 + math.exp(-s_logit / temperature))
    expected = temperature**2 * kl_bernoulli(p_t, p_s)
    got = hinton_kd(torch.tensor([[[[s_logit]]]]), torch.tensor([[[[t_logit]]]]), temperature)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_hinton_kd_is_zero_when_student_equals_teacher_and_respects_mask():
    z = torch.randn(2, 1, 5, 5)
    assert hinton_kd(z, z, 3.0).item() == pytest.approx(0.0, abs=1e-5)
    s = torch.zeros(1, 1, 1, 2)
    t = torch.tensor([[[[5.0, 5.0]]]])
    half = hinton_kd(s, t, 1.0, weight=torch.tensor([[[[1.0, 0.0]]]]))
    assert half.item() == pytest.approx(hinton_kd(s, t, 1.0).item() / 2)


def test_class_balanced_hinton_kd_by_hand():
    # One edge among four labelled pixels and one ignored pixel: RCF's weights are
    # 3/4 for the edge, 1.1 * 1/4 for each non-edge and 0 for the ignored one.
    label = torch.tensor([[[[1.0, 0.0, 0.0, 0.0, float(IGNORE)]]]])
    target, weight = balance_weights(label)
    assert weight.flatten().tolist() == pytest.approx([0.75, 0.275, 0.275, 0.275, 0.0])
    assert target.flatten().tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    t_logits = [2.0, -1.0, 0.5, -3.0, 4.0]
    s_logits = [0.0, 0.0, -2.0, 1.0, -4.0]
    temperature = 2.0
    expected = 0.0
    for w, t, s in zip([0.75, 0.275, 0.275, 0.275, 0.0], t_logits, s_logits):
        p_t = 1 / (1 + math.exp(-t / temperature))
        p_s = 1 / (1 + math.exp(-s / temperature))
        expected += w * temperature**2 * kl_bernoulli(p_t, p_s)
    got = hinton_kd(torch.tensor([[s_logits]]), torch.tensor([[t_logits]]), temperature, weight=weight)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_adaptor_mse_by_hand():
    adaptor = KnowledgeAdaptor(2, 2)
    with torch.no_grad():
        adaptor.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        adaptor.proj.bias.zero_()
    # Student feature map: channel means 1 and 3 -> adapted (1, 6); teacher (2, 2).
    feats = torch.stack([torch.full((2, 2), 1.0), torch.tensor([[2.0, 4.0], [3.0, 3.0]])])[None]
    loss = adaptor.loss(feats, torch.tensor([[2.0, 2.0]]))
    assert loss.item() == pytest.approx(((1 - 2) ** 2 + (6 - 2) ** 2) / 2)


def test_teacher_logits():
    p = torch.tensor([0.5, 0.0, 1.0])
    z = teacher_logits(p)
    assert z[0].item() == pytest.approx(0.0, abs=1e-7)
    assert z[1].item() == pytest.approx(-math.log(509), rel=1e-5) and z[2].item() == pytest.approx(math.log(509), rel=1e-5)


def test_rcf_label_rule():
    import numpy as np

    a = np.array([[1, 1, 0, 0]], np.uint8)
    b = np.array([[1, 0, 1, 0]], np.uint8)
    c = np.array([[1, 0, 0, 0]], np.uint8)
    # Averages 1, 1/3, 1/3, 0 -> with eta 0.3: edge, edge, edge, non-edge; with eta 0.5: 1, ignore, ignore, 0.
    np.testing.assert_array_equal(edge_label([a, b, c], 0.3), [[1, 1, 1, 0]])
    np.testing.assert_array_equal(edge_label([a, b, c], 0.5), [[1, IGNORE, IGNORE, 0]])
