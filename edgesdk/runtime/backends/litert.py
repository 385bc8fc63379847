"""LiteRT (TFLite) models on the CPU with XNNPACK: one signature per size bucket, an optional low-memory mode."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from edgesdk.cpus import available_cpus
from edgesdk.errors import EdgeSDKError
from edgesdk.runtime.backends import AcceleratorUnavailable, BackendUnavailable, dequantize, quantize
from edgesdk.runtime.metadata import ModelInfo

logger = logging.getLogger(__name__)


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


# XNNPACK delegate flags (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h).
_XNNPACK_QS8, _XNNPACK_QU8 = 0x1, 0x2  # int8 / uint8 operators: on in LiteRT's defaults
_XNNPACK_TRANSIENT_INDIRECTION_BUFFER = 0x20


class LiteRTBackend:
    """A (multi-signature) .tflite file on LiteRT with XNNPACK; one signature per size bucket.

    ``low_memory=True`` runs it through LiteRT's CompiledModel API with XNNPACK's
    transient indirection buffers: a convolution's indirection buffer (8 bytes
    per output pixel and kernel tap) is rebuilt on every run instead of kept for
    each operator, which is most of XNNPACK's memory on large images. The
    outputs are bit-identical; each run costs the time to rebuild them.

    ``device="gpu"`` or ``"npu"`` compiles it with LiteRT's CompiledModel API for that
    accelerator, the operators it cannot take left on the CPU; ``"auto"`` takes the
    first of them that this machine has, else the CPU (XNNPACK).

    One backend may be shared between threads: an interpreter (and the
    compiled model's buffers) holds one run's tensors, so runs take a lock
    and go one at a time; the caller's pre- and post-processing stay parallel.
    """

    def __init__(self, path: Path, info: ModelInfo, threads: int = 0, low_memory: bool = False,
                 device: str = "cpu"):
        Interpreter, self.name = _litert_interpreter()
        self.low_memory = low_memory
        # LiteRT's own default is one thread (59 vs 32 ms at 1000x1000 on 2 cores): 0 means every CPU we may use.
        self.threads = threads if threads > 0 else available_cpus()
        self._runners: Dict[Optional[str], Tuple] = {}
        self._native: Dict[str, Any] = {}
        self.device = "cpu"
        for accelerator in {"gpu": ["gpu"], "npu": ["npu"], "auto": ["gpu", "npu"]}.get(device, []):
            try:
                self._native["compiled"] = _compiled_model(path, self.threads, low_memory, accelerator)
            except AcceleratorUnavailable as exc:
                if device != "auto":
                    raise
                logger.info("device='auto': %s; trying the next", exc)
                continue
            self.device = accelerator
            break
        if self.device == "cpu" and low_memory:
            self._native["compiled"] = _compiled_model(path, self.threads, low_memory)
        self.compiled = "compiled" in self._native
        if self.compiled:
            # LiteRT logs an INFO line per accelerator when the model's environment is destroyed:
            # release it under the capture, when the backend is collected or, at the latest,
            # at interpreter exit (before module teardown, when no capture could run).
            weakref.finalize(self, _release_quietly, self._native, self._runners)
            # Only the signature and quantization details are read from this one: no delegate, nothing allocated.
            self.interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=_builtin_resolver())
        else:
            # One interpreter holds every signature; the weights are shared between them.
            self.interpreter = Interpreter(model_path=str(path), num_threads=self.threads)
        self.signatures = self.interpreter.get_signature_list()
        missing = [b.name for b in info.buckets if b.name not in self.signatures]
        if missing:
            raise EdgeSDKError(f"{path}: signatures {missing} named in the metadata are not in the file")
        self._lock = threading.Lock()
        self._logged_first_run = self.compiled  # the compiled path captures its setup log itself
        self.input_type = self._common_input_type(path, info)
        self.output_type = self._common_output_type(path, info)

    def _common_input_type(self, path: Path, info: ModelInfo) -> Tuple[np.dtype, float, int]:
        """(dtype, scale, zero point) of the input, the same for every signature (preprocessing happens once).

        Each bucket's size is checked against its signature here, at load: a sidecar that
        names another size would otherwise fail on every image (or try to allocate it).
        """
        kinds = set()
        for b in info.buckets or [None]:
            name = b.name if b is not None else next(iter(self.signatures), None)
            (det,) = self.interpreter.get_signature_runner(name).get_input_details().values()
            shape = tuple(int(v) for v in det["shape"])
            if b is not None and shape[1:3] != (b.height, b.width):
                raise EdgeSDKError(f"{path}: the sidecar's bucket {b.name} is {b.height}x{b.width}, but the "
                                   f"model file's signature takes {shape[1]}x{shape[2]}")
            scale, zp = det["quantization"] if det["dtype"] != np.float32 else (0.0, 0)
            kinds.add((np.dtype(det["dtype"]), float(scale), int(zp)))
        if len(kinds) != 1:
            raise EdgeSDKError(f"{path}: signatures disagree on the input type or quantization: {sorted(map(str, kinds))}")
        return kinds.pop()

    def _common_output_type(self, path: Path, info: ModelInfo) -> Tuple[np.dtype, float, int]:
        """(dtype, scale, zero point) of the output, the same for every signature (tiles are stitched raw)."""
        kinds = set()
        for name in [b.name for b in info.buckets] or list(self.signatures)[:1]:
            (det,) = self.interpreter.get_signature_runner(name).get_output_details().values()
            scale, zp = det["quantization"] if det["dtype"] != np.float32 else (0.0, 0)
            kinds.add((np.dtype(det["dtype"]), float(scale), int(zp)))
        if len(kinds) != 1:
            raise EdgeSDKError(f"{path}: signatures disagree on the output type or quantization: {sorted(map(str, kinds))}")
        return kinds.pop()

    def _runner(self, bucket: Optional[str]):
        if bucket not in self._runners:
            runner = self.interpreter.get_signature_runner(bucket)
            (in_name, in_det), = runner.get_input_details().items()
            (out_name, out_det), = runner.get_output_details().items()
            if self.compiled:
                cm = self._native["compiled"]
                index = cm.get_signature_index(bucket)
                buffers = (cm.create_input_buffers(index), cm.create_output_buffers(index))
                # The first write in a process sets up LiteRT's buffer environment, which logs.
                with _native_stderr() as logged:
                    buffers[0][0].write(np.zeros(in_det["shape"], in_det["dtype"]))
                    _forward_warnings(logged())
                n_out = int(np.prod(out_det["shape"]))
                dtype = np.dtype(out_det["dtype"])

                def run(**inputs):
                    (t,) = inputs.values()
                    buffers[0][0].write(np.ascontiguousarray(t))
                    cm.run_by_index(index, *buffers)
                    return {out_name: buffers[1][0].read(n_out, dtype).reshape(out_det["shape"])}

                runner = run
            self._runners[bucket] = (runner, in_name, in_det, out_name, out_det)
        return self._runners[bucket]

    def run(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray:
        """Probability map of one bucket-sized input: normalised float32, or already in the input's dtype."""
        y = self.run_raw(x, bucket)
        dtype, scale, zp = self.output_type
        return dequantize(y, scale, zp) if dtype != np.float32 else y

    def run_raw(self, x: np.ndarray, bucket: Optional[str]) -> np.ndarray:
        """:meth:`run` before dequantisation: the (H, W) output in ``output_type``'s dtype."""
        with self._lock:
            runner, in_name, in_det, out_name, out_det = self._runner(bucket)
        want = tuple(in_det["shape"][1:3])
        if x.shape[:2] != want:
            raise ValueError(f"signature {bucket} takes {want}, got {x.shape[:2]}")
        t = x[None]
        if t.dtype != in_det["dtype"]:
            if in_det["dtype"] == np.float32 or t.dtype != np.float32:
                raise ValueError(f"signature {bucket} takes {np.dtype(in_det['dtype'])} or float32 input, got {t.dtype}")
            scale, zp = in_det["quantization"]
            t = quantize(t, scale, zp, in_det["dtype"])
        with self._lock:  # without it, two threads' runs overwrite each other's input and output tensors
            if self._logged_first_run:
                y = runner(**{in_name: t})[out_name]
            else:
                # The interpreter's first run applies the XNNPACK delegate, which logs an INFO
                # line to stderr from C++ on every `edgesdk detect`; pass on anything else.
                with _native_stderr() as logged:
                    y = runner(**{in_name: t})[out_name]
                    _forward_warnings(logged())
                self._logged_first_run = True
        return np.ascontiguousarray(y[0, :, :, 0])


def _builtin_resolver():
    from ai_edge_litert.interpreter import OpResolverType

    return OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


_ACCELERATORS = {"gpu": "GPU", "npu": "NPU"}


def _compiled_model(path: Path, threads: int, low_memory: bool = True, accelerator: Optional[str] = None):
    """LiteRT's CompiledModel: on the CPU (XNNPACK), or on ``accelerator`` with the CPU for what it cannot run.

    ``low_memory``: XNNPACK's transient indirection buffers (for the CPU's share).

    Raises
    ------
    AcceleratorUnavailable
        LiteRT has no such accelerator here (it failed to compile for it, or, for the
        NPU, no vendor runtime registered one: LiteRT then runs it all on the CPU
        and says so only in its log).
    """
    try:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.environment import Environment, EnvironmentOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options
    except ImportError:
        what = f"device={accelerator!r}" if accelerator else "low_memory"
        raise BackendUnavailable(
            f"{what} needs LiteRT's CompiledModel API: pip install 'ai-edge-litert>=2.1'"
        ) from None
    flags = _XNNPACK_QS8 | _XNNPACK_QU8 | (_XNNPACK_TRANSIENT_INDIRECTION_BUFFER if low_memory else 0)
    hardware = HardwareAccelerator.CPU
    if accelerator == "gpu":
        hardware = HardwareAccelerator.GPU | HardwareAccelerator.CPU
    elif accelerator == "npu":
        # The NPU alone: with the CPU allowed, a machine without an NPU compiles too and runs it all on
        # the CPU, saying so only in a log line printed once per process. So "npu" means the whole
        # model on the NPU, or AcceleratorUnavailable.
        hardware = HardwareAccelerator.NPU
    options = Options(hardware_accelerators=hardware, cpu_options=CpuOptions(num_threads=threads, xnnpack_flags=flags))
    with _native_stderr() as logged:
        failure = None
        try:
            if accelerator == "npu":
                # The NPU comes from a vendor's dispatch library and compiler plugin, which LiteRT finds itself.
                env = Environment.create()
            else:
                # No vendor compiler plugins: this is a plain CPU/GPU model (and scanning for them only logs errors).
                env = Environment.create(options=EnvironmentOptions(
                    runtime_path=None, compiler_plugin_path=str(path.parent / ".no-plugins")))
            model = CompiledModel.from_file(str(path), environment=env, options=options)
        except RuntimeError as exc:
            failure = str(exc)
        if failure is not None:
            # The failed attempt's environment is released here, under the capture (the exception and
            # its frames are gone once its block ends): its teardown logs a line per accelerator.
            env = None
            detail = " ".join((failure + " " + logged()).split())
            if accelerator == "npu":
                logger.debug("LiteRT, compiling for the NPU: %s", detail)
                raise AcceleratorUnavailable(
                    "device='npu': LiteRT found no NPU here that runs the whole model (an NPU needs its vendor's "
                    "runtime, such as Qualcomm's, MediaTek's or Intel's)")
            if accelerator is not None:
                raise AcceleratorUnavailable(
                    f"device={accelerator!r}: LiteRT could not use a {_ACCELERATORS[accelerator]} on this machine "
                    f"({_last_error(detail)})")
            raise EdgeSDKError(f"{path}: LiteRT could not compile the model: {detail[-400:]}")
        _forward_warnings(logged())
    if accelerator is not None and not model.is_fully_accelerated():
        logger.info("%s: some operators run on the CPU, the rest on the %s", path.name, _ACCELERATORS[accelerator])
    return model


def _last_error(detail: str) -> str:
    """The telling part of LiteRT's log for a failed compile: the first known cause, up to the next log line."""
    for marker in ("No adapters found", "Failed to initialize", "ERROR"):
        at = detail.find(marker)
        if at >= 0:
            cause = re.split(r" (?:WARNING|INFO|ERROR|E\d{4}|W\d{4}|===|└)", detail[at + len(marker):], maxsplit=1)[0]
            return (marker + cause).strip()[:200]
    return detail[-200:]


def _release_quietly(*holders: dict) -> None:
    """Drop the native objects in ``holders`` (their last references), passing on only what is not LiteRT's INFO."""
    with _native_stderr() as logged:
        for h in holders:
            h.clear()
        _forward_warnings(logged())


def _forward_warnings(log: str) -> None:
    """LiteRT logs (INFO) each accelerator it looks for, and warns that it found no
    NPU on every CPU-only machine; pass on everything else."""
    rest = [line for line in log.splitlines()
            if line.strip() and not line.startswith("INFO: ") and "NPU accelerator could not be loaded" not in line]
    if rest:
        logger.warning("LiteRT: %s", "\n".join(rest))


@contextlib.contextmanager
def _native_stderr():
    """Capture what native code writes to file descriptor 2; yields a function returning it so far.

    Used only around LiteRT's one-time setup (model load, first buffer write),
    whose C++ logger cannot be configured; whatever else the process writes to
    stderr in that window is captured too, and passed on unless it is LiteRT's INFO.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buf:
        os.dup2(buf.fileno(), 2)

        def logged() -> str:
            buf.flush()
            buf.seek(0)
            return buf.read().decode(errors="replace")

        try:
            yield logged
        finally:
            os.dup2(saved, 2)
            os.close(saved)
