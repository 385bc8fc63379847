"""Reading predictions and ground truth, pairing them, and writing the BSDS result files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from edgesdk.errors import InputError
from edgesdk.eval.metrics import Result

PREDICTION_SUFFIXES = (".png", ".npy", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".mat")
GROUND_TRUTH_SUFFIXES = (".mat", ".png")


def _squeeze_layout(array: np.ndarray, path: Path) -> np.ndarray:
    """(H, W) from (H, W), (1, H, W), (H, W, 1), (1, 1, H, W), or C equal channels."""
    a = array
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[2] in (3, 4):
        # An edge map saved as a colour image: accept it only if the colour
        # channels are identical (alpha is ignored).
        rgb = a[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise InputError(f"{path}: has {a.shape[2]} channels that differ; expected a single-channel edge map")
        a = rgb[..., 0]
    if a.ndim != 2:
        raise InputError(f"{path}: cannot read an edge map from an array of shape {array.shape}")
    return a


def _to_unit_range(a: np.ndarray, path: Path) -> np.ndarray:
    """Edge probabilities as float64 in [0, 1]: integers are scaled by their maximum."""
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if a.dtype == np.uint8:
        return a / 255.0
    if a.dtype == np.uint16:
        return a / 65535.0
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise InputError(f"{path}: contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            raise InputError(
                f"{path}: values span [{lo:.3g}, {hi:.3g}]; expected probabilities in [0, 1] "
                "(apply a sigmoid to logits first)"
            )
        return a
    raise InputError(f"{path}: unsupported dtype {a.dtype} (use uint8, uint16, bool or float in [0, 1])")


def _load_mat(path: Path) -> Dict[str, np.ndarray]:
    try:
        from scipy.io import loadmat
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError(f"{path}: reading .mat files needs SciPy: pip install 'edgesdk[eval]'") from None
    try:
        return loadmat(str(path))
    except Exception as exc:  # scipy raises several types for corrupt files
        raise InputError(f"{path}: not a readable MATLAB file ({exc})") from None


def read_prediction(path: str | Path) -> np.ndarray:
    """Read an edge map as float64 probabilities in [0, 1].

    Parameters
    ----------
    path : str or Path
        An image (8- or 16-bit PNG, TIFF, BMP, JPEG), a ``.npy`` array or a
        ``.mat`` file holding one 2-D array. Layouts (H, W), (1, H, W),
        (H, W, 1), (1, 1, H, W) and colour images with identical channels are
        accepted; integer maps are divided by their type's maximum.

    Returns
    -------
    (H, W) float64 array

    Raises
    ------
    InputError
        If the file cannot be read or does not hold a usable edge map.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"{path}: not a readable .npy file ({exc})") from None
    elif suffix == ".mat":
        arrays = [v for k, v in _load_mat(path).items() if not k.startswith("__") and isinstance(v, np.ndarray)]
        arrays = [v for v in arrays if v.dtype != object and v.squeeze().ndim == 2]
        if len(arrays) != 1:
            raise InputError(f"{path}: expected exactly one 2-D array in the .mat file, found {len(arrays)}")
        a = arrays[0]
    else:
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if a is None:
            raise InputError(f"{path}: not a readable image")
        if a.ndim == 3 and a.shape[2] == 4:
            a = a[..., :3]
    return _to_unit_range(_squeeze_layout(np.asarray(a), path), path)


