"""TorchScript export (legacy: PyTorch deprecates TorchScript in favour of torch.export; kept for
servers that still load .ts files). fp32, any input size that is a multiple of the stride."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from convert.deploy import DeployModel
from edgesdk import io as fileio


def export_torchscript(model: nn.Module, out: Path, example_size=(352, 512)) -> Path:
    """Trace and freeze; the runtime applies ``optimize_for_inference`` after loading.

    Tracing keeps the upsampling target tied to the input's shape, so the file
    takes any size (checked by the tests); saving after ``optimize_for_inference``
    would give a file that fails to load, hence frozen only.
    """
    deploy = DeployModel(model).eval()
    with torch.no_grad():
        traced = torch.jit.trace(deploy, torch.zeros(1, *example_size, 3), check_trace=False)
        frozen = torch.jit.freeze(traced.eval())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with fileio.replacing(out) as tmp:  # whole or not at all, like every file the project writes
        frozen.save(str(tmp))
    return out
