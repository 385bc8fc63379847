"""Export a trained checkpoint for the runtime: int8/fp32 TFLite and TorchScript, each scored through it.

    from convert.export import ExportOptions, export_checkpoint
    report = export_checkpoint("runs/model/model.pt", ExportOptions(name="model", out="exports/model"))

For every file written: the sidecar JSON the runtime reads (normalisation,
buckets, NMS, the ODS threshold measured on BSDS500 val through the runtime,
test ODS/OIS/AP through the runtime, sha256), and one parity report (JSON +
Markdown) comparing every format with the eager fp32 model. ``python -m convert
export`` parses its arguments into :class:`ExportOptions` and calls
:func:`export_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

from edgesdk import io as fileio
from edgesdk.runtime.metadata import ModelInfo

logger = logging.getLogger(__name__)

FORMATS = ("int8", "fp32", "torchscript")


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What :func:`export_checkpoint` makes, and how it measures it."""

    name: str  # file stem: <name>-int8.tflite, <name>-fp32.tflite, <name>-torchscript.ts
    out: Path = Path("exports")
    formats: Tuple[str, ...] = FORMATS
    buckets: Optional[str] = None  # TFLite signature sizes "HxW,HxW"; None: convert.calibration.DEFAULT_SIZES
    calib: int = 32  # calibration images from BSDS500 train (post-training quantisation)
    float_modules: Tuple[str, ...] = ()  # int8: modules left in float (see python -m convert sensitivity)
    adaround: Tuple[str, ...] = ()  # int8: modules whose weight rounding is learnt (AdaRound)
    adaround_iterations: int = 1000
    qat: Optional[Path] = None  # int8 from this finished QAT run (qat.pt) instead of calibration
    data: Optional[Path] = None  # BSDS500 folder; None: ../shared/data/BSDS500 or $EDGESDK_BSDS500
    thresholds: int = 99
    val_limit: int = 0  # 0: every image
    test_limit: int = 0
    parity_images: int = 20
    hysteresis_low: float = 1.0  # low hysteresis threshold as a fraction of the high one (1.0: plain threshold)
    threads: int = 0
    report: Optional[Path] = None  # default: <out>/<name>.parity.json (+ .md)
    progress: bool = False


def provenance(doc: dict, ckpt) -> dict:
    """The sidecar's ``training`` record of a checkpoint document: where the weights came from and how."""
    from training.checkpoint import git_commit

    cfg = doc.get("config") or {}
    training = {"checkpoint": str(ckpt), "config": cfg.get("source"),
                "run": (cfg.get("run") or {}).get("name"), "iterations": doc.get("iterations"),
                # a continued run's iterations count from its init, so the init is part of where the weights came from
                "init": (cfg.get("model") or {}).get("init"),
                "data": "BSDS500 train+val", "commit": git_commit()}
    eta = (cfg.get("data") or {}).get("eta")
    if eta is not None:
        # The label rule (annotator fraction above which a pixel is an edge) changes what the network learnt.
        training["label_eta"] = eta
    if (cfg.get("loss") or {}).get("kind", "rcf") != "rcf":
        # A distilled model: the config file alone does not say which teacher or which loss settings.
        training["loss"] = cfg["loss"]
        training["teacher"] = cfg.get("teacher")
    if doc.get("averaged_from"):
        # A weight average (python -m training average) has no run of its own: its sources say what it is.
        training["averaged_from"] = doc["averaged_from"]
        training["average_weights"] = doc["average_weights"]
    return training


def file_info(path: Path, model, sizes: Sequence[Tuple[int, int]], precision: str, **fields) -> ModelInfo:
    """The sidecar of an exported file, without its measurements: what the runtime needs to run it.

    The backend follows the file (``.tflite``: LiteRT, with a bucket per size in ``sizes``;
    otherwise TorchScript, any size), the input normalisation the network's class; ``fields``
    are further :class:`~edgesdk.runtime.metadata.ModelInfo` fields (``training``, ...).
    """
    from convert.tflite import bucket_name
    from edgesdk.runtime.metadata import Bucket, InputNorm, sha256_file

    spec = type(model).INPUT
    litert = Path(path).suffix == ".tflite"
    return ModelInfo(name=Path(path).stem, file=Path(path).name, sha256=sha256_file(Path(path)),
                     backend="litert" if litert else "torchscript", precision=precision,
                     input=InputNorm(spec.channel_order, tuple(spec.mean), tuple(spec.std)),
                     buckets=tuple(Bucket(bucket_name(s), s[0], s[1]) for s in sizes) if litert else (), **fields)


