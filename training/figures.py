"""The figures of docs/results.md: PR curves of several models in one plot, and their edge maps side by side.

    python -m training figures --model "RCF teacher=runs/rcf/model.pt" \\
        --model "Model + Hinton (int8 TFLite)=default" --out docs/figures

A model is a training checkpoint (``.pt``: run eagerly in fp32 with
``training.evaluate.predict``) or anything ``edgesdk.load`` takes (a sidecar,
a bundled name, ``default``: run through the runtime, as shipped). Predictions
are cached as 16-bit PNGs under ``--cache`` so a figure can be redrawn without
running the models again; a cache made by other weights than the model's now
(a retrained checkpoint, a new bundled default) is discarded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from edgesdk import io as fileio
from edgesdk.eval import Protocol, Result, evaluate, read_ground_truth, read_prediction, write_prediction
from edgesdk.eval.plot import plot_pr
from edgesdk.postprocess import edges as find_edges

logger = logging.getLogger(__name__)

Predictor = Callable[[np.ndarray], np.ndarray]


def predictor(spec: str, threads: int = 0) -> Predictor:
    """BGR uint8 image -> (H, W) float32 edge probability, for a checkpoint or a runtime model."""
    if spec.endswith(".pt"):
        from training.checkpoint import load_model
        from training.evaluate import predict

        model = load_model(spec).eval()
        return lambda bgr: predict(model, bgr)
    from edgesdk.runtime import load

    detector = load(spec, threads=threads)
    return lambda bgr: detector.probability(bgr, color="BGR")


def model_fingerprint(spec: str) -> Optional[str]:
    """sha256 of the weights behind ``spec``; None when they are not here (the cache is then trusted as it is)."""
    from edgesdk.errors import InputError
    from edgesdk.runtime.detector import resolve_model
    from edgesdk.runtime.metadata import sha256_file

    if spec.endswith(".pt"):
        return sha256_file(Path(spec)) if Path(spec).is_file() else None
    try:
        return json.loads(resolve_model(spec).read_text())["sha256"]  # the sidecar's, checked at every load
    except (InputError, OSError, ValueError, KeyError):
        return None


def predict_cached(label: str, spec: str, items: Sequence[Tuple[str, Path, Path]], cache: Path,
                   progress: bool = False) -> Dict[str, np.ndarray]:
    """Predictions of one model on `items`, read from / written to ``cache/<label>``."""
    from tqdm.auto import tqdm

    folder = cache / "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    folder.mkdir(parents=True, exist_ok=True)
    stamp, fingerprint = folder / "MODEL.json", model_fingerprint(spec)
    if fingerprint is not None:
        made_by = json.loads(stamp.read_text()).get("sha256") if stamp.is_file() else None
        if made_by != fingerprint:
            for png in folder.glob("*.png"):
                png.unlink()
        fileio.write_text(stamp, json.dumps({"spec": spec, "sha256": fingerprint}) + "\n")
    run = None
    preds = {}
    for name, img, _ in tqdm(items, desc=label, disable=not progress, leave=False):
        png = folder / f"{name}.png"
        if png.is_file():
            preds[name] = read_prediction(png).astype(np.float32)
            continue
        run = run or predictor(spec)
        preds[name] = run(cv2.imread(str(img), cv2.IMREAD_COLOR))
        write_prediction(png, np.clip(preds[name], 0, 1))
    return preds


def edge_panel(prob: np.ndarray, threshold: float) -> np.ndarray:
    """What a user sees: the soft map (dark = edge) with the thinned NMS edges at the ODS threshold in red."""
    h, w = prob.shape
    soft = np.round(255 * (1 - np.clip(prob, 0, 1))).astype(np.uint8)
    panel = cv2.cvtColor(soft, cv2.COLOR_GRAY2BGR)
    edges = find_edges(prob, threshold)
    panel[edges] = (0, 0, 200)
    return panel


def label_strip(text: str, width: int, height: int = 26) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def edge_grid(images: Sequence[Tuple[str, Path]], columns: List[Tuple[str, Dict[str, np.ndarray], float]],
              gts: Dict[str, List[np.ndarray]], scale: float = 0.5) -> np.ndarray:
    """Rows: images; columns: the image, the annotators' mean boundary, then each model's edges.

    Portrait images are rotated to landscape so every cell has the same shape.
    """
    rows = []
    for name, img in images:
        bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
        gt = 1 - np.mean([g.astype(np.float32) for g in gts[name]], axis=0)
        cells = [("image", bgr), ("ground truth (mean)", cv2.cvtColor(np.round(255 * gt).astype(np.uint8),
                                                                      cv2.COLOR_GRAY2BGR))]
        cells += [(f"{label} (t={t:.2f})", edge_panel(preds[name], t)) for label, preds, t in columns]
        out = []
        for title, cell in cells:
            if cell.shape[0] > cell.shape[1]:
                cell = cv2.rotate(cell, cv2.ROTATE_90_CLOCKWISE)
            cell = cv2.resize(cell, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            out.append(np.vstack([label_strip(title, cell.shape[1]), cell]))
        rows.append(np.hstack([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in out]))
    return np.vstack(rows)


def make_figures(models: Sequence[Tuple[str, str]], root: Path, out: Path, cache: Path, grid_images: Sequence[str],
                 thresholds: int = 99, progress: bool = False) -> Dict[str, Result]:
    """Score every model on BSDS500 test, plot their PR curves together and the edge-map grid."""
    from training.data import list_split

    items = list_split(root, ["test"])
    gts = {name: read_ground_truth(gt) for name, _, gt in items}
    results: Dict[str, Result] = {}
    preds_by_label = {}
    for label, spec in models:
        preds = predict_cached(label, spec, items, cache, progress)
        results[label] = evaluate(preds, gts, Protocol(thresholds=thresholds), progress=progress)
        preds_by_label[label] = preds
        r = results[label]
        logger.info("%s: test ODS %.4f OIS %.4f AP %.4f (threshold %.2f)", label, r.ods_f, r.ois_f, r.ap, r.ods_t)
    out.mkdir(parents=True, exist_ok=True)
    plot_pr(results, out / "pr_curves.png", title="BSDS500 test, single scale")
    by_name = {name: img for name, img, _ in items}
    columns = [(label, preds_by_label[label], results[label].ods_t) for label, _ in models]
    grid = edge_grid([(n, by_name[n]) for n in grid_images], columns, gts)
    fileio.write_bytes(out / "edge_maps.jpg", fileio.image_writer(grid, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 85]))
    return results


def strip_figure(image: Path, out: Path, model: str = "default", scale: float = 1.0) -> Path:
    """The picture a user sees first: the image, the model's probability and its edges, side by side.

    Made through the runtime exactly as ``edgesdk detect`` makes its outputs (the model's own
    threshold, NMS and thinning), drawn dark on white; written to ``out`` as a PNG (lossless, so
    a test can compare it with a fresh run pixel for pixel).
    """
    from edgesdk.runtime import load

    detector = load(model)
    result = detector.detect(image)
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)  # as displayed (EXIF orientation), as detect() read it
    if bgr is None or bgr.shape[:2] != result.probability.shape:
        raise ValueError(f"{image}: not an image OpenCV reads as the runtime did")
    soft = np.round(255 * (1 - result.probability)).astype(np.uint8)
    edges = np.where(result.edges, 0, 255).astype(np.uint8)
    cells = [("image", bgr), ("probability", cv2.cvtColor(soft, cv2.COLOR_GRAY2BGR)),
             (f"edges ({detector.info.name}, threshold {result.threshold:.2f})", cv2.cvtColor(edges, cv2.COLOR_GRAY2BGR))]
    out_cells = []
    for title, cell in cells:
        if scale != 1.0:
            cell = cv2.resize(cell, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out_cells.append(np.pad(np.vstack([label_strip(title, cell.shape[1]), cell]), ((2, 2), (2, 2), (0, 0)),
                                constant_values=255))
    strip = np.hstack(out_cells)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_bytes(out, fileio.image_writer(strip, ".png"))
    return out