def read_ground_truth(path: str | Path) -> List[np.ndarray]:
    """Read the boundary maps of all annotators of one image.

    Parameters
    ----------
    path : str or Path
        A BSDS ``.mat`` file (``groundTruth{k}.Boundaries``) or a binary PNG
        (one annotator, nonzero = boundary).

    Returns
    -------
    list of (H, W) bool arrays
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".png":
        a = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if a is None:
            raise InputError(f"{path}: not a readable image")
        return [a != 0]
    data = _load_mat(path)
    if "groundTruth" not in data:
        raise InputError(f"{path}: no 'groundTruth' variable (not a BSDS ground-truth file)")
    cells = np.asarray(data["groundTruth"]).ravel()
    maps = []
    for k, cell in enumerate(cells):
        try:
            b = np.asarray(cell["Boundaries"][0, 0])
        except (ValueError, IndexError, KeyError, TypeError):
            raise InputError(f"{path}: annotator {k + 1} has no 'Boundaries' field") from None
        if b.ndim != 2:
            raise InputError(f"{path}: annotator {k + 1} boundaries have shape {b.shape}")
        maps.append(b != 0)
    if not maps:
        raise InputError(f"{path}: holds no annotator")
    if any(m.shape != maps[0].shape for m in maps):
        raise InputError(f"{path}: annotators' maps differ in size")
    return maps


def pair_files(pred_dir: str | Path, gt_dir: str | Path) -> Tuple[List[Tuple[str, Path, Path]], List[str]]:
    """Match every ground-truth file with the prediction of the same name.

    Returns
    -------
    pairs : list of (name, prediction path, ground-truth path), sorted by name
    unused : names of predictions without ground truth

    Raises
    ------
    InputError
        If a folder is missing or empty, a prediction is missing, or a name
        has several predictions.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "prediction"), (gt_dir, "ground-truth")):
        if not d.is_dir():
            raise InputError(f"{d}: {what} folder does not exist")
    gts = {p.stem: p for p in sorted(gt_dir.iterdir()) if p.suffix.lower() in GROUND_TRUTH_SUFFIXES}
    if not gts:
        raise InputError(f"{gt_dir}: no ground-truth files ({', '.join(GROUND_TRUTH_SUFFIXES)})")
    preds: Dict[str, List[Path]] = {}
    for p in sorted(pred_dir.iterdir()):
        if p.is_file() and p.suffix.lower() in PREDICTION_SUFFIXES:
            preds.setdefault(p.stem, []).append(p)
    ambiguous = sorted(n for n in gts if len(preds.get(n, [])) > 1)
    if ambiguous:
        names = ", ".join(p.name for p in preds[ambiguous[0]])
        raise InputError(f"{pred_dir}: several predictions for {ambiguous[0]} ({names})")
    missing = sorted(n for n in gts if n not in preds)
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InputError(
            f"{pred_dir}: no prediction for {len(missing)} of {len(gts)} ground-truth images: {shown}"
        )
    pairs = [(n, preds[n][0], gts[n]) for n in sorted(gts)]
    unused = sorted(n for n in preds if n not in gts)
    return pairs, unused


def _write_rows(path: Path, rows: Sequence[Sequence[float]]) -> None:
    # edgesEvalDir/boundaryBench write every value with '%10g' separated by spaces.
    with open(path, "w") as fh:
        for row in rows:
            fh.write(" ".join(f"{float(v):10g}" for v in row) + "\n")


def write_bsds_files(result: Result, out_dir: str | Path) -> List[Path]:
    """Write ``eval_bdry.txt``, ``eval_bdry_img.txt`` and ``eval_bdry_thr.txt``.

    The formats are those of the BSDS500 benchmark and ``edgesEvalDir``:
    ``eval_bdry.txt`` holds ``odsT odsR odsP odsF oisR oisP oisF AP``;
    ``eval_bdry_img.txt`` one ``index T R P F`` row per image (1-based, in
    name order); ``eval_bdry_thr.txt`` one ``T R P F`` row per threshold.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r = result
    files = [out / "eval_bdry.txt", out / "eval_bdry_img.txt", out / "eval_bdry_thr.txt"]
    _write_rows(files[0], [[r.ods_t, r.ods_r, r.ods_p, r.ods_f, r.ois_r, r.ois_p, r.ois_f, r.ap]])
    _write_rows(
        files[1],
        [[i + 1, s.threshold, s.recall, s.precision, s.f] for i, s in enumerate(r.images)],
    )
    _write_rows(files[2], np.column_stack([r.thresholds, r.recall, r.precision, r.f]).tolist())
    return files


def write_summary_json(result: Result, path: str | Path, extra: Dict | None = None) -> Path:
    """A JSON summary: the headline numbers, the PR curve, per-image scores and the protocol."""
    r = result
    doc = {
        "summary": {k: (None if np.isnan(v) else v) for k, v in r.summary().items()},
        "n_images": len(r.images),
        "protocol": r.protocol,
        "curve": {
            "threshold": r.thresholds.tolist(),
            "recall": r.recall.tolist(),
            "precision": r.precision.tolist(),
            "f": r.f.tolist(),
        },
        "images": [
            {"name": s.name, "threshold": s.threshold, "recall": s.recall, "precision": s.precision, "f": s.f}
            for s in r.images
        ],
    }
    if extra:
        doc.update(extra)
    path = Path(path)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
