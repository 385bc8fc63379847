"""A model file's metadata: the JSON sidecar that tells the runtime everything that differs between models.

``model.tflite`` (or ``model.ts``) sits beside ``model.json``. The runtime never
special-cases a model: normalisation, the size buckets, the output activation,
the operating threshold and the NMS parameters all come from here, written by
``python -m convert``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgesdk import io as fileio
from edgesdk.arguments import is_int, is_number
from edgesdk.errors import InputError
from edgesdk.runtime.geometry import STRIDE_MULTIPLE
from edgesdk.postprocess import NmsParams

FORMAT = "edgesdk-model/1"
# The largest side of a model input (a bucket, a tile): its buffers grow with its area,
# so a side beyond this is a mistake in a sidecar, not a model.
MAX_SIDE = 8192
# A sidecar is a few KB; anything much larger is not one.
MAX_SIDECAR_BYTES = 1 << 20


@dataclass(frozen=True)
class InputNorm:
    """``x = (pixel - mean) / std`` on 0..255 values, channels in ``channel_order``."""

    channel_order: str = "RGB"
    mean: Tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: Tuple[float, float, float] = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class Bucket:
    """One fixed input size the model file was exported for (a TFLite signature)."""

    name: str
    height: int
    width: int


@dataclass(frozen=True)
class ModelInfo:
    """Everything the runtime needs to run a model file and interpret its output.

    Attributes
    ----------
    name : str
        Model name (``edgesdk models`` lists it).
    file : str
        The model file, relative to the sidecar.
    sha256 : str
        Checksum of ``file``; verified at load.
    backend : str
        ``"litert"`` (TFLite) or ``"torchscript"``.
    precision : str
        ``"int8"`` or ``"fp32"``.
    input : InputNorm
        Normalisation of the input image.
    buckets : list of Bucket
        Fixed sizes (TFLite: every internal shape is baked in). Empty for a
        backend that takes any size; then ``multiple`` is the padding rule.
    multiple : int
        Inputs are padded to a multiple of this (the network's total stride).
    max_tile : int
        Side of the tiles an image larger than every bucket is cut into
        (any-size backends), so memory stays bounded.
    output : str
        What the file outputs: ``"probability"`` (sigmoid applied inside).
    threshold : float
        Edge threshold on the NMS map at the ODS operating point (BSDS500 val).
    hysteresis_low : float
        Low hysteresis threshold as a fraction of ``threshold`` (1.0: plain threshold).
    nms : NmsParams
        NMS parameters the model was evaluated with.
    metrics : dict
        Measured numbers (e.g. ``{"bsds500_test": {"ods": ..., "ois": ..., "ap": ...}}``).
    training : dict
        Where the weights came from (config, data, distillation).
    card : str, optional
        The model card beside the sidecar (a bare ``.md`` file name): intended use,
        data and licences, limits.
    """

    name: str
    file: str
    sha256: str
    backend: str = "litert"
    precision: str = "fp32"
    input: InputNorm = InputNorm()
    buckets: Tuple[Bucket, ...] = ()
    multiple: int = STRIDE_MULTIPLE
    max_tile: int = 1024
    output: str = "probability"
    threshold: float = 0.5
    hysteresis_low: float = 1.0
    nms: NmsParams = NmsParams()
    metrics: Dict[str, Any] = field(default_factory=dict)
    training: Dict[str, Any] = field(default_factory=dict)
    card: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["format"] = FORMAT
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any], where: str = "metadata") -> "ModelInfo":
        if not isinstance(d, dict):
            raise InputError(f"{where}: not an edgesdk model sidecar (a JSON {type(d).__name__}, not an object)")
        d = dict(d)
        fmt = d.pop("format", None)
        if fmt != FORMAT:
            raise InputError(f"{where}: not an edgesdk model sidecar (format {fmt!r}, expected {FORMAT!r})")
        try:
            norm: Dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.get("input", {}).items()}
            d["input"] = InputNorm(**norm)
            d["buckets"] = tuple(Bucket(**b) for b in d.get("buckets", ()))
            d["nms"] = NmsParams(**d.get("nms", {}))
            info = cls(**d)
        except (TypeError, AttributeError) as exc:  # a missing or unknown key, or a list where an object belongs
            raise InputError(f"{where}: malformed model metadata ({exc})") from None
        except ValueError as exc:  # a part that checks its own values (NmsParams)
            raise InputError(f"{where}: {exc}") from None
        if info.backend not in ("litert", "torchscript"):
            raise InputError(f"{where}: unknown backend {info.backend!r} (litert, torchscript)")
        if info.output != "probability":
            raise InputError(f"{where}: unsupported output {info.output!r}")
        problem = _value_problem(info)
        if problem:
            raise InputError(f"{where}: {problem}")
        return info

    def write(self, path: Path) -> Path:
        return fileio.write_json(path, self.as_dict())


def _value_problem(info: ModelInfo) -> Optional[str]:
    """What is wrong with a sidecar's values, or None.

    Checked at load so that a hand-edited or truncated sidecar fails once, naming
    the field, instead of on every image (or, for a zero ``std``, not at all: the
    input would silently become inf).
    """
    norm = info.input
    if norm.channel_order not in ("RGB", "BGR"):
        return f"input.channel_order must be 'RGB' or 'BGR', got {norm.channel_order!r}"
    for key in ("mean", "std"):
        v = getattr(norm, key)
        if not (isinstance(v, tuple) and len(v) == 3 and all(map(is_number, v))):
            return f"input.{key} must be three finite numbers, got {v!r}"
    if min(norm.std) <= 0:
        return f"input.std must be positive, got {norm.std!r}"
    for b in info.buckets:
        if not (isinstance(b.name, str) and b.name and is_int(b.height, 1) and is_int(b.width, 1)):
            return f"bucket {b!r} needs a name and a positive integer height and width"
        if max(b.height, b.width) > MAX_SIDE:
            return f"bucket {b.name} is {b.height}x{b.width}; a side may be at most {MAX_SIDE}"
    if not (is_int(info.multiple, 1) and is_int(info.max_tile, info.multiple)):
        return f"multiple and max_tile must be positive integers, max_tile >= multiple (got {info.multiple!r}, {info.max_tile!r})"
    if info.multiple > 1024 or info.max_tile > MAX_SIDE:
        return f"multiple must be at most 1024 and max_tile at most {MAX_SIDE} (got {info.multiple}, {info.max_tile})"
    for key in ("threshold", "hysteresis_low"):
        v = getattr(info, key)
        if not (is_number(v) and 0 < v <= 1):
            return f"{key} must be a number in (0, 1], got {v!r}"
    card = info.card
    if card is not None and not (isinstance(card, str) and card.endswith(".md") and card == os.path.basename(card)
                                 and "\\" not in card and not card.startswith(".")):
        # A path could point a reader anywhere on the machine; the card travels beside its sidecar.
        return f"card must be the name of a .md file beside the sidecar, got {card!r}"
    return None


def card_path(info: ModelInfo, sidecar: Path) -> Optional[Path]:
    """The model card of ``info`` (whose sidecar is ``sidecar``), or None when it names none or the file is missing."""
    if info.card is None:
        return None
    path = Path(sidecar).parent / info.card
    return path if path.is_file() else None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_for(model_file: Path) -> Path:
    return Path(model_file).with_suffix(".json")


def read_sidecar(sidecar: Path) -> Any:
    """The JSON document in ``sidecar``: a regular file of at most 1 MB, parsed.

    Raises
    ------
    InputError
        Not a regular file (a FIFO would block forever), too large, or not valid JSON
        (nesting too deep for the parser included).
    """
    data = fileio.read_file(sidecar, MAX_SIDECAR_BYTES, "model sidecar")
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{sidecar}: not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{sidecar}: not valid JSON (nested too deeply)") from None


def info_from_document(doc: Any, sidecar: Path, verify: bool = True) -> Tuple[ModelInfo, Path]:
    """A parsed sidecar -> (info, model file path), its values and (with ``verify``) the file's checksum checked."""
    info = ModelInfo.from_dict(doc, str(sidecar))
    model_file = sidecar.parent / info.file
    if not model_file.is_file():
        raise InputError(f"{model_file}: model file named by {sidecar.name} is missing")
    if verify:
        digest = sha256_file(model_file)
        if digest != info.sha256:
            raise InputError(f"{model_file}: checksum mismatch (sha256 {digest[:16]}..., metadata says {info.sha256[:16]}...)")
    return info, model_file


def read_model_info(path: Path, verify: bool = True) -> Tuple[ModelInfo, Path]:
    """Read a sidecar (or the sidecar beside a model file); returns (info, model file path).

    Raises
    ------
    InputError
        The sidecar or model file is missing or malformed, or the checksum does not match.
    """
    path = Path(path)
    sidecar = path if path.suffix == ".json" else sidecar_for(path)
    if not os.path.lexists(sidecar):
        raise InputError(f"{sidecar}: model metadata not found (a model file needs its .json sidecar)")
    return info_from_document(read_sidecar(sidecar), sidecar, verify)


def bundled_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "models"


def default_model_name() -> Optional[str]:
    """The bundled default model: the name written in ``edgesdk/models/DEFAULT``."""
    f = bundled_dir() / "DEFAULT"
    return f.read_text().strip() if f.is_file() else None


def list_models(extra_dirs: Optional[List[Path]] = None, problems: Optional[List[str]] = None) -> List[Tuple[ModelInfo, Path]]:
    """Bundled models, then those in ``extra_dirs``.

    A ``*.json`` that cannot be read (not a regular file, not valid JSON) or a sidecar that
    cannot be used (bad values, its model file missing) is skipped and, if ``problems`` is
    given, said why there; JSON documents that are not sidecars are passed over.
    """
    out = []
    for d in [bundled_dir(), *(extra_dirs or [])]:
        for sidecar in sorted(Path(d).glob("*.json")):
            try:
                doc = read_sidecar(sidecar)
                if not (isinstance(doc, dict) and doc.get("format") == FORMAT):
                    continue  # another kind of JSON file
                out.append(info_from_document(doc, sidecar, verify=False))
            except InputError as exc:
                if problems is not None:
                    problems.append(str(exc))
    return out
