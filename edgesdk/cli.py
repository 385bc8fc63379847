"""The ``edgesdk`` command line: argument parsing only; every command calls the API."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from edgesdk.errors import EdgeSDKError

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def _eval_command(args: argparse.Namespace) -> int:
    from edgesdk.eval import Protocol, evaluate_dir, parse_thresholds
    from edgesdk.postprocess import NmsParams

    protocol = Protocol(
        thresholds=parse_thresholds(args.thresholds),
        max_dist=args.max_dist,
        thin=args.thin,
        nms=NmsParams(r=args.nms_r, s=args.nms_s, m=args.nms_m) if args.nms else None,
    )
    out_dir = Path(args.out) if args.out else Path(str(Path(args.pred).resolve()) + "-eval")
    started = time.perf_counter()
    result = evaluate_dir(
        args.pred,
        args.gt,
        protocol,
        workers=args.workers,
        out_dir=out_dir,
        progress=not args.quiet and sys.stderr.isatty(),
        plot=not args.no_plot,
        log=lambda msg: print(msg, file=sys.stderr),
    )
    elapsed = time.perf_counter() - started
    if args.json:
        print((out_dir / "summary.json").read_text(), end="")
        return EXIT_OK
    nms = "off" if protocol.nms is None else f"r={protocol.nms.r} s={protocol.nms.s} m={protocol.nms.m}"
    print(f"ODS  {result.ods_f:.4f}   (P {result.ods_p:.4f}  R {result.ods_r:.4f}  at threshold {result.ods_t:.3f})")
    print(f"OIS  {result.ois_f:.4f}   (P {result.ois_p:.4f}  R {result.ois_r:.4f})")
    print(f"AP   {result.ap:.4f}")
    print(f"R50  {result.r50:.4f}")
    print(
        f"{len(result.images)} images, {len(result.thresholds)} thresholds, maxDist {protocol.max_dist}, "
        f"NMS {nms}, thinning {'on' if protocol.thin else 'off'}; {elapsed:.1f} s"
    )
    print(f"results in {out_dir}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgesdk", description="Edge detection SDK: evaluation and deployment tools.")
    from edgesdk import __version__

    parser.add_argument("--version", action="version", version=f"edgesdk {__version__}")
    from edgesdk.eval.protocol import Protocol
    from edgesdk.postprocess import NmsParams

    nms, protocol = NmsParams(), Protocol()
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser(
        "eval",
        help="BSDS500 boundary benchmark (ODS, OIS, AP, R50) of a folder of predictions",
        description=(
            "Benchmark edge maps against BSDS ground truth with the standard protocol: edge NMS, "
            "99 thresholds, thinning, one-to-one matching within maxDist of the diagonal. Writes "
            "eval_bdry.txt, eval_bdry_img.txt, eval_bdry_thr.txt, summary.json and pr_curve.png."
        ),
    )
    ev.add_argument("--pred", required=True, help="folder of predictions (PNG 8/16-bit, .npy, .mat), named like the GT")
    ev.add_argument("--gt", required=True, help="folder of ground truth (BSDS .mat, or binary PNG)")
    ev.add_argument("--out", help="output folder (default: <pred>-eval)")
    ev.add_argument("--nms", action=argparse.BooleanOptionalAction, default=True, help="apply edge NMS first (default: on)")
    ev.add_argument("--nms-r", type=int, default=nms.r, help="NMS suppression radius (default: %(default)s)")
    ev.add_argument("--nms-s", type=int, default=nms.s, help="NMS border band (default: %(default)s)")
    ev.add_argument("--nms-m", type=float, default=nms.m, help="NMS multiplier (default: %(default)s)")
    ev.add_argument(
        "--thresholds",
        default=str(protocol.thresholds),
        help="number of thresholds, or comma-separated values (default: %(default)s)",
    )
    ev.add_argument(
        "--max-dist",
        type=float,
        default=protocol.max_dist,
        help="match tolerance, fraction of the diagonal (default: %(default)s)",
    )
    ev.add_argument("--thin", action=argparse.BooleanOptionalAction, default=True, help="thin thresholded maps (default: on)")
    ev.add_argument("--workers", type=int, default=0, help="threads (default: all cores)")
    ev.add_argument("--no-plot", action="store_true", help="skip the PR-curve PNG")
    ev.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(run=_eval_command)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (EdgeSDKError, ValueError, OSError) as exc:
        print(f"edgesdk {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"edgesdk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
