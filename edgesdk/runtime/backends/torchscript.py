"""TorchScript models (legacy: PyTorch recommends torch.export): any size that is a multiple of the stride; needs torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from edgesdk.runtime.backends import AcceleratorUnavailable, BackendUnavailable
from edgesdk.runtime.metadata import ModelInfo


class TorchScriptBackend:
    """A frozen TorchScript module (legacy format: PyTorch recommends torch.export); any size."""

    def __init__(self, path: Path, info: ModelInfo, threads: int = 0, device: str = "cpu"):
        try:
            import torch
        except ImportError:
            raise BackendUnavailable("running a TorchScript model needs torch: pip install 'edgesdk[train]'") from None
        self.name = "torchscript"
        # TorchScript runs on the CPU or a CUDA GPU; "auto" takes the GPU where torch sees one.
        if device == "npu":
            raise AcceleratorUnavailable(f"{path}: device='npu' needs a LiteRT (.tflite) model; TorchScript "
                                         "models run on 'cpu' or 'gpu' (CUDA)")
        if device == "gpu" and not torch.cuda.is_available():
            raise AcceleratorUnavailable(f"{path}: device='gpu': torch sees no CUDA GPU here "
                                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None})")
        self.device = "gpu" if device in ("gpu", "auto") and torch.cuda.is_available() else "cpu"
        self._where = "cuda" if self.device == "gpu" else "cpu"
        self.low_memory = False
        self.input_type = (np.dtype(np.float32), 0.0, 0)
        self.output_type = (np.dtype(np.float32), 0.0, 0)
        self._torch = torch
        if threads > 0:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()  # torch's default: the physical cores
        module = torch.jit.load(str(path), map_location=self._where).eval()
        # Saved frozen; optimize_for_inference only after loading (a module saved
        # after it does not load again).
        self.module = torch.jit.optimize_for_inference(module)

    def run(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            y = self.module(torch.from_numpy(np.ascontiguousarray(x[None])).to(self._where))
        return y[0, :, :, 0].cpu().numpy().astype(np.float32, copy=False)

    def run_raw(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray:
        return self.run(x, bucket)
