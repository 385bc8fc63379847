"""BSDS500 training data: labels, augmentation on crops, and cached teacher targets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from edgesdk.eval import read_ground_truth
from training.models.interface import InputSpec

IGNORE = 2  # label value of pixels excluded from the loss


def edge_label(annotations: Sequence[np.ndarray], eta: float) -> np.ndarray:
    """RCF's rule on the annotators' average: > eta edge (1), 0 non-edge (0), in between ignored (2).

    Returns a uint8 map.
    """
    mean = np.mean([a.astype(np.float32) for a in annotations], axis=0)
    return soft_to_label(mean, eta)


def soft_to_label(mean: np.ndarray, eta: float) -> np.ndarray:
    label = np.full(mean.shape, IGNORE, np.uint8)
    label[mean > eta] = 1
    label[mean <= 0] = 0
    return label


def list_split(root: Path, splits: Sequence[str]) -> List[Tuple[str, Path, Path]]:
    """(id, image, ground truth) of every image of the given BSDS500 splits."""
    items = []
    for split in splits:
        for img in sorted((root / "images" / split).glob("*.jpg")):
            gt = root / "groundTruth" / split / f"{img.stem}.mat"
            if not gt.is_file():
                raise FileNotFoundError(f"{gt}: ground truth missing for {img}")
            items.append((img.stem, img, gt))
    if not items:
        raise FileNotFoundError(f"{root}: no images in splits {list(splits)}")
    return items


def to_input(bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(3, H, W) float32 model input from a BGR uint8 image, as the model's InputSpec says."""
    img = bgr if spec.channel_order == "BGR" else bgr[..., ::-1]
    x = (img.astype(np.float32) - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


@dataclass(frozen=True)
class Augment:
    """Random geometry applied alike to image, label and teacher map.

    A sample draws a rotation (one of `rotations`, in degrees, plus a uniform
    jitter), a flip, a scale in `scales` and a crop position.
    """

    crop: int = 320
    scales: Tuple[float, float] = (0.75, 1.25)
    rotations: Tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    jitter_deg: float = 15.0
    flip: bool = True


def _warp(arrays: List[np.ndarray], interps: List[int], borders: List[float], angle: float, scale: float, flip: bool):
    h, w = arrays[0].shape[:2]
    # Output canvas that holds the whole rotated, scaled image.
    rad = math.radians(angle)
    cos, sin = abs(math.cos(rad)), abs(math.sin(rad))
    nw, nh = int(round(scale * (w * cos + h * sin))), int(round(scale * (w * sin + h * cos)))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    out = []
    for a, interp, border in zip(arrays, interps, borders):
        b = cv2.warpAffine(a, m, (nw, nh), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=border)
        out.append(b[:, ::-1] if flip else b)
    # Pixels the warp brought in from outside the image are ignored.
    valid = cv2.warpAffine(np.ones((h, w), np.uint8), m, (nw, nh), flags=cv2.INTER_NEAREST, borderValue=0)
    return out, (valid[:, ::-1] if flip else valid)


class BsdsEdges(Dataset):
    """Random crops of BSDS500 images with RCF labels (and teacher targets, if cached).

    Each item ``i`` of epoch ``e`` draws its augmentation from a generator
    seeded by ``(seed, e, i)``, so a run is reproducible whatever the number of
    loader workers, and resuming mid-epoch replays the same samples.

    Items are dicts of tensors: ``image`` (3, C, C), ``label`` (1, C, C) uint8
    with 0/1/IGNORE, and with a teacher cache ``teacher`` (1, C, C) float
    probabilities and ``teacher_feat`` (D,) pooled features. With
    ``agreement``, also ``agreement`` (1, C, C) float: the fraction of
    annotators marking each pixel (interpolated like the image), -1 where
    the augmentation brought the pixel in from outside the image.
    """

    def __init__(
        self,
        root: Path,
        splits: Sequence[str],
        spec: InputSpec,
        eta: float = 0.5,
        augment: Augment = Augment(),
        seed: int = 0,
        teacher_dir: Optional[Path] = None,
        limit: int = 0,
        agreement: bool = False,
    ):
        self.items = list_split(Path(root), splits)[: limit or None]
        self.spec, self.eta, self.augment, self.seed = spec, eta, augment, seed
        self.agreement = agreement
        self.epoch = 0
        self.teacher_dir = Path(teacher_dir) if teacher_dir else None
        self.teacher_feats: Dict[str, np.ndarray] = {}
        if self.teacher_dir is not None:
            feats = np.load(self.teacher_dir / "features.npz")
            missing = [i for i, _, _ in self.items if i not in feats or not (self.teacher_dir / f"{i}.png").is_file()]
            if missing:
                raise FileNotFoundError(f"{self.teacher_dir}: teacher cache lacks {len(missing)} images, e.g. {missing[:3]}")
            self.teacher_feats = {i: feats[i] for i, _, _ in self.items}
        self._soft: Dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def soft_label(self, idx: int) -> np.ndarray:
        """The annotators' average boundary map of an image (cached)."""
        name, _, gt = self.items[idx]
        if name not in self._soft:
            self._soft[name] = np.mean([a.astype(np.float32) for a in read_ground_truth(gt)], axis=0)
        return self._soft[name]

    def __getitem__(self, idx: int) -> Dict[str, torch.Tensor]:
        name, img_path, _ = self.items[idx]
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        a = self.augment
        angle = float(rng.choice(a.rotations)) + float(rng.uniform(-a.jitter_deg, a.jitter_deg))
        scale = float(rng.uniform(*a.scales))
        flip = bool(a.flip and rng.random() < 0.5)
        bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{img_path}: not a readable image")
        arrays = [bgr, self.soft_label(idx)]
        interps = [cv2.INTER_LINEAR, cv2.INTER_LINEAR]
        borders = [0.0, 0.0]
        if self.teacher_dir is not None:
            arrays.append(cv2.imread(str(self.teacher_dir / f"{name}.png"), cv2.IMREAD_GRAYSCALE))
            interps.append(cv2.INTER_LINEAR)
            borders.append(0.0)
        warped, valid = _warp(arrays, interps, borders, angle, scale, flip)
        # Crop (padding with ignored pixels when the warped image is smaller).
        c = a.crop
        h, w = valid.shape
        ph, pw = max(0, c - h), max(0, c - w)
        if ph or pw:
            warped = [np.pad(x, ((0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 2)) for x in warped]
            valid = np.pad(valid, ((0, ph), (0, pw)))
            h, w = valid.shape
        y0, x0 = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        sl = (slice(y0, y0 + c), slice(x0, x0 + c))
        image = warped[0][sl]
        label = soft_to_label(warped[1][sl], self.eta)
        label[valid[sl] == 0] = IGNORE
        out = {
            "image": torch.from_numpy(to_input(np.ascontiguousarray(image), self.spec)),
            "label": torch.from_numpy(np.ascontiguousarray(label))[None],
        }
        if self.agreement:
            soft = np.ascontiguousarray(warped[1][sl], dtype=np.float32).clip(0.0, 1.0)
            soft[valid[sl] == 0] = -1.0
            out["agreement"] = torch.from_numpy(soft)[None]
        if self.teacher_dir is not None:
            out["teacher"] = torch.from_numpy(np.ascontiguousarray(warped[2][sl]).astype(np.float32) / 255.0)[None]
            out["teacher_feat"] = torch.from_numpy(self.teacher_feats[name].astype(np.float32))
        return out
