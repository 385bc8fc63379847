"""``edgesdk.load(model) -> Detector``; ``Detector.detect(image) -> EdgeMap``.

The path of one image: read -> normalise -> (bucket pad | tiles) -> backend ->
crop -> NMS -> threshold (hysteresis) -> thinning, each stage timed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import cv2
import numpy as np

from edgesdk import postprocess
from edgesdk.arguments import check_count, check_flag
from edgesdk.errors import EdgeSDKError, InputError
from edgesdk.runtime.backends import Backend, open_backend, quantize
from edgesdk.runtime.geometry import pad_to, plan_inference, plan_tiles, round_up, tile_margin
from edgesdk.runtime.image import ImageLike, read_image
from edgesdk.runtime.metadata import ModelInfo, bundled_dir, default_model_name, read_model_info

DEFAULT_MODEL = "default"
# Images above this many pixels are refused unless the caller raises the limit:
# tiling keeps memory bounded, but time grows with the area.
MAX_PIXELS = 64_000_000


@dataclass
class EdgeMap:
    """The result of one detection.

    Attributes
    ----------
    probability : (H, W) float32
        The model's edge probability, at the input's size.
    nms : (H, W) float32 or None
        ``probability`` after edge NMS (None if NMS was off).
    edges : (H, W) bool
        Binary edges: hysteresis threshold of the NMS map (or of the
        probability), thinned unless thinning was off.
    threshold : float
        The (high) threshold used.
    timings : dict
        Seconds per stage: read, preprocess, inference, nms, threshold, thin.
    tiles : int
        Number of model runs (1 unless the image was tiled).
    source : str
        The file name, or a description of the array or bytes.
    """

    probability: np.ndarray
    nms: Optional[np.ndarray]
    edges: np.ndarray
    threshold: float
    timings: Dict[str, float] = field(default_factory=dict)
    tiles: int = 1
    source: str = ""

    def save(self, folder: Union[str, Path], stem: str, format: str = "png") -> List[Path]:
        """Write ``<stem>_edges`` and ``<stem>_prob`` into ``folder``; returns their paths.

        Parameters
        ----------
        folder : path
            An existing folder.
        stem : str
            The files' common name (``edgesdk detect`` uses the input's).
        format : {"png", "npy"}
            ``png``: edges as 0/255 and the probability as 8-bit gray;
            ``npy``: the bool edges and the float32 probability as they are.

        Raises
        ------
        EdgeSDKError
            A file could not be written (the message names it).
        """
        if format == "png":
            items = [("edges.png", self.edges.astype(np.uint8) * 255),
                     ("prob.png", np.round(self.probability * 255).astype(np.uint8))]
        elif format == "npy":
            items = [("edges.npy", self.edges), ("prob.npy", self.probability)]
        else:
            raise InputError(f"format must be 'png' or 'npy', got {format!r}")
        written = []
        for suffix, array in items:
            target = Path(folder) / f"{stem}_{suffix}"
            try:
                if format == "png":
                    # imwrite reports most failures (a full disk, a folder in the way) by returning False.
                    ok = cv2.imwrite(str(target), array)
                else:
                    np.save(target, array)
                    ok = True
            except (OSError, cv2.error) as exc:
                raise EdgeSDKError(f"could not write {target}: {exc}") from None
            if not ok:
                raise EdgeSDKError(f"could not write {target}")
            written.append(target)
        return written


def resolve_model(model: Union[str, Path]) -> Path:
    """A model name (bundled) or a path to a model file or its sidecar -> the sidecar path."""
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(f"model must be a name or a path, got {type(model).__name__}")
    if str(model) == DEFAULT_MODEL:
        name = default_model_name()
        if name is None:
            raise InputError(f"no default model bundled ({bundled_dir() / 'DEFAULT'} is missing)")
        model = name
    p = Path(model)
    if p.suffix not in (".json", ".tflite", ".ts", ".pt") and not p.exists():
        p = bundled_dir() / f"{model}.json"
    if p.suffix != ".json":
        p = p.with_suffix(".json")
    if not p.is_file():
        raise InputError(f"{model}: no such model (a bundled name, or a .tflite/.ts file with its .json sidecar)")
    return p


class Detector:
    """A loaded edge model: preprocessing, inference and post-processing as its metadata says.

    One Detector may serve several threads: model runs take turns (the backend's lock),
    while reading, preprocessing, NMS and thinning overlap. For parallel inference, load
    one Detector per thread.
    """

    def __init__(self, info: ModelInfo, backend: Backend, path: Path):
        self.info, self.backend, self.path = info, backend, path
        self.buckets = [(b.height, b.width) for b in info.buckets]
        norm = info.input
        self._mean = np.array(norm.mean, np.float32)
        self._inv_std = 1.0 / np.array(norm.std, np.float32)
        dtype, scale, zero_point = backend.input_type
        # A quantized input is a function of each 8-bit pixel value: one table per
        # channel maps uint8 straight to the model's dtype, with no float image
        # (12 bytes a pixel) in between. Same rounding as quantizing the float image.
        self._lut = None
        if dtype != np.float32:
            levels = np.arange(256, dtype=np.float32)[:, None]
            self._lut = quantize((levels - self._mean) * self._inv_std, scale, zero_point, dtype)[:, None, :]

    # -- stages ----------------------------------------------------------------
    def preprocess(self, pixels: np.ndarray, order: str) -> np.ndarray:
        """(H, W, 3) uint8 in ``order`` -> the model's input in its channel order.

        Normalised float32, or for a quantized model that image quantized with
        the input's scale and zero point.
        """
        if order != self.info.input.channel_order:
            pixels = pixels[:, :, ::-1]
        if self._lut is not None:
            return cv2.LUT(np.ascontiguousarray(pixels), self._lut)
        x = pixels.astype(np.float32)
        x -= self._mean
        x *= self._inv_std
        return x

    def _run_padded(self, x: np.ndarray, size, bucket: Optional[str]) -> np.ndarray:
        h, w = x.shape[:2]
        return self.backend.run(pad_to(x, size), bucket)[:h, :w]

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Probability map of a normalised image of any size; returns (map, model runs)."""
        h, w = x.shape[:2]
        if self.buckets:
            i, tiles = plan_inference(h, w, self.buckets)
            tile, name = self.buckets[i], self.info.buckets[i].name
        else:
            m = self.info.multiple
            if max(h, w) <= self.info.max_tile:
                return self._run_padded(x, (round_up(h, m), round_up(w, m)), None), 1
            tile, name = (self.info.max_tile, self.info.max_tile), None
            tiles = plan_tiles(h, w, tile, tile_margin(tile))
        if len(tiles) == 1:
            return self._run_padded(x, tile, name), 1
        # Overlapping tiles; each discards its inner margin so every kept pixel saw context.
        out = np.empty((h, w), np.float32)
        for t in tiles:
            ys0, ys1, xs0, xs1 = t.src
            yk0, yk1, xk0, xk1 = t.keep
            part = self._run_padded(x[ys0:ys1, xs0:xs1], tile, name)
            out[yk0:yk1, xk0:xk1] = part[yk0 - ys0 : yk1 - ys0, xk0 - xs0 : xk1 - xs0]
        return out, len(tiles)

    def resolve_threshold(self, threshold: Union[str, float]) -> float:
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (str, int, float, np.number)):
            raise InputError(f"threshold must be 'auto' or a number in (0, 1], got {threshold!r}")
        if isinstance(threshold, str):
            if threshold != "auto":
                raise InputError(f"threshold must be 'auto' or a number in (0, 1], got {threshold!r}")
            return float(self.info.threshold)
        t = float(threshold)
        if not 0.0 < t <= 1.0:
            raise InputError(f"threshold must be in (0, 1], got {t}")
        return t

    # -- the API ---------------------------------------------------------------
    def probability(self, image: ImageLike, *, color: str = "RGB") -> np.ndarray:
        """The (H, W) float32 edge probability alone (what the benchmark scores; it applies NMS itself)."""
        pixels, order, _ = read_image(image, color)
        return self.infer(self.preprocess(pixels, order))[0]

    def detect(
        self,
        image: ImageLike,
        *,
        nms: bool = True,
        thin: bool = True,
        threshold: Union[str, float] = "auto",
        color: str = "RGB",
        max_pixels: int = MAX_PIXELS,
    ) -> EdgeMap:
        """Detect edges in one image.

        Parameters
        ----------
        image : path, bytes, binary stream, ndarray or PIL image
            A file (turned as its EXIF orientation says), the same encoded bytes in
            memory or a stream opened in binary mode (an upload, ``io.BytesIO``),
            an (H, W), (H, W, 3) or (H, W, 4) array (uint8, uint16 or float in [0, 1]),
            or a ``PIL.Image.Image`` in any mode (its pixels as they are).
        nms : bool
            Apply edge NMS (the model's parameters) before thresholding.
        thin : bool
            Thin the binary edges to one pixel (MATLAB ``bwmorph(.., 'thin', Inf)``).
        threshold : "auto" or float
            High threshold; "auto" is the model's ODS operating point.
        color : {"RGB", "BGR"}
            Channel order of an array argument (a PIL image is always RGB).
        max_pixels : int
            Larger images are refused (raise it to process them, tile by tile).

        Returns
        -------
        EdgeMap
        """
        timings: Dict[str, float] = {}
        t0 = time.perf_counter()
        t = self.resolve_threshold(threshold)
        nms, thin = check_flag(nms, "nms"), check_flag(thin, "thin")
        max_pixels = check_count(max_pixels, "max_pixels", 1)
        pixels, order, where = read_image(image, color, max_pixels)
        t1 = time.perf_counter()
        x = self.preprocess(pixels, order)
        t2 = time.perf_counter()
        prob, runs = self.infer(x)
        t3 = time.perf_counter()
        timings = {"read": t1 - t0, "preprocess": t2 - t1, "inference": t3 - t2}
        suppressed, edges = self.edges(prob, t, nms=nms, thin=thin, timings=timings)
        return EdgeMap(prob, suppressed, edges, t, timings, runs, where)

    def edges(
        self, probability: np.ndarray, threshold: float, *, nms: bool = True, thin: bool = True,
        timings: Optional[Dict[str, float]] = None,
    ) -> tuple[Optional[np.ndarray], np.ndarray]:
        """Binary edges of a probability map as this model's metadata says: NMS, hysteresis, thinning.

        Returns (the NMS map or None, the binary edges); stage times go into ``timings``.
        """
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        # The Detector's thread count, resolved once at load: threads=0 here would read the
        # cgroup files again on every image, and a detector given one thread keeps to it.
        suppressed = postprocess.nms(probability, self.info.nms, threads=self.backend.threads) if nms else None
        t1 = time.perf_counter()
        strength = suppressed if suppressed is not None else probability
        edges = postprocess.hysteresis(strength, threshold * self.info.hysteresis_low, threshold)
        t2 = time.perf_counter()
        if thin:
            edges = postprocess.thin(edges)
        timings.update(nms=t1 - t0, threshold=t2 - t1, thin=time.perf_counter() - t2)
        return suppressed, edges


def load(model: Union[str, Path] = DEFAULT_MODEL, *, threads: int = 0, low_memory: bool = False) -> Detector:
    """Load a model: ``"default"``, a bundled name, or a path to a .tflite/.ts file (with its .json sidecar).

    The file's checksum is verified against its metadata.

    Parameters
    ----------
    model : str or Path
        Which model.
    threads : int
        Inference threads (0: every CPU this process may use; LiteRT's own
        default would be one).
    low_memory : bool
        LiteRT models only: rebuild XNNPACK's per-operator indirection buffers
        on every run instead of keeping them. Identical results; with the
        bundled model a 1000x1000 detection peaks at 181 instead of 454 MB, for
        1.6x the inference time (docs/results.md).
    """
    threads = check_count(threads, "threads", 0)
    low_memory = check_flag(low_memory, "low_memory")
    sidecar = resolve_model(model)
    info, path = read_model_info(sidecar, verify=True)
    return Detector(info, open_backend(path, info, threads, low_memory), path)
