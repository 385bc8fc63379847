"""``edgesdk.load(model) -> Detector``; ``Detector.detect(image) -> EdgeMap``.

The path of one image: read -> normalise -> (bucket pad | tiles) -> backend ->
crop -> NMS -> threshold (hysteresis) -> thinning, each stage timed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from edgesdk import io as fileio
from edgesdk import postprocess
from edgesdk.arguments import check_count, check_flag, check_threshold
from edgesdk.cpus import MAX_THREADS
from edgesdk.errors import InputError
from edgesdk.runtime import draw
from edgesdk.runtime.backends import Backend, check_device, dequantize_table, open_backend, quantize
from edgesdk.runtime.geometry import pad_to, plan_inference, plan_tiles, round_up, tile_margin
from edgesdk.runtime.image import WHITE, ImageLike, read_image
from edgesdk.runtime.metadata import ModelInfo, bundled_dir, default_model_name, read_model_info

DEFAULT_MODEL = "default"
# Images above this many pixels are refused unless the caller raises the limit:
# tiling keeps memory bounded, but time grows with the area.
MAX_PIXELS = 64_000_000
# Tiled images up to this size are preprocessed whole (their tiles overlap: cheaper once), larger ones
# tile by tile, so that no full-size preprocessed copy of a large image is made.
WHOLE_PREPARE_PIXELS = 4_000_000


@dataclass
class EdgeMap:
    """The result of one detection.

    Attributes
    ----------
    probability : (H, W) float32
        The model's edge probability, at the input's size.
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
    nms_params : NmsParams or None
        The NMS the edges were found with (None: NMS was off).
    """

    probability: np.ndarray
    edges: np.ndarray
    threshold: float
    timings: Dict[str, float] = field(default_factory=dict)
    tiles: int = 1
    source: str = ""
    nms_params: Optional[postprocess.NmsParams] = None
    _nms: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @property
    def nms(self) -> Optional[np.ndarray]:
        """``probability`` after edge NMS, (H, W) float32 (None if NMS was off).

        Computed when first asked for: detection never holds a full-size NMS map (it
        thresholds NMS band by band), which keeps a large image's memory bounded.
        """
        if self.nms_params is None:
            return None
        if self._nms is None:
            self._nms = postprocess.nms(self.probability, self.nms_params)
        return self._nms

    def overlay(
        self,
        image: ImageLike,
        *,
        color: Sequence[int] = draw.RED,
        alpha: float = 1.0,
        thickness: int = 1,
        soft: bool = False,
        order: str = "BGR",
        max_pixels: int = MAX_PIXELS,
        background: Sequence[int] = WHITE,
    ) -> np.ndarray:
        """The edges drawn over ``image``, the one they were detected in: an image to look at.

        ``image`` is read as :meth:`Detector.detect` reads it, so a file is shown as a viewer
        shows it (EXIF orientation applied, transparency over ``background``) and matches
        the edge map pixel for pixel.

        Parameters
        ----------
        image : path, bytes, binary stream, ndarray or PIL image
            The detected image (an array in ``order``).
        color : (R, G, B)
            The edges' colour (red by default).
        alpha : float in [0, 1]
            Their opacity.
        thickness : int
            Edges widened to this many pixels (1: as detected).
        soft : bool
            Draw the probability instead of the binary edges (each pixel's opacity
            ``alpha * probability``).
        order : {"BGR", "RGB"}
            Channel order of an array ``image`` and of the result: BGR by default, for
            ``cv2.imwrite`` and ``cv2.imshow``; "RGB" for matplotlib or ``PIL.Image.fromarray``.
        max_pixels, background
            As :meth:`Detector.detect`.

        Returns
        -------
        (H, W, 3) uint8 in ``order``
        """
        if order not in ("BGR", "RGB"):
            raise InputError(f"order must be 'BGR' or 'RGB', got {order!r}")
        soft = check_flag(soft, "soft")
        pixels, pixel_order, _ = read_image(image, order, check_count(max_pixels, "max_pixels", 1), background)
        if pixel_order != order:
            pixels = pixels[:, :, ::-1]
        weight = self.probability if soft else draw.thicken(self.edges, thickness)
        return draw.overlay(pixels, weight, color, alpha, order)

    def outputs(self, stem: str, format: str = "png", overlay: Optional[np.ndarray] = None,
                ) -> List[Tuple[str, fileio.Content]]:
        """The files :meth:`save` writes: ``[(name, writer), ...]`` (each encoded when written)."""
        files: List[Tuple[str, fileio.Content]]
        if format == "png":
            files = [(f"{stem}_edges.png", fileio.edges_writer(self.edges)),
                     (f"{stem}_prob.png", fileio.probability_writer(self.probability, 8))]
        elif format == "npy":
            files = [(f"{stem}_edges.npy", fileio.npy_writer(self.edges)),
                     (f"{stem}_prob.npy", fileio.npy_writer(self.probability))]
        else:
            raise InputError(f"format must be 'png' or 'npy', got {format!r}")
        if overlay is not None:
            files.append((f"{stem}_overlay.png", fileio.image_writer(overlay)))
        return files

    def save(self, folder: Union[str, Path], stem: str, format: str = "png",
             overlay: Optional[np.ndarray] = None) -> List[Path]:
        """Write ``<stem>_edges`` and ``<stem>_prob`` into ``folder``; returns their paths.

        Both files are written whole to temporary names, then renamed into place
        together (:func:`edgesdk.io.write_files`): a killed process, a full disk or
        a concurrent run never leaves a partial file or an ``_edges`` without its
        ``_prob`` under these names, and a symlink at either name is replaced.

        Parameters
        ----------
        folder : path
            The folder (made if missing).
        stem : str
            The files' common name (``edgesdk detect`` uses the input's).
        format : {"png", "npy"}
            ``png``: edges as 0/255 and the probability as 8-bit gray;
            ``npy``: the bool edges and the float32 probability as they are.
        overlay : (H, W, 3) uint8 BGR, optional
            Also ``<stem>_overlay.png``: this image (:meth:`overlay`'s), written with the others.

        Raises
        ------
        EdgeSDKError
            A file could not be written (the message names it); neither file was changed.
        """
        items = self.outputs(stem, format, overlay)
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fileio.WriteError(f"could not write into {folder}: {exc.strerror or exc}") from None
        return fileio.write_files([(Path(folder) / name, data) for name, data in items])


def saved_outputs(folder: Union[str, Path], stem: str, format: str = "png", overlay: bool = False,
                  ) -> Optional[List[Path]]:
    """The files :meth:`EdgeMap.save` writes for ``stem`` if all are there, whole and of one size; else None.

    A PNG must decode, a ``.npy`` hold as many bytes as its header says. What
    ``edgesdk detect --skip-existing`` keeps: an interrupted run, repeated, redoes only the
    images whose outputs are missing or damaged.
    """
    if format not in ("png", "npy"):
        raise InputError(f"format must be 'png' or 'npy', got {format!r}")

    def size(path: Path) -> Optional[Tuple[int, ...]]:  # (width, height) of a whole file, else None
        if path.suffix == ".png":
            return fileio.readable_png(path)
        shape = fileio.readable_npy(path)
        return None if shape is None else tuple(shape[::-1])

    paths = [Path(folder) / f"{stem}_{kind}.{format}" for kind in ("edges", "prob")]
    if overlay:
        paths.append(Path(folder) / f"{stem}_overlay.png")
    sizes = [size(p) for p in paths]
    if any(s is None for s in sizes) or len(set(sizes)) != 1:
        return None
    return paths


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
    if not os.path.lexists(p):  # one that exists but is no file is refused by name when it is read
        raise InputError(f"{model}: no such model (a bundled name, or a .tflite/.ts file with its .json sidecar)")
    return p


class Detector:
    """A loaded edge model: preprocessing, inference and post-processing as its metadata says.

    One Detector may serve several threads: model runs take turns (the backend's lock),
    while reading, preprocessing, NMS and thinning overlap. For parallel inference, load
    one Detector per thread. A Detector pickles as its model's path and the options it was
    loaded with, and is loaded again (the file's checksum verified) where it is unpickled.
    """

    def __init__(self, info: ModelInfo, backend: Backend, path: Path):
        self.info, self.backend, self.path = info, backend, path
        self.device = backend.device  # where the model runs: "cpu", "gpu" or "npu"
        # What load() was asked for: a pickled Detector is these, loaded again where it lands.
        self.options: Dict = {"model": str(Path(path).with_suffix(".json").resolve()), "threads": backend.threads,
                              "low_memory": backend.low_memory, "device": backend.device}
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

    def __reduce__(self):
        # The interpreter cannot be pickled: a Detector travels (to a worker process, a Ray actor)
        # as its model's path and options, and is loaded again there, checksum verified.
        return _reload, (dict(self.options),)

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
        """Probability map of a preprocessed (:meth:`preprocess`) image of any size; returns (map, model runs)."""
        out, runs = self._infer(x, lambda part: part)
        return self._as_probability(out), runs

    def _infer(self, image: np.ndarray, prepare, timings: Optional[Dict[str, float]] = None) -> tuple[np.ndarray, int]:
        """The model's output for ``image``, each model input made by ``prepare`` from its part of it.

        Returns (output, model runs): the probability, or for a tiled image the stitched
        output in the model's own type (1 byte a pixel for an int8 model), which
        :meth:`_as_probability` dequantizes once the image may be released. An image larger
        than the model's largest input is cut into overlapping tiles, each prepared on its
        own: no full-size preprocessed copy.
        """
        timings = {} if timings is None else timings
        timings.setdefault("preprocess", 0.0)

        def prepared(part: np.ndarray) -> np.ndarray:
            t0 = time.perf_counter()
            x = prepare(part)
            timings["preprocess"] += time.perf_counter() - t0
            return x

        h, w = image.shape[:2]
        if self.buckets:
            i, tiles = plan_inference(h, w, self.buckets)
            tile, name = self.buckets[i], self.info.buckets[i].name
        else:
            m = self.info.multiple
            if max(h, w) <= self.info.max_tile:
                return self._run_padded(prepared(image), (round_up(h, m), round_up(w, m)), None), 1
            tile, name = (self.info.max_tile, self.info.max_tile), None
            tiles = plan_tiles(h, w, tile, tile_margin(tile))
        if len(tiles) == 1:
            return self._run_padded(prepared(image), tile, name), 1
        # Overlapping tiles; each discards its inner margin so every kept pixel saw context. An image
        # of a few tiles is prepared once (its tiles overlap); a larger one tile by tile, in bounded memory.
        whole = prepared(image) if h * w <= WHOLE_PREPARE_PIXELS else None
        dtype, scale, zero_point = self.backend.output_type
        out = np.empty((h, w), dtype)
        for t in tiles:
            ys0, ys1, xs0, xs1 = t.src
            yk0, yk1, xk0, xk1 = t.keep
            x = whole[ys0:ys1, xs0:xs1] if whole is not None else prepared(image[ys0:ys1, xs0:xs1])
            part = self.backend.run_raw(pad_to(x, tile), name)
            out[yk0:yk1, xk0:xk1] = part[yk0 - ys0 : yk1 - ys0, xk0 - xs0 : xk1 - xs0]
        return out, len(tiles)

    def _as_probability(self, out: np.ndarray) -> np.ndarray:
        """The model's stitched output (:meth:`_infer`) as float32 probability, dequantized in one pass."""
        dtype, scale, zero_point = self.backend.output_type
        if out.dtype == np.float32:
            return out
        return cv2.LUT(out, dequantize_table(dtype, scale, zero_point))

    def resolve_threshold(self, threshold: Union[str, float]) -> float:
        """``"auto"`` (the model's ODS threshold) or a number in (0, 1] that float32 keeps above 0."""
        if isinstance(threshold, str) and threshold == "auto":
            return float(self.info.threshold)
        if isinstance(threshold, (str, bool, np.bool_)) or not isinstance(threshold, (int, float, np.number)):
            raise InputError(f"threshold must be 'auto' or a number in (0, 1], got {threshold!r}")
        return check_threshold(threshold, "threshold", self.info.hysteresis_low)

    # -- the API ---------------------------------------------------------------
    def probability(
        self, image: ImageLike, *, color: str = "BGR", max_pixels: int = MAX_PIXELS, background: Sequence[int] = WHITE,
    ) -> np.ndarray:
        """The (H, W) float32 edge probability alone (what the benchmark scores; it applies NMS itself)."""
        max_pixels = check_count(max_pixels, "max_pixels", 1)
        pixels, order, _ = read_image(image, color, max_pixels, background)
        out, _ = self._infer(pixels, lambda part: self.preprocess(part, order))
        del pixels
        return self._as_probability(out)

    def detect(
        self,
        image: ImageLike,
        *,
        nms: bool = True,
        thin: bool = True,
        threshold: Union[str, float] = "auto",
        color: str = "BGR",
        max_pixels: int = MAX_PIXELS,
        background: Sequence[int] = WHITE,
    ) -> EdgeMap:
        """Detect edges in one image.

        Memory is bounded by the image's size: beyond the decoded pixels (3 bytes a pixel,
        released after inference when read from a file or bytes), a detection holds the
        probability (4 bytes a pixel), the edges (1) and buffers of a bounded size (a tile,
        a band of NMS rows); see the README's guarantees for what was measured.

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
        color : {"BGR", "RGB"}
            Channel order of a colour array: BGR by default, so that
            ``detect(cv2.imread(path))`` equals ``detect(path)``; pass "RGB" for arrays
            from Pillow (``np.asarray(img)``), imageio or matplotlib. Files, bytes,
            streams and PIL images are read in their own order whatever it says.
        max_pixels : int
            Larger images are refused (raise it to process them, tile by tile);
            encoded ones from their header, before they are decoded.
        background : (R, G, B) or int
            What transparent pixels (an alpha channel) are composited over, as a
            viewer shows them: white by default.

        Returns
        -------
        EdgeMap
        """
        t0 = time.perf_counter()
        t = self.resolve_threshold(threshold)
        nms, thin = check_flag(nms, "nms"), check_flag(thin, "thin")
        max_pixels = check_count(max_pixels, "max_pixels", 1)
        pixels, order, where = read_image(image, color, max_pixels, background)
        t1 = time.perf_counter()
        timings: Dict[str, float] = {"read": t1 - t0, "preprocess": 0.0}
        out, runs = self._infer(pixels, lambda part: self.preprocess(part, order), timings)
        del pixels  # decoded here: released before the map is made (an array given stays the caller's)
        prob = self._as_probability(out)
        del out
        timings["inference"] = time.perf_counter() - t1 - timings["preprocess"]
        edges = self.edges(prob, t, nms=nms, thin=thin, timings=timings)
        return EdgeMap(prob, edges, t, timings, runs, where, self.info.nms if nms else None)

    def detect_many(self, inputs, *, lanes: int = 2, **options):
        """:meth:`detect` of many inputs, ``lanes`` at a time; yields ``(input, EdgeMap or its error)`` in order.

        See :func:`edgesdk.batch.detect_many`: the model runs one image at a time while the
        others are read and thinned, and memory stays bounded (a few images in flight).
        """
        from edgesdk.batch import detect_many

        return detect_many(self, inputs, lanes=lanes, **options)

    def edges(
        self, probability: np.ndarray, threshold: float, *, nms: bool = True, thin: bool = True,
        timings: Optional[Dict[str, float]] = None,
    ) -> np.ndarray:
        """Binary edges of a probability map as this model's metadata says: NMS, hysteresis, thinning.

        :func:`edgesdk.postprocess.edges` with the model's NMS parameters and hysteresis;
        stage times go into ``timings``.
        """
        # The Detector's thread count, resolved once at load: threads=0 here would read the
        # cgroup files again on every image, and a detector given one thread keeps to it.
        return postprocess.edges(
            probability, threshold, threshold * self.info.hysteresis_low, nms=self.info.nms if nms else None,
            thin=thin, threads=self.backend.threads, timings=timings)


def load(
    model: Union[str, Path] = DEFAULT_MODEL, *, threads: int = 0, low_memory: bool = False, device: str = "cpu",
) -> Detector:
    """Load a model: ``"default"``, a bundled name, or a path to a .tflite/.ts file (with its .json sidecar).

    The file's checksum is verified against its metadata.

    Parameters
    ----------
    model : str or Path
        Which model.
    threads : int
        Inference threads, at most 1024 (0: every CPU this process may use;
        LiteRT's own default would be one).
    low_memory : bool
        LiteRT models only: rebuild XNNPACK's per-operator indirection buffers
        on every run instead of keeping them. Identical results; with the
        bundled model a 1000x1000 detection peaks at 181 instead of 454 MB, for
        1.6x the inference time (docs/results.md).
    device : {"cpu", "gpu", "npu", "auto"}
        Where the model runs. "gpu" and "npu" use LiteRT's accelerators (CompiledModel
        API; operators an accelerator cannot take stay on the CPU), "gpu" a CUDA GPU for a
        TorchScript model; either raises :class:`AcceleratorUnavailable` where this machine
        has none. "auto" takes the GPU, else the NPU, else the CPU, and never fails for want
        of one. ``Detector.device`` says which was taken. Accelerators compute in their own
        precision: results are close to, not bit-identical with, the CPU's.

    Raises
    ------
    AcceleratorUnavailable
        ``device`` names an accelerator this machine (or the installed runtime) does not have.
    """
    threads = check_count(threads, "threads", 0, MAX_THREADS)
    low_memory = check_flag(low_memory, "low_memory")
    device = check_device(device)
    sidecar = resolve_model(model)
    info, path = read_model_info(sidecar, verify=True)
    detector = Detector(info, open_backend(path, info, threads, low_memory, device), path)
    # What was asked for, not what was found: a pickled "auto" looks again where it lands.
    detector.options = {"model": str(sidecar.resolve()), "threads": threads, "low_memory": low_memory,
                        "device": device}
    return detector


def _reload(options: Dict) -> Detector:
    """A pickled Detector, loaded again (its file's checksum verified again) where it is unpickled."""
    return load(options["model"], threads=options["threads"], low_memory=options["low_memory"],
                device=options.get("device", "cpu"))
