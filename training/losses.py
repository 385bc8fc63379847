"""Losses: RCF's class-balanced BCE, Dice and CATS' tracing terms for crisp edges, Hinton distillation, the adaptor.

All per-pixel losses are summed over the pixels of an image and averaged over
the batch, as RCF sums them; learning rates are set for that scale.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def balance_weights(label: torch.Tensor, neg_weight: float = 1.1):
    """RCF's per-image targets and class weights (edges N/(P+N), non-edges neg_weight*P/(P+N), ignored 0).

    Returns ``(target, weight)``, both (B, 1, H, W) float.
    """
    pos = (label == 1).float()
    neg = (label == 0).float()
    n_pos = pos.sum(dim=(1, 2, 3), keepdim=True)
    n_neg = neg.sum(dim=(1, 2, 3), keepdim=True)
    total = (n_pos + n_neg).clamp(min=1)
    return pos, pos * (n_neg / total) + neg * (neg_weight * n_pos / total)


def balanced_bce(logits: torch.Tensor, label: torch.Tensor, neg_weight: float = 1.1) -> torch.Tensor:
    """RCF's class-balanced binary cross-entropy.

    Per image, with ``P`` edge and ``N`` non-edge pixels (ignored pixels
    excluded): edges weigh ``N / (P + N)``, non-edges ``neg_weight * P / (P + N)``.

    Parameters
    ----------
    logits : (B, 1, H, W)
    label : (B, 1, H, W) with 1 edge, 0 non-edge, IGNORE ignored.
    neg_weight : RCF's lambda (1.1).

    Returns
    -------
    Scalar: the weighted sum over pixels, averaged over the batch.

    References
    ----------
    Y. Liu et al., "Richer Convolutional Features for Edge Detection", TPAMI 2019, Eq. 1.
    """
    target, weight = balance_weights(label, neg_weight)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target, weight=weight, reduction="sum")
    return loss / logits.shape[0]


def agreement_bce(logits: torch.Tensor, agreement: torch.Tensor, neg_weight: float = 1.1) -> torch.Tensor:
    """RCF's class-balanced BCE against the annotators' agreement instead of a thresholded label.

    BSDS500 has 4-9 annotations an image; RCF's rule keeps pixels more than
    eta of them mark as edges and drops the pixels some but fewer mark. Here
    every pixel's target is the fraction ``t`` of annotators marking it, so a
    contour all of them drew weighs more than one a single annotator drew and
    no pixel is dropped. The class balance is RCF's with the expected counts:
    per image ``P = sum t``, ``N = sum (1 - t)`` over the valid pixels; the
    edge part of a pixel weighs ``N / (P + N)``, its non-edge part
    ``neg_weight * P / (P + N)``. With targets of 0 and 1 only this is
    :func:`balanced_bce`.

    Parameters
    ----------
    logits, neg_weight : as for :func:`balanced_bce`.
    agreement : (B, 1, H, W) in [0, 1]; negative for pixels left out (outside the image).

    Returns
    -------
    As :func:`balanced_bce`.

    References
    ----------
    RCF's loss (:func:`balanced_bce`); the soft labels follow the annotator-aware view of C. Zhou et al.,
    "The Treasure Beneath Multiple Annotations: An Uncertainty-aware Edge Detector", CVPR 2023.
    """
    valid = (agreement >= 0).float()
    t = agreement.float().clamp(min=0.0) * valid
    n_pos = t.sum(dim=(1, 2, 3), keepdim=True)
    n_neg = ((1.0 - t) * valid).sum(dim=(1, 2, 3), keepdim=True)
    total = (n_pos + n_neg).clamp(min=1)
    x = logits.float()
    # -t log(sigmoid x) = t softplus(-x); -(1 - t) log(1 - sigmoid x) = (1 - t) softplus(x)
    loss = (n_neg / total) * t * F.softplus(-x) + (neg_weight * n_pos / total) * (1.0 - t) * valid * F.softplus(x)
    return loss.sum() / logits.shape[0]


def balanced_bce_on_probabilities(
    prob: torch.Tensor, label: torch.Tensor, neg_weight: float = 1.1, eps: float = 1.0 / 512
) -> torch.Tensor:
    """:func:`balanced_bce` for a network whose output is already the probability.

    The int8 deploy graph ends in its sigmoid (convert/deploy.py), so
    quantisation-aware fine-tuning sees probabilities, and a fake-quantised
    one is often exactly 0 or 1. The clamp to [eps, 1 - eps] (half an 8-bit
    step) keeps the log finite; it is straight-through, so a missed edge at
    p = 0 still gets a gradient, as it would from the logits.

    Parameters
    ----------
    prob : (B, 1, H, W) in [0, 1].
    label, neg_weight : as for :func:`balanced_bce`.
    eps : the clamp.

    Returns
    -------
    Scalar: the weighted sum over pixels, averaged over the batch.
    """
    target, weight = balance_weights(label, neg_weight)
    p = prob.float()
    p = p + (p.clamp(eps, 1 - eps) - p).detach()
    loss = -(weight * (target * torch.log(p) + (1 - target) * torch.log1p(-p))).sum()
    return loss / prob.shape[0]


def dice_loss(logits: torch.Tensor, label: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """The Dice loss of Deng et al. for crisp edges: ``(sum p^2 + sum g^2) / (2 sum p g)`` per image.

    A measure of the whole image's overlap, so, unlike a per-pixel BCE, it does
    not reward spreading probability over the pixels beside an edge: thick,
    blurred maps score worse than thin ones of the same recall.

    Parameters
    ----------
    logits : (B, 1, H, W)
    label : (B, 1, H, W) with 1 edge, 0 non-edge, IGNORE ignored (left out of both sums).
    eps : added to both sums (one pixel's worth), so a map of zeros has a finite loss and gradient.

    Returns
    -------
    Scalar: the per-image ratio (about 1 for a perfect map, larger otherwise), summed over the images
    that have edge pixels and divided by the batch size. A crop without edges contributes 0: the ratio
    is not defined for it (it would only push every probability to 0, which the BCE already does).

    References
    ----------
    R. Deng, C. Shen, S. Liu, H. Wang and X. Liu, "Learning to Predict Crisp Boundaries", ECCV 2018, Eq. 2.
    """
    g = (label == 1).float()
    p = torch.sigmoid(logits.float()) * ((label == 0) | (label == 1))
    num = (p * p).sum(dim=(1, 2, 3)) + (g * g).sum(dim=(1, 2, 3))
    den = 2 * (p * g).sum(dim=(1, 2, 3))
    has_edges = g.sum(dim=(1, 2, 3)) > 0
    return torch.where(has_edges, (num + eps) / (den + eps), torch.zeros_like(num)).sum() / logits.shape[0]


def _box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum of each pixel's (2r+1)^2 window, zeros outside the image (per channel of a (B, 1, H, W) map)."""
    k = torch.ones(1, 1, 2 * radius + 1, 2 * radius + 1, dtype=x.dtype, device=x.device)
    return F.conv2d(x, k, padding=radius)


def boundary_tracing_loss(logits: torch.Tensor, label: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """CATS' boundary tracing loss: near an edge, the probability should sit on the edge, not beside it.

    For every edge pixel ``p``, with ``E`` the edge pixels and ``T`` the non-edge
    pixels within ``radius`` of an edge: ``-log( S_E(p) / (S_E(p) + S_T(p)) )``,
    where ``S_X(p)`` sums the probabilities of the pixels of ``X`` in the
    (2r+1)^2 window around ``p``. A map that blurs an edge over its neighbours
    pays for it even where the BCE, which looks at each pixel alone, would not.

    Parameters
    ----------
    logits : (B, 1, H, W)
    label : (B, 1, H, W) with 1 edge, 0 non-edge, IGNORE ignored. As in CATS, ignored pixels (the
        annotators' uncertain pixels, and here also those a rotation brought in from outside the image)
        count as edges for this term.
    radius : the window's half size (CATS: 2).

    Returns
    -------
    Scalar: the sum over edge pixels, averaged over the batch.

    References
    ----------
    L. Huan, N. Xue, X. Zheng, W. He, J. Gong and G.-S. Xia, "Unmixing Convolutional Features for Crisp
    Edge Detection", TPAMI 2022, Eq. 4 (the reference code's ``bdrloss``).
    """
    p = torch.sigmoid(logits.float())
    edge = (label != 0).float()
    near = ((_box_sum(edge, radius) > 0) & (edge == 0)).float()
    on_edges, beside = _box_sum(p * edge, radius), _box_sum(p * near, radius)
    ratio = (on_edges / (on_edges + beside + 1e-10)).clamp(1e-10, 1.0)
    return -(edge * torch.log(ratio)).sum() / logits.shape[0]


def texture_suppression_loss(logits: torch.Tensor, label: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """CATS' texture suppression loss: away from every edge, each 3x3 patch's mean probability is pushed to 0.

    For every pixel farther than ``radius`` from any edge: ``-log(1 - m(p))``,
    with ``m(p)`` the mean probability of its 3x3 patch (zeros outside the
    image), which suppresses responses to texture more smoothly than the BCE.

    Parameters
    ----------
    logits, label, radius : as for :func:`boundary_tracing_loss` (ignored pixels count as edges).

    Returns
    -------
    Scalar: the sum over those pixels, averaged over the batch.

    References
    ----------
    Huan et al., TPAMI 2022, Eq. 5 (the reference code's ``textureloss``).
    """
    p = torch.sigmoid(logits.float())
    far = (_box_sum((label != 0).float(), radius) == 0).float()
    mean3 = _box_sum(p, 1) / 9.0
    return -(far * torch.log((1.0 - mean3).clamp(1e-10, 1.0))).sum() / logits.shape[0]


def deep_supervision(
    outputs_fused: torch.Tensor, sides: Sequence[torch.Tensor], label: torch.Tensor, loss=balanced_bce
) -> torch.Tensor:
    """RCF's total: `loss` (the balanced BCE) of the fused output plus that of every side output."""
    total = loss(outputs_fused, label)
    for s in sides:
        total = total + loss(s, label)
    return total


def teacher_logits(prob: torch.Tensor, eps: float = 1.0 / 510) -> torch.Tensor:
    """Logits of cached teacher probabilities (8-bit, so clipped to half a step from 0 and 1)."""
    p = prob.clamp(eps, 1 - eps)
    return torch.log(p) - torch.log1p(-p)


def hinton_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Hinton distillation for per-pixel binary outputs.

    Each pixel is a Bernoulli variable; the teacher's and the student's
    logits are divided by T and the KL divergence KL(p_t || p_s) is taken,
    scaled by T^2 so gradients keep their size as T grows.

    Parameters
    ----------
    student, teacher : (B, 1, H, W) logits.
    temperature : T >= 1.
    weight : optional (B, 1, H, W) per-pixel weights (a 0/1 mask, or RCF's
        class balance from :func:`balance_weights`; see below).

    Returns
    -------
    Scalar: T^2 * KL (weighted) summed over pixels, averaged over the batch.

    Notes
    -----
    Unweighted, every pixel counts 1 while RCF's balanced BCE gives the
    non-edge majority about P/(P+N) each, so the distillation sum comes out
    9-14x the ground-truth term (fused and side outputs; measured over the
    distillation runs, docs/results.md) and ``alpha = 0.5`` gives it over 90 %
    of the loss. Weighting the KL with the same class balance puts both terms
    on one scale: the fused output's ground-truth term with the teacher's
    softened probabilities as targets.

    References
    ----------
    G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a Neural Network", 2015.
    """
    t = temperature
    s_scaled, t_scaled = student.float() / t, teacher.float() / t
    p_t = torch.sigmoid(t_scaled)
    # KL(p_t || p_s) = BCE(p_s; p_t) - H(p_t)
    kl = F.binary_cross_entropy_with_logits(s_scaled, p_t, reduction="none") - F.binary_cross_entropy_with_logits(
        t_scaled, p_t, reduction="none"
    )
    if weight is not None:
        kl = kl * weight.float()
    return t * t * kl.sum() / student.shape[0]


class KnowledgeAdaptor(nn.Module):
    """Maps the student's globally pooled last-layer features to the teacher's size.

    ``loss(student_features, teacher_pooled)`` is the MSE between the adapted
    student vector and the teacher's pooled features (cached, so the teacher
    never runs in the loop).
    """

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.proj = nn.Linear(student_channels, teacher_channels)

    def forward(self, student_features: torch.Tensor) -> torch.Tensor:
        pooled = student_features.float().mean(dim=(2, 3))
        return self.proj(pooled)

    def loss(self, student_features: torch.Tensor, teacher_pooled: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self(student_features), teacher_pooled.float())
