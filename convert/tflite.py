"""TFLite export through litert-torch: fp32, or static int8 by PT2E with the XNNPACK-style quantizer.

A litert-torch TFLite keeps every internal shape fixed (the bilinear
upsampling's target size is baked in; after ``resize_tensor_input`` it silently
returns the old size), so one file holds one signature per size bucket; the
signatures share the weights.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Tuple

import torch
from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer
from torch import nn

from convert.deploy import DeployModel, traced_modules
from edgesdk import io as fileio

logger = logging.getLogger(__name__)


def bucket_name(size: Tuple[int, int]) -> str:
    return f"s{size[0]}x{size[1]}"


def in_modules(node: torch.fx.Node, names: Sequence[str]) -> bool:
    """Whether ``node`` was traced inside one of the modules ``names`` (paths in the edge model, e.g. ``backbone.features.1``)."""
    return any(p == n or p.startswith(n + ".") for p in traced_modules(node) for n in names)


class PartialInt8Quantizer(PT2EQuantizer):
    """litert-torch's PT2E quantizer, leaving the ops of some modules in float.

    A float op between int8 ones gets a dequantize before it and a quantize
    after it (the boundary tensors stay int8); LiteRT runs it in float. Used for
    the few layers where rounding costs most accuracy (``python -m convert
    sensitivity``): in the student those are the first, highest-resolution blocks.
    """

    def __init__(self, float_modules: Sequence[str] = ()):
        super().__init__()
        self.float_modules = tuple(float_modules)

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        from litert_torch.quantize.pt2e_quantizer_utils import propagate_annotation

        self._annotate_all_static_patterns(model, self.global_config,
                                           lambda n: not in_modules(n, self.float_modules))
        propagate_annotation(model)
        return model


def check_module_names(model: nn.Module, names: Sequence[str]) -> None:
    """Raise ValueError naming every entry of ``names`` that is not a submodule path of ``model``."""
    known = {n for n, _ in model.named_modules()}
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"no such modules in {type(model).__name__}: {bad} (e.g. {sorted(known - {''})[:4]})")


def quantize_pt2e(deploy: DeployModel, calibration: Iterable[torch.Tensor], example: torch.Tensor,
                  float_modules: Sequence[str] = ()):
    """Static int8 PTQ: torch.export (strict, dynamic H/W) -> prepare_pt2e -> calibrate -> convert_pt2e.

    Per-channel symmetric int8 weights, per-tensor int8 activations (the
    TFLite/XNNPACK scheme). ``strict=True``: a non-strict export leaves residual
    adds unquantized. H and W are dynamic multiples of 32 so one calibrated
    graph serves every bucket. Ops inside ``float_modules`` (module paths of
    the wrapped edge model) stay float.
    """
    from litert_torch.quantize.pt2e_quantizer import get_symmetric_quantization_config
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    check_module_names(deploy.model, float_modules)
    quantizer = PartialInt8Quantizer(float_modules).set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    h, w = torch.export.Dim("h", min=1, max=128), torch.export.Dim("w", min=1, max=128)
    graph = torch.export.export(deploy, (example,), dynamic_shapes=({1: 32 * h, 2: 32 * w},), strict=True).module()
    prepared = move_exported_model_to_eval(prepare_pt2e(graph, quantizer))
    with torch.no_grad():
        for x in calibration:
            prepared(x)
    return move_exported_model_to_eval(convert_pt2e(prepared, fold_quantize=False)), quantizer


def export_tflite(
    model: nn.Module,
    out: Path,
    sizes: Sequence[Tuple[int, int]],
    int8: bool,
    calibration: Iterable[torch.Tensor] = (),
    log=logger.info,
    quantized: Optional[Tuple[nn.Module, Any]] = None,
    float_modules: Sequence[str] = (),
) -> Path:
    """Write a multi-signature .tflite (one signature per (H, W) in ``sizes``).

    With ``int8``, the network is quantised by PTQ on ``calibration``, unless
    ``quantized`` already holds an int8 graph and its quantizer (from
    quantisation-aware fine-tuning, convert/qat.py). ``float_modules`` stay
    float in a PTQ graph (see ``quantize_pt2e``).
    """
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig

    deploy = DeployModel(model).eval()
    example = torch.zeros(1, *sizes[0], 3)
    quant_config = None
    module: nn.Module = deploy
    started = time.perf_counter()
    if int8:
        if quantized is None:
            module, quantizer = quantize_pt2e(deploy, calibration, example, float_modules)
            kept = f", {list(float_modules)} in float" if float_modules else ""
            log(f"quantized (PT2E, int8 per-channel{kept}) in {time.perf_counter() - started:.0f} s")
        else:
            module, quantizer = quantized
        quant_config = QuantConfig(pt2e_quantizer=quantizer)
    converter = litert_torch.Converter()
    for size in sizes:
        converter.signature(bucket_name(size), module, (torch.zeros(1, *size, 3),))
    # The quantized module is already a torch.export graph; the float one is exported strictly here.
    edge = converter.convert(quant_config=quant_config, strict_export=not int8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with fileio.replacing(out) as tmp:
        edge.export(str(tmp))
    log(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(sizes)} signatures) in {time.perf_counter() - started:.0f} s")
    return out
