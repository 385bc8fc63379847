"""Conditioning images for ControlNet-style image generators, called as the annotators people already use.

    from edgesdk.annotators import EdgeAnnotator
    annotator = EdgeAnnotator()                      # the bundled model; nothing is downloaded
    control = annotator(image, detect_resolution=512, image_resolution=512)   # a PIL image, RGB

The call, its arguments and its output follow controlnet_aux's soft-edge detectors (HED,
PiDiNet, TEED), so that this one replaces them without touching the pipeline around it:

- the input is a PIL image or an RGB array (gray and RGBA are widened, alpha over white);
- it is resized so that its shorter side is ``detect_resolution``, each side then rounded
  to a multiple of 64 (Lanczos when enlarging, area averaging when shrinking), and the
  edge probability is found at that size;
- the map is white edges on black, ``uint8``, three equal channels, ``probability * 255``
  truncated; ``safe=True`` quantises it to three levels (0, 127, 255) first, as those
  detectors' ``safe_step`` does;
- it is resized (bilinear) to the size the same rule gives for ``image_resolution``,
  applied to the detection size;
- ``scribble=True`` turns it into thick, simplified binary lines: a Gaussian of sigma 3,
  the pixels that are a maximum across the line in one of four directions and above 127,
  blurred again with sigma 3 and every pixel above 4 set to 255;
- ``output_type="pil"`` gives a ``PIL.Image`` (needs Pillow), ``"np"`` the array.

Unlike those detectors, it needs no torch and no research-licensed weights: it runs the
bundled int8 model on LiteRT (see the model card for its data and licence).

References
----------
L. Zhang, A. Rao, M. Agrawala, "Adding Conditional Control to Text-to-Image Diffusion
Models", ICCV 2023 (ControlNet; its annotators define these conventions);
https://github.com/huggingface/controlnet_aux
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from edgesdk.arguments import check_count, check_flag
from edgesdk.errors import InputError
from edgesdk.runtime.detector import MAX_PIXELS, load
from edgesdk.runtime.image import ImageLike, check_pixels, read_image

logger = logging.getLogger(__name__)

MULTIPLE = 64  # what ControlNet's latent grid needs of each side (8 latent pixels of 8)


def resolution_size(height: int, width: int, resolution: int) -> Tuple[int, int]:
    """(height, width) for ``resolution``: the shorter side scaled to it, each side rounded to a multiple of 64.

    ``round`` is Python's (half to even), as numpy's in the peers. A side that would round to 0
    (an image far longer than it is wide) gets 64, where the peers would fail.
    """
    k = resolution / min(height, width)
    return tuple(max(MULTIPLE, int(round(side * k / MULTIPLE)) * MULTIPLE) for side in (height, width))  # type: ignore[return-value]


def resize_to_resolution(image: np.ndarray, resolution: int) -> np.ndarray:
    """``image`` at :func:`resolution_size`: Lanczos when enlarging, area averaging when shrinking."""
    h, w = image.shape[:2]
    nh, nw = resolution_size(h, w, resolution)
    enlarging = resolution / min(h, w) > 1
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LANCZOS4 if enlarging else cv2.INTER_AREA)


def safe_levels(probability: np.ndarray, steps: int = 2) -> np.ndarray:
    """``floor(p * (steps + 1)) / steps``: the probability quantised so that faint texture is dropped.

    With the default 2 steps, p < 1/3 -> 0, p < 2/3 -> 0.5, else 1 (1.5 at exactly 1,
    which the 8-bit map clips to 255).
    """
    return np.floor(probability.astype(np.float32) * np.float32(steps + 1)) / np.float32(steps)


def to_map(values: np.ndarray) -> np.ndarray:
    """[0, 1] values as the peers' 8-bit map: ``value * 255`` clipped and truncated."""
    return np.clip(values * np.float32(255.0), 0, 255).astype(np.uint8)


def scribble_lines(edge_map: np.ndarray, threshold: int = 127, sigma: float = 3.0) -> np.ndarray:
    """Thick, simplified binary lines (0 or 255) from an 8-bit soft edge map.

    The map is blurred (Gaussian, ``sigma``); a pixel is kept when it equals the maximum
    of its 3-pixel line across one of four directions (horizontal, vertical, both
    diagonals) and exceeds ``threshold``; the kept pixels are blurred again and every
    pixel above 4 becomes a line.
    """
    blurred = cv2.GaussianBlur(edge_map.astype(np.float32), (0, 0), sigma)
    kept = np.zeros(blurred.shape, bool)
    for kernel in (np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], np.uint8), np.array([[0, 1, 0]] * 3, np.uint8),
                   np.eye(3, dtype=np.uint8), np.fliplr(np.eye(3, dtype=np.uint8)).copy()):
        kept |= cv2.dilate(blurred, kernel) == blurred
    lines = np.where(kept & (blurred > threshold), np.uint8(255), np.uint8(0))
    lines = cv2.GaussianBlur(lines, (0, 0), sigma)
    return np.where(lines > 4, np.uint8(255), np.uint8(0))


