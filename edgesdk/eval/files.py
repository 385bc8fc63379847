"""Reading predictions and ground truth, pairing them, and writing the BSDS result files."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from edgesdk import io as fileio
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


def _mat_file(path: Path) -> io.BytesIO:
    """A .mat file's bytes (a regular file of a sane size), for SciPy to read."""
    return io.BytesIO(fileio.read_file(path, MAX_FILE_BYTES, ".mat file"))


def _load_mat(path: Path, data: Optional[io.BytesIO] = None) -> Dict[str, np.ndarray]:
    try:
        from scipy.io import loadmat
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError(f"{path}: reading .mat files needs SciPy: pip install 'edgesdk[eval]'") from None
    data = data if data is not None else _mat_file(path)
    data.seek(0)
    try:
        return loadmat(data)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise InputError(f"{path}: not a readable MATLAB file ({exc})") from None


# Prediction and ground-truth files larger than this are refused before they are read
# (a BSDS .mat is ~100 KB, a 16-bit prediction PNG of a 64 MP image ~128 MB).
MAX_FILE_BYTES = 1 << 30
# Maps larger than this many pixels are refused from their header (the runtime's default limit).
MAX_PIXELS = 64_000_000


def _expected(shape: Optional[Tuple[int, int]], got: Tuple[int, ...], path: Path) -> None:
    """Refuse a map whose shape, as :func:`_squeeze_layout` will read it, is not ``shape`` (before it is read)."""
    if shape is None:
        return
    dims = list(got)
    while len(dims) > 2 and dims[0] == 1:
        dims.pop(0)
    if len(dims) == 3 and dims[2] in (1, 3, 4):
        dims.pop()
    if tuple(dims) != tuple(shape):
        shown = "x".join(map(str, dims))
        raise InputError(f"{path}: prediction is {shown} but its ground truth is {shape[0]}x{shape[1]}")


def read_prediction(path: str | Path, shape: Optional[Tuple[int, int]] = None,
                    max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """Read an edge map as float64 probabilities in [0, 1].

    Its size is checked before it is decoded: from an image's header, a ``.npy``
    header, or a ``.mat`` file's variable list.

    Parameters
    ----------
    path : str or Path
        An image (8- or 16-bit PNG, TIFF, BMP, JPEG), a ``.npy`` array or a
        ``.mat`` file holding one 2-D array. Layouts (H, W), (1, H, W),
        (H, W, 1), (1, 1, H, W) and colour images with identical channels are
        accepted; integer maps are divided by their type's maximum.
    shape : (H, W), optional
        The size it must have (its ground truth's); another is refused unread.
    max_pixels : int, optional
        Refuse larger maps unread (None: no limit).

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
    if suffix == ".npy":
        fd = fileio.open_regular(path, "prediction")
        try:
            with os.fdopen(os.dup(fd), "rb") as fh:
                try:
                    got, _ = fileio.npy_header(fh)
                except (ValueError, OSError, EOFError) as exc:
                    raise InputError(f"{path}: not a readable .npy file ({exc})") from None
                _expected(shape, got, path)
                if max_pixels is not None and int(np.prod(got)) > 4 * max_pixels:
                    raise InputError(f"{path}: {'x'.join(map(str, got))} is above max_pixels={max_pixels}")
                fh.seek(0)
                try:
                    a = np.load(fh, allow_pickle=False)
                except Exception as exc:
                    raise InputError(f"{path}: not a readable .npy file ({exc})") from None
        finally:
            os.close(fd)
    elif suffix == ".mat":
        data = _mat_file(path)
        arrays = [(name, dims) for name, dims, kind in _mat_variables(path, data) if kind not in ("cell", "struct")
                  and len([d for d in dims if d != 1]) == 2]
        if len(arrays) != 1:
            raise InputError(f"{path}: expected exactly one 2-D array in the .mat file, found {len(arrays)}")
        _expected(shape, arrays[0][1], path)
        a = _load_mat(path, data)[arrays[0][0]]
    else:
        a, _ = fileio.decode_image_file(path, str(path), lambda header: cv2.IMREAD_UNCHANGED, max_pixels,
                                        lambda header: _expected(shape, (header.height, header.width), path))
        if a.ndim == 3 and a.shape[2] == 4:
            a = a[..., :3]
    return prediction_map(a, path)


def write_prediction(path: str | Path, probability: np.ndarray, bits: int = 16) -> Path:
    """Write an edge probability map as a gray PNG that :func:`read_prediction` reads back.

    The one way the project stores a probability map for the benchmark, a figure or a
    teacher cache; the file is written whole under a temporary name, then renamed.

    Parameters
    ----------
    path : str or Path
        The ``.png`` file to write (its folder must exist).
    probability : (H, W) array
        Probabilities in [0, 1].
    bits : {16, 8}
        16 (default) keeps 65536 levels, finer than any threshold sweep; 8 is what a
        user's ``_prob.png`` holds, and a quarter smaller than 16 where many maps are cached.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: a prediction is written as .png")
    a = np.asarray(probability)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"{path}: expected a (H, W) float probability map, got {a.dtype} {a.shape}")
    fileio.write_bytes(path, fileio.probability_writer(a, bits))
    return path


def prediction_map(array: np.ndarray, where: str | Path, shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """An edge map as the benchmark takes it: (H, W) float64 in [0, 1], or an InputError naming ``where``.

    The layouts and dtypes :func:`read_prediction` reads from files, from an array:
    integer maps divided by their type's maximum, floats refused outside [0, 1].
    """
    where = Path(str(where))
    a = np.asarray(array)
    _expected(shape, a.shape, where)
    return _to_unit_range(_squeeze_layout(a, where), where)


def _mat_variables(path: Path, data: io.BytesIO) -> list:
    """(name, shape, class) of each variable of a .mat file, without loading the values."""
    try:
        from scipy.io import whosmat
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError(f"{path}: reading .mat files needs SciPy: pip install 'edgesdk[eval]'") from None
    try:
        return whosmat(data)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise InputError(f"{path}: not a readable MATLAB file ({exc})") from None


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
    if path.suffix.lower() == ".png":
        a, _ = fileio.decode_image_file(path, str(path), lambda header: cv2.IMREAD_GRAYSCALE, MAX_PIXELS)
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
    fileio.write_text(path, "".join(" ".join(f"{float(v):10g}" for v in row) + "\n" for row in rows))


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
    return fileio.write_json(path, doc)
