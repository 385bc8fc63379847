"""Inference backends behind one small interface: ``run(x) -> probability map``; one module each.

``x`` is a normalised (H, W, 3) float32 image, or one already in the model's
input dtype (``Backend.input_type``), whose size is one the backend accepts (a
bucket for LiteRT, a multiple of the stride for TorchScript); the result is the
(H, W) float32 edge probability. Quantisation of int8 tensors uses each
tensor's own scale and zero point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol, Tuple

import numpy as np

from edgesdk.errors import AcceleratorUnavailable, EdgeSDKError, InputError
from edgesdk.runtime.metadata import ModelInfo

__all__ = ["AcceleratorUnavailable", "Backend", "BackendUnavailable", "DEVICES", "check_device", "open_backend", "quantize",
           "dequantize", "dequantize_table"]

# Where a model may run: "auto" takes the first accelerator that works (GPU, then NPU), else the CPU.
DEVICES = ("cpu", "gpu", "npu", "auto")


def check_device(device: object) -> str:
    """``device`` if it is one of :data:`DEVICES`; otherwise an InputError naming them."""
    if device not in DEVICES:
        raise InputError(f"device must be one of {', '.join(map(repr, DEVICES))}, got {device!r}")
    return device  # type: ignore[return-value]


class BackendUnavailable(EdgeSDKError):
    """The package a backend needs is not installed."""


class Backend(Protocol):
    name: str
    device: str  # where it runs: "cpu", "gpu" or "npu" ("auto" resolved)
    low_memory: bool
    threads: int  # inference threads in use
    # (dtype, scale, zero point) the model takes; (float32, 0.0, 0) for a float input.
    input_type: Tuple[np.dtype, float, int]
    # (dtype, scale, zero point) of what run_raw returns; (float32, 0.0, 0): the probability itself.
    output_type: Tuple[np.dtype, float, int]

    def run_raw(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray: ...

    def run(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray: ...


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.rint(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * np.float32(scale)


def dequantize_table(dtype, scale: float, zero_point: int) -> np.ndarray:
    """:func:`dequantize` of every value of an 8-bit ``dtype``, in the order ``cv2.LUT`` indexes it
    (by the value's byte: an int8 -1 at 255): a map of any size dequantized in one pass, no temporaries."""
    levels = np.arange(256, dtype=np.uint8).view(np.dtype(dtype))
    return dequantize(levels, scale, zero_point)


def open_backend(path: Path, info: ModelInfo, threads: int = 0, low_memory: bool = False,
                 device: str = "cpu") -> Backend:
    """The backend that runs ``path`` as its metadata says (imported only when used), on ``device``."""
    if info.backend == "litert":
        from edgesdk.runtime.backends.litert import LiteRTBackend

        return LiteRTBackend(path, info, threads, low_memory, device)
    if low_memory:
        raise EdgeSDKError(f"{path}: low_memory applies to LiteRT (.tflite) models, not {info.backend}")
    if info.backend == "torchscript":
        from edgesdk.runtime.backends.torchscript import TorchScriptBackend

        return TorchScriptBackend(path, info, threads, device)
    raise EdgeSDKError(f"{path}: unknown backend {info.backend!r}")