class EdgeAnnotator:
    """A soft-edge annotator with controlnet_aux's call, running an edgesdk model (torch-free).

    Parameters
    ----------
    model : str or Path
        A bundled model name or a model path, as :func:`edgesdk.load` takes it.
    threads : int
        Inference threads (0: every CPU this process may use).
    device : {"cpu", "gpu", "npu", "auto"}
        Where the model runs, as :func:`edgesdk.load` takes it.
    detector : Detector, optional
        An already loaded detector to use instead.
    """

    def __init__(self, model: Union[str, Path] = "default", *, threads: int = 0, device: str = "cpu",
                 detector: Any = None):
        if detector is None:
            detector = load(model, threads=threads, device=device)
        self.detector = detector

    @classmethod
    def from_pretrained(cls, pretrained_model_or_path: Union[str, Path] = "default", **kwargs: Any) -> "EdgeAnnotator":
        """controlnet_aux's constructor name: a bundled model name or a model path (nothing is downloaded)."""
        if str(pretrained_model_or_path) in ("lllyasviel/Annotators", "lllyasviel/ControlNet"):
            logger.info("%s: the Hugging Face repository of the peers' weights; using edgesdk's bundled model",
                        pretrained_model_or_path)
            pretrained_model_or_path = "default"
        return cls(pretrained_model_or_path, **kwargs)

    def __call__(
        self,
        input_image: ImageLike,
        detect_resolution: int = 512,
        image_resolution: int = 512,
        output_type: str = "pil",
        safe: bool = False,
        scribble: bool = False,
        return_pil: Optional[bool] = None,
    ) -> Any:
        """The conditioning image of ``input_image``: white soft edges on black, RGB.

        Parameters
        ----------
        input_image : PIL image, RGB array (H, W[, 1, 3, 4]), path or encoded bytes
            Arrays are RGB(A), as the peers take them (not BGR as :meth:`Detector.detect`).
        detect_resolution : int
            The shorter side the edges are found at (then rounded to multiples of 64).
        image_resolution : int
            The shorter side of the output (the same rule, applied to the detection size).
        output_type : {"pil", "np"}
            A ``PIL.Image`` in mode RGB, or an (H, W, 3) uint8 array.
        safe : bool
            Quantise the soft edges to 0, 127 and 255.
        scribble : bool
            Thick simplified lines of 0 and 255 instead of soft edges.
        return_pil : bool, optional
            The peers' older name for ``output_type`` (True: "pil", False: "np").

        Returns
        -------
        PIL.Image.Image or numpy.ndarray
        """
        if return_pil is not None:
            output_type = "pil" if check_flag(return_pil, "return_pil") else "np"
        if output_type not in ("pil", "np"):
            raise InputError(f"output_type must be 'pil' or 'np', got {output_type!r}")
        detect_resolution = check_count(detect_resolution, "detect_resolution", 1, 16384)
        image_resolution = check_count(image_resolution, "image_resolution", 1, 16384)
        safe, scribble = check_flag(safe, "safe"), check_flag(scribble, "scribble")
        # Read as detect() reads (orientation, alpha over white), then in RGB order, as the peers hold it.
        pixels, order, where = read_image(input_image, "RGB", MAX_PIXELS)
        if order != "RGB":
            pixels = np.ascontiguousarray(pixels[:, :, ::-1])
        h, w = resolution_size(pixels.shape[0], pixels.shape[1], detect_resolution)
        check_pixels(w, h, f"{where} at detect_resolution {detect_resolution}", MAX_PIXELS)
        small = resize_to_resolution(pixels, detect_resolution)
        del pixels
        probability = self.detector.probability(small, color="RGB")
        edge_map = to_map(safe_levels(probability) if safe else probability)
        oh, ow = resolution_size(h, w, image_resolution)
        check_pixels(ow, oh, f"{where} at image_resolution {image_resolution}", MAX_PIXELS)
        edge_map = cv2.resize(edge_map, (ow, oh), interpolation=cv2.INTER_LINEAR)
        if scribble:
            edge_map = scribble_lines(edge_map)
        out = np.repeat(edge_map[:, :, None], 3, axis=2)
        if output_type == "np":
            return out
        try:
            from PIL import Image
        except ImportError:
            raise InputError("output_type='pil' needs Pillow (pip install pillow), or ask for output_type='np'") from None
        return Image.fromarray(out, "RGB")


def annotate_files(
    annotator: EdgeAnnotator, inputs: Sequence[str], out: Union[str, Path], **options: Any,
) -> Iterator[Dict[str, str]]:
    """Write the conditioning image of each input as ``<out>/<name>.png``; yields a record per input, in order.

    ``inputs`` are files, folders or glob patterns as ``edgesdk detect`` takes them, and the
    names mirror the input tree (:func:`edgesdk.inputs.plan`). Each file is written whole to a
    temporary name and renamed into place. A record is ``{"input", "output"}`` or
    ``{"input", "error"}``: a bad input does not end the others.
    """
    from edgesdk import io as fileio
    from edgesdk.errors import EdgeSDKError
    from edgesdk.inputs import STDIN, plan

    options = {**options, "output_type": "np"}
    for entry in plan(list(inputs)):
        if isinstance(entry, tuple):
            yield {"input": entry[0], "error": f"{entry[0]}: {entry[1]}"}
            continue
        if str(entry.source) == STDIN:
            yield {"input": STDIN, "error": "annotate reads files, not stdin"}
            continue
        target = Path(out) / f"{entry.name}.png"
        try:
            image = annotator(entry.source, **options)
            target.parent.mkdir(parents=True, exist_ok=True)
            fileio.write_bytes(target, fileio.image_writer(image))
        except (EdgeSDKError, ValueError, OSError) as exc:
            yield {"input": str(entry.source), "error": str(exc)}
            continue
        yield {"input": str(entry.source), "output": str(target)}


__all__ = ["EdgeAnnotator", "annotate_files", "resolution_size", "resize_to_resolution", "safe_levels", "scribble_lines", "to_map"]
