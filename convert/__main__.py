"""python -m convert {export, sensitivity, qat}: checkpoint -> int8/fp32 TFLite + TorchScript, each with metadata and a parity report.

    python -m convert export --ckpt runs/model-hinton/model.pt --name model-hinton --out edgesdk/models
    python -m convert sensitivity --ckpt runs/model-c2/model.pt   # which modules int8 hurts most
    python -m convert export --ckpt ... --formats int8 --adaround backbone.features.0,backbone.features.1,...
    python -m convert export --ckpt ... --formats int8 --float-modules backbone.features.1,backbone.features.2
    python -m convert qat --ckpt runs/model-c2/model.pt --out runs/qat-model-c2 [--resume]
    python -m convert export --ckpt runs/model-c2/model.pt --qat runs/qat-model-c2/qat.pt --formats int8 ...

For every file written: the sidecar JSON the runtime reads (normalisation,
buckets, NMS, the ODS threshold measured on BSDS500 val through the runtime,
test ODS/OIS/AP through the runtime, sha256), and one parity report (JSON +
Markdown) comparing every format with the eager fp32 model.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from edgesdk import io as fileio

FORMATS = ("int8", "fp32", "torchscript")


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


def cmd_export(args) -> int:
    import cv2
    import torch

    from convert.calibration import calibration_batches, parse_sizes
    from convert.parity import agreement, ground_truth, runtime_predictions, scores
    from convert.tflite import bucket_name, check_module_names, export_tflite
    from convert.torchscript import export_torchscript
    from edgesdk.eval import Protocol, evaluate
    from edgesdk.runtime import load
    from edgesdk.runtime.metadata import Bucket, InputNorm, ModelInfo, sha256_file
    from training.checkpoint import load_model
    from training.data import list_split
    from training.evaluate import predict
    from training.paths import bsds500_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    formats = [f.strip() for f in args.formats.split(",")]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise SystemExit(f"unknown formats {bad} (choose from {FORMATS})")
    if args.qat and formats != ["int8"]:
        raise SystemExit("--qat fine-tuned the int8 graph only: use it with --formats int8")
    root = Path(args.data or bsds500_dir())
    doc = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    model = load_model(args.ckpt).eval()
    spec = type(model).INPUT
    sizes = parse_sizes(args.buckets)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    protocol = Protocol(thresholds=args.thresholds)
    progress = sys.stderr.isatty()
    training = provenance(doc, args.ckpt)

    # int8 by post-training calibration, unless a finished QAT run of this checkpoint is given.
    float_modules = [m.strip() for m in args.float_modules.split(",") if m.strip()]
    ada_modules = [m.strip() for m in args.adaround.split(",") if m.strip()]
    quantized, quantization = None, {"method": "ptq", "calibration_images": args.calib}
    for flag, names in (("--float-modules", float_modules), ("--adaround", ada_modules)):
        if names and args.qat:
            raise SystemExit(f"{flag} applies to post-training quantisation, not to a --qat graph")
        try:
            check_module_names(model, names)
        except ValueError as e:
            raise SystemExit(f"{flag}: {e}")
    if float_modules:
        quantization["float_modules"] = float_modules
    int8_model = model  # the network the int8 file quantizes; the fp32 formats and the reference use ``model``
    if ada_modules and "int8" in formats:
        from convert.adaround import AdaRoundConfig, adaround
        from convert.calibration import calibration_crops
        from convert.qat import fold_batchnorm

        started = time.perf_counter()
        int8_model = fold_batchnorm(model)
        quantization["adaround"] = adaround(int8_model, ada_modules, calibration_crops(spec, root, sizes, count=args.calib),
                                            AdaRoundConfig(iterations=args.adaround_iterations),
                                            log=lambda msg: print(msg, flush=True))  # minutes in all: a line per layer
        print(f"adaround: {quantization['adaround']['convolutions']} convolutions in {time.perf_counter() - started:.0f} s")
    if args.qat:
        from convert.qat import load_qat

        try:
            quantized, quantization = load_qat(model, args.qat, args.ckpt)
        except (OSError, ValueError) as e:
            raise SystemExit(f"--qat {args.qat}: {e}")

    # The eager fp32 reference, on the same test images the exports are scored on.
    test_items = list_split(root, ["test"])[: args.test_limit or None]
    started = time.perf_counter()
    eager = {n: predict(model, cv2.imread(str(img), cv2.IMREAD_COLOR)) for n, img, _ in test_items}
    eager_s = time.perf_counter() - started
    gts_test = ground_truth(root, "test", eager)
    eager_res = evaluate(eager, gts_test, protocol, progress=progress)
    report = {"model": args.name, "eager_fp32": {**scores(eager_res), "seconds": round(eager_s, 1)}, "exports": {}}
    print(f"eager fp32: test ODS {eager_res.ods_f:.4f} OIS {eager_res.ois_f:.4f} AP {eager_res.ap:.4f}")

    for fmt in formats:
        stem = f"{args.name}-{fmt}"
        if fmt == "torchscript":
            path = export_torchscript(model, out / f"{stem}.ts")
            backend, precision, buckets = "torchscript", "fp32", ()
        else:
            calib = calibration_batches(spec, root, sizes, count=args.calib) if fmt == "int8" and not quantized else ()
            path = export_tflite(int8_model if fmt == "int8" else model, out / f"{stem}.tflite", sizes, int8=fmt == "int8",
                                 calibration=calib,
                                 quantized=quantized if fmt == "int8" else None,
                                 float_modules=float_modules if fmt == "int8" else ())
            backend, precision = "litert", fmt
            buckets = tuple(Bucket(bucket_name(s), s[0], s[1]) for s in sizes)
        info = ModelInfo(name=stem, file=path.name, sha256=sha256_file(path), backend=backend, precision=precision,
                         input=InputNorm(spec.channel_order, tuple(spec.mean), tuple(spec.std)), buckets=buckets,
                         hysteresis_low=args.hysteresis_low,
                         training={**training, "quantization": quantization} if fmt == "int8" else training)
        sidecar = info.write(path.with_suffix(".json"))
        detector = load(sidecar, threads=args.threads)
        # The operating threshold comes from val, never from test.
        val = runtime_predictions(detector, root, "val", args.val_limit, progress)
        val_res = evaluate(val, ground_truth(root, "val", val), protocol, progress=progress)
        started = time.perf_counter()
        test = runtime_predictions(detector, root, "test", args.test_limit, progress)
        runtime_s = time.perf_counter() - started
        test_res = evaluate(test, gts_test, protocol, progress=progress)
        agree = agreement({n: test[n] for n in list(test)[: args.parity_images]}, eager, detector, val_res.ods_t)
        metrics = {"bsds500_val": scores(val_res), "bsds500_test": scores(test_res),
                   "evaluated_through": f"edgesdk runtime ({detector.backend.name})"}
        info = dataclasses.replace(info, threshold=round(val_res.ods_t, 4), metrics=metrics)
        info.write(sidecar)
        entry = {"file": path.name, "bytes": path.stat().st_size, "sha256": info.sha256, **metrics,
                 "ods_drop_vs_eager": round(eager_res.ods_f - test_res.ods_f, 4), "parity": agree.as_dict(),
                 "runtime_seconds_test": round(runtime_s, 1)}
        report["exports"][fmt] = entry
        print(f"{fmt}: {path.name} {entry['bytes'] / 1e6:.2f} MB; test ODS {test_res.ods_f:.4f} (eager {eager_res.ods_f:.4f}, "
              f"drop {entry['ods_drop_vs_eager']:+.4f}); val threshold {val_res.ods_t:.3f}; max|diff| {agree.max_abs:.4f} "
              f"mean {agree.mean_abs:.5f}; edge IoU {agree.edge_agreement:.4f}")
    report_path = Path(args.report or out / f"{args.name}.parity.json")
    fileio.write_json(report_path, report)
    fileio.write_text(report_path.with_suffix(".md"), parity_markdown(report, protocol))
    print(f"parity report: {report_path} (+ .md)")
    return 0


def cmd_qat(args) -> int:
    from convert.qat import QATConfig, QATRun
    from training.paths import bsds500_dir

    cfg = QATConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(QATConfig)})
    run = QATRun(args.ckpt, args.out, cfg, Path(args.data or bsds500_dir()))
    if args.resume:
        run.resume()
    finished = run.fit(until=args.until)
    if not finished:
        print(f"stopped at iteration {run.iteration}; continue with --resume")
    return 0


def cmd_sensitivity(args) -> int:
    import cv2
    import torch

    from convert.calibration import calibration_batches, parse_sizes
    from convert.deploy import DeployModel
    from convert.sensitivity import sensitivity
    from convert.tflite import quantize_pt2e
    from training.checkpoint import load_model
    from training.data import list_split
    from training.evaluate import network_input
    from training.paths import bsds500_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.data or bsds500_dir())
    model = load_model(args.ckpt).eval()
    spec, sizes = type(model).INPUT, parse_sizes(args.buckets)
    deploy = DeployModel(model).eval()
    # The export's quantisation, on the export's calibration images.
    graph, _ = quantize_pt2e(deploy, calibration_batches(spec, root, sizes, count=args.calib), torch.zeros(1, *sizes[0], 3))
    items = list_split(root, ["val"])
    inputs = []
    for _, img, _ in items[:: max(1, len(items) // args.images)][: args.images]:
        bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
        # padded as the runtime pads; the deploy graph takes NHWC
        inputs.append((network_input(model, bgr).permute(0, 2, 3, 1).contiguous(), *bgr.shape[:2]))
    with torch.no_grad():
        refs = [deploy(x)[0, :h, :w, 0] for x, h, w in inputs]
    res = sensitivity(graph, inputs, refs, cumulative=args.cumulative)
    print(f"int8 error (mean squared difference from fp32 on {len(inputs)} val images): {res.int8_error:.3e}")
    print(f"{'module':28s} {'weights':>7s} {'acts':>5s} {'error in float':>15s} {'share':>7s}")
    for g, r in res.groups.items():
        print(f"{g:28s} {r['weights']:7d} {r['activations']:5d} {r['error']:15.3e} {100 * r['share']:6.1f}%")
    print("floating the most sensitive modules in turn:")
    for g, e in res.cumulative:
        print(f"  + {g:26s} error {e:.3e} ({100 * (1 - e / res.int8_error):.1f}% of the int8 error gone)")
    if args.json:
        fileio.write_json(args.json, {"checkpoint": str(args.ckpt), "images": len(inputs), "calibration_images": args.calib,
                                      "int8_error": res.int8_error, "groups": res.groups, "cumulative": res.cumulative})
    return 0


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


def main(argv=None) -> int:
    from convert.calibration import DEFAULT_SIZES

    buckets = ",".join(f"{h}x{w}" for h, w in DEFAULT_SIZES)
    parser = argparse.ArgumentParser(prog="python -m convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="export a checkpoint and measure each file through the runtime")
    e.add_argument("--ckpt", type=Path, required=True, help="a model.pt written by python -m training")
    e.add_argument("--name", required=True)
    e.add_argument("--out", type=Path, default=Path("exports"))
    e.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: int8, fp32, torchscript")
    e.add_argument("--buckets", default=buckets,
                   help="TFLite signature sizes HxW (default: %(default)s)")
    e.add_argument("--calib", type=int, default=32, help="calibration images from BSDS500 train (PTQ)")
    e.add_argument("--float-modules", default="",
                   help="int8: leave these modules of the network in float, comma-separated paths such as "
                        "backbone.features.1 (choose them with python -m convert sensitivity)")
    e.add_argument("--adaround", default="",
                   help="int8: learn the weight rounding (AdaRound) of every convolution in these modules, "
                        "comma-separated, e.g. backbone.features.0,...,backbone.features.6")
    e.add_argument("--adaround-iterations", type=int, default=1000, help="AdaRound steps per convolution")
    e.add_argument("--qat", type=Path, help="int8 from this finished QAT run (qat.pt of python -m convert qat) instead of PTQ")
    e.add_argument("--data", type=Path, help="BSDS500 folder (default: ../shared/data/BSDS500)")
    e.add_argument("--thresholds", type=int, default=99)
    e.add_argument("--val-limit", type=int, default=0)
    e.add_argument("--test-limit", type=int, default=0)
    e.add_argument("--parity-images", type=int, default=20)
    e.add_argument("--hysteresis-low", type=float, default=1.0,
                   help="low hysteresis threshold as a fraction of the high one (1.0: plain threshold)")
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("--report", type=Path)
    e.set_defaults(run=cmd_export)
    s = sub.add_parser("sensitivity", help="each module's share of the int8 error: which to leave float (--float-modules)")
    s.add_argument("--ckpt", type=Path, required=True, help="a model.pt written by python -m training")
    s.add_argument("--data", type=Path, help="BSDS500 folder (default: ../shared/data/BSDS500)")
    s.add_argument("--images", type=int, default=10, help="val images the error is measured on, evenly spaced")
    s.add_argument("--calib", type=int, default=32, help="calibration images, as for export")
    s.add_argument("--buckets", default=buckets, help="calibration sizes, as for export")
    s.add_argument("--cumulative", type=int, default=6, help="float the N most sensitive modules one after another")
    s.add_argument("--threads", type=int, default=0)
    s.add_argument("--json", type=Path, help="also write the numbers here")
    s.set_defaults(run=cmd_sensitivity)
    q = sub.add_parser("qat", help="quantisation-aware fine-tuning of a checkpoint's int8 deploy graph (resumable)")
    q.add_argument("--ckpt", type=Path, required=True, help="a model.pt written by python -m training")
    q.add_argument("--out", type=Path, required=True, help="folder for qat.pt, qat-checkpoint.pt and qat.log")
    q.add_argument("--data", type=Path, help="BSDS500 folder (default: ../shared/data/BSDS500)")
    q.add_argument("--resume", action="store_true", help="continue from OUT/qat-checkpoint.pt")
    q.add_argument("--until", type=int, help="stop (with a checkpoint) at this iteration")
    from convert.qat import QATConfig

    for f in dataclasses.fields(QATConfig):
        q.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                       help=f"(default: %(default)s)")
    q.set_defaults(run=cmd_qat)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
