"""Inference backends behind one small interface: ``run(x) -> probability map``.

``x`` is a normalised (H, W, 3) float32 image whose size is one the backend
accepts (a bucket for LiteRT, a multiple of the stride for TorchScript); the
result is the (H, W) float32 edge probability. Quantisation of int8 tensors
happens here, with each tensor's own scale and zero point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Protocol, Tuple

import numpy as np

from edgesdk.errors import EdgeSDKError
from edgesdk.runtime.metadata import ModelInfo


class BackendUnavailable(EdgeSDKError):
    """The package a backend needs is not installed."""


class Backend(Protocol):
    name: str

    def run(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray: ...


def _litert_interpreter():
    """LiteRT's Interpreter, or tflite-runtime's where that is all a device has."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise BackendUnavailable(
            "running a .tflite model needs LiteRT: pip install ai-edge-litert (or tflite-runtime)"
        ) from None


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.rint(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * np.float32(scale)


class LiteRTBackend:
    """A (multi-signature) .tflite file on LiteRT with XNNPACK; one signature per size bucket."""

    def __init__(self, path: Path, info: ModelInfo, threads: int = 0):
        Interpreter, self.name = _litert_interpreter()
        kwargs = {"num_threads": threads} if threads > 0 else {}
        # One interpreter holds every signature; the weights are shared between them.
        self.interpreter = Interpreter(model_path=str(path), **kwargs)
        self.signatures = self.interpreter.get_signature_list()
        missing = [b.name for b in info.buckets if b.name not in self.signatures]
        if missing:
            raise EdgeSDKError(f"{path}: signatures {missing} named in the metadata are not in the file")
        self._runners: Dict[str, Tuple] = {}

    def _runner(self, bucket: str):
        if bucket not in self._runners:
            runner = self.interpreter.get_signature_runner(bucket)
            (in_name, in_det), = runner.get_input_details().items()
            (out_name, out_det), = runner.get_output_details().items()
            self._runners[bucket] = (runner, in_name, in_det, out_name, out_det)
        return self._runners[bucket]

    def run(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray:
        runner, in_name, in_det, out_name, out_det = self._runner(bucket)
        want = tuple(in_det["shape"][1:3])
        if x.shape[:2] != want:
            raise ValueError(f"signature {bucket} takes {want}, got {x.shape[:2]}")
        t = x[None]
        if in_det["dtype"] != np.float32:
            scale, zp = in_det["quantization"]
            t = quantize(t, scale, zp, in_det["dtype"])
        y = runner(**{in_name: t})[out_name]
        if out_det["dtype"] != np.float32:
            scale, zp = out_det["quantization"]
            y = dequantize(y, scale, zp)
        return np.ascontiguousarray(y[0, :, :, 0], dtype=np.float32)


class TorchScriptBackend:
    """A frozen TorchScript module (legacy format: PyTorch recommends torch.export); any size."""

    def __init__(self, path: Path, info: ModelInfo, threads: int = 0):
        try:
            import torch
        except ImportError:
            raise BackendUnavailable("running a TorchScript model needs torch: pip install 'edgesdk[train]'") from None
        self.name = "torchscript"
        self._torch = torch
        if threads > 0:
            torch.set_num_threads(threads)
        module = torch.jit.load(str(path), map_location="cpu").eval()
        # Saved frozen; optimize_for_inference only after loading (a module saved
        # after it does not load again).
        self.module = torch.jit.optimize_for_inference(module)

    def run(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            y = self.module(torch.from_numpy(np.ascontiguousarray(x[None])))
        return y[0, :, :, 0].numpy().astype(np.float32, copy=False)


def open_backend(path: Path, info: ModelInfo, threads: int = 0) -> Backend:
    if info.backend == "litert":
        return LiteRTBackend(path, info, threads)
    if info.backend == "torchscript":
        return TorchScriptBackend(path, info, threads)
    raise EdgeSDKError(f"{path}: unknown backend {info.backend!r}")