def export_checkpoint(ckpt: str | Path, options: ExportOptions) -> dict:
    """Export ``ckpt`` in every format of ``options`` and score each file through the runtime.

    Parameters
    ----------
    ckpt : str or Path
        A ``model.pt`` written by ``python -m training``.
    options : ExportOptions
        What to make and how to measure it.

    Returns
    -------
    dict
        The parity report (eager fp32 scores, and per format: file, size, sha256, BSDS500
        val/test scores through the runtime, agreement with the eager model), with
        ``report``: the path of its JSON file.

    Raises
    ------
    ValueError
        If the options contradict each other or name modules the network lacks.
    """
    import cv2
    import torch

    from convert.calibration import DEFAULT_SIZES, calibration_batches, parse_sizes
    from convert.parity import agreement, ground_truth, runtime_predictions, scores
    from convert.tflite import check_module_names, export_tflite
    from convert.torchscript import export_torchscript
    from edgesdk.eval import Protocol, evaluate
    from edgesdk.runtime import load
    from convert.deploy import load_deployable
    from training.data import list_split
    from training.evaluate import predict
    from training.paths import bsds500_dir

    opt = options
    if opt.threads:
        torch.set_num_threads(opt.threads)
    formats = list(opt.formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown formats {bad} (choose from {FORMATS})")
    if opt.qat and formats != ["int8"]:
        raise ValueError("qat: a QAT run fine-tuned the int8 graph only: export it with formats int8")
    root = Path(opt.data or bsds500_dir())
    doc = torch.load(ckpt, map_location="cpu", weights_only=True)
    model = load_deployable(ckpt)
    spec = type(model).INPUT
    sizes = parse_sizes(opt.buckets) if opt.buckets else list(DEFAULT_SIZES)
    out = Path(opt.out)
    out.mkdir(parents=True, exist_ok=True)
    protocol = Protocol(thresholds=opt.thresholds)
    progress = opt.progress
    training = provenance(doc, ckpt)

    # int8 by post-training calibration, unless a finished QAT run of this checkpoint is given.
    float_modules = list(opt.float_modules)
    ada_modules = list(opt.adaround)
    quantized, quantization = None, {"method": "ptq", "calibration_images": opt.calib}
    for what, names in (("float_modules", float_modules), ("adaround", ada_modules)):
        if names and opt.qat:
            raise ValueError(f"{what} applies to post-training quantisation, not to a QAT graph")
        try:
            check_module_names(model, names)
        except ValueError as e:
            raise ValueError(f"{what}: {e}") from None
    if float_modules:
        quantization["float_modules"] = float_modules
    int8_model = model  # the network the int8 file quantizes; the fp32 formats and the reference use ``model``
    if ada_modules and "int8" in formats:
        from convert.adaround import AdaRoundConfig, adaround
        from convert.calibration import calibration_crops
        from convert.qat import fold_batchnorm

        started = time.perf_counter()
        int8_model = fold_batchnorm(model)
        quantization["adaround"] = adaround(int8_model, ada_modules, calibration_crops(spec, root, sizes, count=opt.calib),
                                            AdaRoundConfig(iterations=opt.adaround_iterations),
                                            log=logger.info)  # minutes in all: a line per layer
        logger.info("adaround: %d convolutions in %.0f s", quantization["adaround"]["convolutions"],
                    time.perf_counter() - started)
    if opt.qat:
        from convert.qat import load_qat

        try:
            quantized, quantization = load_qat(model, opt.qat, ckpt)
        except (OSError, ValueError) as e:
            raise ValueError(f"qat {opt.qat}: {e}") from None

    # The eager fp32 reference, on the same test images the exports are scored on.
    test_items = list_split(root, ["test"])[: opt.test_limit or None]
    started = time.perf_counter()
    eager = {n: predict(model, cv2.imread(str(img), cv2.IMREAD_COLOR)) for n, img, _ in test_items}
    eager_s = time.perf_counter() - started
    gts_test = ground_truth(root, "test", eager)
    eager_res = evaluate(eager, gts_test, protocol, progress=progress)
    report = {"model": opt.name, "eager_fp32": {**scores(eager_res), "seconds": round(eager_s, 1)}, "exports": {}}
    logger.info("eager fp32: test ODS %.4f OIS %.4f AP %.4f", eager_res.ods_f, eager_res.ois_f, eager_res.ap)

    for fmt in formats:
        stem = f"{opt.name}-{fmt}"
        if fmt == "torchscript":
            path = export_torchscript(model, out / f"{stem}.ts")
        else:
            calib = calibration_batches(spec, root, sizes, count=opt.calib) if fmt == "int8" and not quantized else ()
            path = export_tflite(int8_model if fmt == "int8" else model, out / f"{stem}.tflite", sizes, int8=fmt == "int8",
                                 calibration=calib,
                                 quantized=quantized if fmt == "int8" else None,
                                 float_modules=float_modules if fmt == "int8" else ())
        info = file_info(path, model, sizes, "int8" if fmt == "int8" else "fp32", hysteresis_low=opt.hysteresis_low,
                         training={**training, "quantization": quantization} if fmt == "int8" else training)
        sidecar = info.write(path.with_suffix(".json"))
        detector = load(sidecar, threads=opt.threads)
        # The operating threshold comes from val, never from test.
        val = runtime_predictions(detector, root, "val", opt.val_limit, progress)
        val_res = evaluate(val, ground_truth(root, "val", val), protocol, progress=progress)
        started = time.perf_counter()
        test = runtime_predictions(detector, root, "test", opt.test_limit, progress)
        runtime_s = time.perf_counter() - started
        test_res = evaluate(test, gts_test, protocol, progress=progress)
        agree = agreement({n: test[n] for n in list(test)[: opt.parity_images]}, eager, detector, val_res.ods_t)
        metrics = {"bsds500_val": scores(val_res), "bsds500_test": scores(test_res),
                   "evaluated_through": f"edgesdk runtime ({detector.backend.name})"}
        info = dataclasses.replace(info, threshold=round(val_res.ods_t, 4), metrics=metrics)
        info.write(sidecar)
        entry = {"file": path.name, "bytes": path.stat().st_size, "sha256": info.sha256, **metrics,
                 "ods_drop_vs_eager": round(eager_res.ods_f - test_res.ods_f, 4), "parity": agree.as_dict(),
                 "runtime_seconds_test": round(runtime_s, 1)}
        report["exports"][fmt] = entry
        logger.info("%s: %s %.2f MB; test ODS %.4f (eager %.4f, drop %+.4f); val threshold %.3f; max|diff| %.4f "
                    "mean %.5f; edge IoU %.4f", fmt, path.name, entry["bytes"] / 1e6, test_res.ods_f, eager_res.ods_f,
                    entry["ods_drop_vs_eager"], val_res.ods_t, agree.max_abs, agree.mean_abs, agree.edge_agreement)
    report_path = Path(opt.report or out / f"{opt.name}.parity.json")
    fileio.write_json(report_path, report)
    fileio.write_text(report_path.with_suffix(".md"), parity_markdown(report, protocol))
    logger.info("parity report: %s (+ .md)", report_path)
    return {**report, "report": str(report_path)}


def parity_markdown(report: dict, protocol) -> str:
    e = report["eager_fp32"]
    lines = [
        f"# Parity report: {report['model']}",
        "",
        "Every export is run by `edgesdk.runtime` (LiteRT for .tflite, TorchScript for .ts) on the BSDS500 test",
        f"images and scored by `edgesdk.eval` (NMS r/s/m 2/5/1.01, {protocol.thresholds} thresholds, maxDist "
        f"{protocol.max_dist}, thinning). The threshold in each sidecar is the ODS threshold on BSDS500 val.",
        "",
        f"Eager fp32 (torch): ODS {e['ods']:.4f}, OIS {e['ois']:.4f}, AP {e['ap']:.4f} ({e['images']} test images).",
        "",
        "| file | MB | test ODS | OIS | AP | ODS drop vs eager | max abs diff | mean abs diff | edge IoU | val threshold |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt, x in report["exports"].items():
        t, p = x["bsds500_test"], x["parity"]
        lines.append(
            f"| {x['file']} | {x['bytes'] / 1e6:.2f} | {t['ods']:.4f} | {t['ois']:.4f} | {t['ap']:.4f} | "
            f"{x['ods_drop_vs_eager']:+.4f} | {p['max_abs_diff']:.4f} | {p['mean_abs_diff']:.5f} | {p['edge_iou']:.4f} | "
            f"{x['bsds500_val']['ods_threshold']:.3f} |"
        )
    lines += ["", "Edge IoU: |A and B| / |A or B| of the thinned binary edge maps (NMS, val threshold) of the export and the",
              f"eager model over the first {next(iter(report['exports'].values()))['parity']['images']} test images.", ""]
    return "\n".join(lines)
