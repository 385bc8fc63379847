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
from pathlib import Path

from convert.export import FORMATS
from edgesdk import io as fileio


def cmd_export(args) -> int:
    from convert.export import ExportOptions, export_checkpoint

    def names(text: str):
        return tuple(m.strip() for m in text.split(",") if m.strip())

    options = ExportOptions(
        name=args.name, out=args.out, formats=names(args.formats), buckets=args.buckets, calib=args.calib,
        float_modules=names(args.float_modules), adaround=names(args.adaround),
        adaround_iterations=args.adaround_iterations, qat=args.qat, data=args.data, thresholds=args.thresholds,
        val_limit=args.val_limit, test_limit=args.test_limit, parity_images=args.parity_images,
        hysteresis_low=args.hysteresis_low, threads=args.threads, report=args.report, progress=sys.stderr.isatty())
    try:
        export_checkpoint(args.ckpt, options)
    except ValueError as exc:
        raise SystemExit(f"python -m convert export: {exc}") from None
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
    from convert.deploy import DeployModel, load_deployable
    from convert.sensitivity import sensitivity
    from convert.tflite import quantize_pt2e
    from training.data import list_split
    from training.evaluate import network_input
    from training.paths import bsds500_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.data or bsds500_dir())
    model = load_deployable(args.ckpt)
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


def build_parser() -> argparse.ArgumentParser:
    from convert.calibration import DEFAULT_SIZES

    buckets = ",".join(f"{h}x{w}" for h, w in DEFAULT_SIZES)
    parser = argparse.ArgumentParser(prog="python -m convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="export a checkpoint and measure each file through the runtime")
    e.add_argument("--ckpt", type=Path, required=True, help="a model.pt written by python -m training")
    e.add_argument("--name", required=True, help="file stem: NAME-int8.tflite, NAME-fp32.tflite, NAME-torchscript.ts")
    e.add_argument("--out", type=Path, default=Path("exports"), help="output folder (default: %(default)s)")
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
    e.add_argument("--thresholds", type=int, default=99, help="thresholds of the scoring sweep (default: %(default)s)")
    e.add_argument("--val-limit", type=int, default=0, help="score on the first N val images only (0: all)")
    e.add_argument("--test-limit", type=int, default=0, help="score on the first N test images only (0: all)")
    e.add_argument("--parity-images", type=int, default=20,
                   help="test images the export's maps are compared with the eager model's on (default: %(default)s)")
    e.add_argument("--hysteresis-low", type=float, default=1.0,
                   help="low hysteresis threshold as a fraction of the high one (1.0: plain threshold)")
    e.add_argument("--threads", type=int, default=0, help="torch and runtime threads (0: every CPU)")
    e.add_argument("--report", type=Path, help="parity report path (default: OUT/NAME.parity.json, + .md)")
    e.set_defaults(run=cmd_export)
    s = sub.add_parser("sensitivity", help="each module's share of the int8 error: which to leave float (--float-modules)")
    s.add_argument("--ckpt", type=Path, required=True, help="a model.pt written by python -m training")
    s.add_argument("--data", type=Path, help="BSDS500 folder (default: ../shared/data/BSDS500)")
    s.add_argument("--images", type=int, default=10, help="val images the error is measured on, evenly spaced")
    s.add_argument("--calib", type=int, default=32, help="calibration images, as for export")
    s.add_argument("--buckets", default=buckets, help="calibration sizes, as for export")
    s.add_argument("--cumulative", type=int, default=6, help="float the N most sensitive modules one after another")
    s.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
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
    return parser


def main(argv=None) -> int:
    from training.console import log_on_stdout

    args = build_parser().parse_args(argv)
    with log_on_stdout("convert", "training"):  # the library reports through logging; the command shows it
        return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
