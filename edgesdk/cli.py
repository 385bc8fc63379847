"""The ``edgesdk`` command line: argument parsing only; every command calls the API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgesdk.errors import EdgeSDKError

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it


def _eval_command(args: argparse.Namespace) -> int:
    from edgesdk.eval import Protocol, evaluate_dir, parse_thresholds, predict_folder
    from edgesdk.postprocess import NmsParams

    protocol = Protocol(
        thresholds=parse_thresholds(args.thresholds),
        max_dist=args.max_dist,
        thin=args.thin,
        nms=NmsParams(r=args.nms_r, s=args.nms_s, m=args.nms_m) if args.nms else None,
    )
    if (args.pred is None) == (args.model is None):
        raise EdgeSDKError("give either --pred DIR (saved predictions) or --model NAME|PATH with --images DIR")
    progress = not args.quiet and sys.stderr.isatty()
    started = time.perf_counter()
    if args.model is not None:
        if args.images is None:
            raise EdgeSDKError("--model needs --images DIR (the images whose ground truth --gt holds)")
        out_dir = Path(args.out) if args.out else Path("eval-" + Path(str(args.model)).stem)
        pred_dir = predict_folder(args.model, args.images, out_dir / "predictions", args.threads, progress)
    else:
        pred_dir = args.pred
        out_dir = Path(args.out) if args.out else Path(str(Path(args.pred).resolve()) + "-eval")
    result = evaluate_dir(
        pred_dir,
        args.gt,
        protocol,
        workers=args.workers,
        out_dir=out_dir,
        progress=progress,
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


def _detect_command(args: argparse.Namespace) -> int:
    from edgesdk.inputs import MAGIC, read_list
    from edgesdk.video import is_video_name

    items = list(args.inputs) + (read_list(args.from_list) if args.from_list else [])
    if not items and args.source is None:
        raise EdgeSDKError("no inputs: give images, videos, folders or patterns, --from-list FILE or --source N")
    # A video named by its path is a video job; everything else (folders and patterns give images) an image job.
    is_video = [is_video_name(i) and not any(c in i for c in MAGIC) for i in items]
    videos = [i for i, v in zip(items, is_video) if v]
    images = [i for i, v in zip(items, is_video) if not v]
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise EdgeSDKError(f"{out}: the output folder is an existing file")
    doc: Dict[str, Any] = {}  # --json: one document for the images and the videos
    status = _detect_images(args, images, doc) if images else EXIT_OK
    sources: List[Any] = videos + ([args.source] if args.source is not None else [])
    if sources:
        status = max(status, _detect_videos(args, sources, doc.setdefault("videos", [])))
    if args.json:
        print(json.dumps({"images": [], "videos": [], **doc}, indent=2))
    return status


def _detect_videos(args: argparse.Namespace, sources: List[Any], records: List[Dict[str, Any]]) -> int:
    from edgesdk.runtime.detector import load
    from edgesdk.video import detect_video

    detector = load(args.model, threads=args.threads, low_memory=args.low_memory, device=args.device)
    failed = False
    talk = not (args.quiet or args.json)
    for source in sources:
        try:
            r = detect_video(detector, source, args.out, overlay=args.save_overlay, max_frames=args.max_frames,
                             manifest=args.jsonl, progress=talk and sys.stderr.isatty(), max_pixels=args.max_pixels,
                             skip_existing=args.skip_existing, nms=args.nms, thin=args.thin,
                             threshold=args.threshold, background=args.background)
        except (EdgeSDKError, ValueError, OSError) as exc:
            print(f"edgesdk detect: error: {exc}", file=sys.stderr)
            records.append({"input": str(source), "error": str(exc)})
            failed = True
            continue
        records.append({"input": r.source, "outputs": [str(p) for p in r.outputs], "frames": r.frames,
                        "failed_frames": r.failed, "fps": r.fps, "width": r.width, "height": r.height,
                        "skipped": r.skipped, "frames_per_second": None if r.skipped else round(r.frames_per_second, 2),
                        "short_by": r.short_by})
        if r.short_by:
            print(f"edgesdk detect: warning: {r.source}: {r.short_by} of the frames its container states could not "
                  "be read (a damaged or truncated file); the others are written", file=sys.stderr)
        if talk:
            kept = " (already done)" if r.skipped else f"; {r.frames_per_second:.1f} frames/s"
            print(f"{r.source}: {r.frames} frames, {r.width}x{r.height} at {r.fps:g} fps -> "
                  f"{', '.join(str(p) for p in r.outputs)}{kept}")
        failed = failed or r.failed > 0
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _detect_images(args: argparse.Namespace, items: List[str], doc: Dict[str, Any]) -> int:
    from tqdm.auto import tqdm

    from edgesdk.batch import process
    from edgesdk.inputs import plan
    from edgesdk.runtime.metadata import read_model_info
    from edgesdk.runtime.detector import resolve_model

    # The inputs that name no image are reported at once, before a job that may take hours.
    entries = plan(items, args.shard)
    for entry in entries:
        if isinstance(entry, tuple):
            print(f"edgesdk detect: error: {entry[0]}: {entry[1]}", file=sys.stderr)
        elif entry.renamed:
            print(f"edgesdk detect: note: {entry.source} is written as {entry.name}_* (another input has its name)",
                  file=sys.stderr)
    out = Path(args.out)
    talk = not (args.quiet or args.json)
    images = sum(not isinstance(e, tuple) for e in entries)
    loaded: Dict[str, Any] = {}
    records: List[Dict[str, Any]] = []
    jobs = process(entries, out, model=args.model, workers=args.workers, threads=args.threads,
                   low_memory=args.low_memory, device=args.device, format=args.format, skip_existing=args.skip_existing,
                   manifest=args.jsonl, progress=talk and images >= 2 and sys.stderr.isatty(),
                   on_detector=lambda d: loaded.update(backend=d.backend.name, threads=d.backend.threads,
                                                       device=d.device),
                   nms=args.nms, thin=args.thin, threshold=args.threshold, max_pixels=args.max_pixels,
                   background=args.background, overlay=args.save_overlay)
    for entry, record in zip(entries, jobs):
        records.append(record)
        if isinstance(entry, tuple):
            continue  # said above
        if "error" in record:
            tqdm.write(f"edgesdk detect: error: {record['error']}", file=sys.stderr)
        elif talk and images <= 10 and not record.get("skipped"):
            t = record["timings_ms"]
            tqdm.write(f"{record['input']}: {record['width']}x{record['height']}, {record['edge_pixels']} edge pixels at "
                       f"threshold {record['threshold']:.3f}; inference {t['inference']:.0f} ms, nms {t['nms']:.0f} ms, "
                       f"thin {t['thin']:.0f} ms" + (f", {record['tiles']} tiles" if record["tiles"] > 1 else ""))
    done = [r for r in records if "error" not in r and not r.get("skipped")]
    skipped = sum(bool(r.get("skipped")) for r in records)
    failed = sum("error" in r for r in records)
    name = read_model_info(resolve_model(args.model), verify=False)[0].name if images else None
    doc.update({
        "model": name, "backend": loaded.get("backend"), "device": loaded.get("device"),
        "low_memory": bool(images and args.low_memory), "threads": loaded.get("threads"), "workers": args.workers,
        "out": str(out), "done": len(done), "skipped": skipped, "failed": failed, "images": records,
    })
    if talk and images:
        infer_ms = [r["timings_ms"]["inference"] for r in done]
        mean = f"; mean inference {sum(infer_ms) / len(done):.0f} ms" if done else ""
        already = f", {skipped} already done" if skipped else ""
        how = (f"{loaded['backend']}, {loaded['threads']} threads" if loaded else f"{args.workers} workers")
        if loaded.get("device", "cpu") != "cpu":
            how += f", on the {loaded['device'].upper()}"
        print(f"{len(done)} of {len(records)} images -> {out}{already} (model {name}, {how}"
              f"{', low memory' if args.low_memory else ''}){mean}")
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _annotate_command(args: argparse.Namespace) -> int:
    from edgesdk.annotators import EdgeAnnotator, annotate_files

    annotator = EdgeAnnotator(args.model, threads=args.threads, device=args.device)
    failed = done = 0
    for record in annotate_files(annotator, args.inputs, args.out, detect_resolution=args.detect_resolution,
                                 image_resolution=args.image_resolution, safe=args.safe, scribble=args.scribble):
        if "error" in record:
            failed += 1
            print(f"edgesdk annotate: error: {record['error']}", file=sys.stderr)
        else:
            done += 1
            if not args.quiet:
                print(f"{record['input']} -> {record['output']}")
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _models_command(args: argparse.Namespace) -> int:
    from edgesdk.runtime import list_models
    from edgesdk.runtime.metadata import card_path, default_model_name, sidecar_for

    for d in args.dir:
        if not Path(d).is_dir():
            raise EdgeSDKError(f"{d}: no such folder")
    problems: List[str] = []
    rows = list_models([Path(d) for d in args.dir], problems)
    for msg in problems:
        print(f"edgesdk models: error: {msg}", file=sys.stderr)
    default = default_model_name()
    status = EXIT_BAD_INPUT if problems else EXIT_OK  # the good models are still listed
    if args.json:
        print(json.dumps([{**info.as_dict(), "path": str(path)} for info, path in rows], indent=2))
        return status
    if not rows:
        print("no models found")
        return status
    for info, path in rows:
        test = info.metrics.get("bsds500_test", {})
        score = f"test ODS {test['ods']:.4f} OIS {test['ois']:.4f} AP {test['ap']:.4f}" if test else "not evaluated"
        size = path.stat().st_size / 1e6 if path.is_file() else float("nan")
        mark = " (default)" if info.name == default else ""
        buckets = ", ".join(f"{b.height}x{b.width}" for b in info.buckets) or f"any (multiple of {info.multiple})"
        print(f"{info.name}{mark}: {info.backend} {info.precision}, {size:.2f} MB, {score}, threshold {info.threshold:.3f}")
        print(f"    {path}; sizes {buckets}")
        card = card_path(info, sidecar_for(path))
        if card is not None:
            print(f"    model card: {card}")
    return status


def _benchmark_command(args: argparse.Namespace) -> int:
    from edgesdk import io as fileio
    from edgesdk.cpus import available_cpus
    from edgesdk.runtime import bench, list_models

    given = args.model or [info.name for info, _ in list_models()]
    report = bench.report(given, args.size, args.runs, args.warmup, args.threads, low_memory_too=args.low_memory,
                          device=args.device)
    rows = report["rows"]
    if args.out:
        fileio.write_json(args.out, report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        m = report["machine"]
        threads = args.threads or f"{available_cpus()} (every CPU this process may use)"
        print(f"{m['cpu']} ({m['arch']}, {m['cores']} cores), threads {threads}, "
              f"median of {args.runs} runs after {args.warmup} warm-up; each row a fresh process")
        print(bench.table(rows))
    return EXIT_BAD_INPUT if any("error" in r for r in rows) else EXIT_OK


def threshold_arg(text: str):
    """``--threshold``: 'auto' or a number in (0, 1] (above 0 in float32), checked before any model loads."""
    from edgesdk.arguments import check_threshold

    if text == "auto":
        return text
    try:
        return check_threshold(float(text))
    except ValueError as exc:  # float("abc"), or the range
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number in (0, 1], got {text!r} ({exc})") from None


def shard_arg(text: str):
    """``--shard I/N``: the I-th of N shares, 0 <= I < N."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got {text!r}")
    return i, n


def background_arg(text: str):
    """``--background``: white, black, a gray level 0-255, #RRGGBB or R,G,B."""
    named = {"white": (255, 255, 255), "black": (0, 0, 0)}
    t = text.strip().lower()
    try:
        if t in named:
            return named[t]
        if t.startswith("#") and len(t) == 7:
            return tuple(int(t[i : i + 2], 16) for i in (1, 3, 5))
        values = tuple(int(v) for v in t.split(","))
        if len(values) in (1, 3) and all(0 <= v <= 255 for v in values):
            return values * 3 if len(values) == 1 else values
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected white, black, a gray level 0-255, #RRGGBB or R,G,B, got {text!r}")


def count_arg(low: int, what: str, high: Optional[int] = None):
    """An argparse type: an integer in [``low``, ``high``]."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = low - 1
        if n < low or (high is not None and n > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected {what} (an integer {bound}), got {text!r}")
        return n

    return parse


def threads_arg(text: str) -> int:
    """``--threads``: 0 uses every CPU the process may use; at most edgesdk.cpus.MAX_THREADS."""
    from edgesdk.cpus import MAX_THREADS

    return count_arg(0, "0 (every CPU) or a number of threads", MAX_THREADS)(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgesdk",
        description="Edge (contour) detection on a CPU: detect edges in images and videos (detect), make "
                    "ControlNet conditioning images (annotate), list and measure the models (models, benchmark), "
                    "and score edge maps on BSDS500 (eval).",
        epilog="edgesdk COMMAND --help says more about each command.")
    from edgesdk import __version__
    from edgesdk.runtime.backends import DEVICES

    parser.add_argument("--version", action="version", version=f"edgesdk {__version__}")
    from edgesdk.eval.protocol import Protocol
    from edgesdk.postprocess import NmsParams
    from edgesdk.runtime.detector import MAX_PIXELS

    nms, protocol = NmsParams(), Protocol()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ev = sub.add_parser(
        "eval",
        help="BSDS500 boundary benchmark (ODS, OIS, AP, R50) of a folder of predictions",
        description=(
            "Benchmark edge maps against BSDS ground truth with the standard protocol: edge NMS, "
            "99 thresholds, thinning, one-to-one matching within maxDist of the diagonal. Writes "
            "eval_bdry.txt, eval_bdry_img.txt, eval_bdry_thr.txt, summary.json and pr_curve.png."
        ),
    )
    ev.add_argument("--pred", help="folder of predictions (PNG 8/16-bit, .npy, .mat), named like the GT")
    ev.add_argument("--model", help="instead of --pred: run this model (name or path) over --images first")
    ev.add_argument("--images", help="with --model: the folder of images")
    ev.add_argument("--threads", type=threads_arg, default=0, help="with --model: inference threads")
    ev.add_argument("--gt", required=True, help="folder of ground truth (BSDS .mat, or binary PNG)")
    ev.add_argument("-o", "--out", help="output folder (default: <pred>-eval, or eval-<model>)")
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
    ev.add_argument("--workers", type=threads_arg, default=0,
                    help="threads (default: all cores)")
    ev.add_argument("--no-plot", action="store_true", help="skip the PR-curve PNG")
    ev.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(run=_eval_command)

    de = sub.add_parser("detect", help="detect edges in images and videos (files, folders, globs, a camera)",
                        description="Writes <name>_edges.png (thin binary edges) and <name>_prob.png (probability) "
                                    "for every image, <name>_edges.mp4 (same size and frame rate) for every video; "
                                    "a bad input is reported and skipped, the exit code says so.")
    de.add_argument("inputs", nargs="*",
                    help="image or video files, folders or glob patterns (these give images); - reads one image "
                         "from stdin")
    de.add_argument("-o", "--out", default="edges", help="output folder (default: %(default)s)")
    de.add_argument("--model", default="default", help="bundled model name or a .tflite/.ts path (default: %(default)s)")
    de.add_argument("--format", choices=("png", "npy"), default="png",
                    help="png: 8-bit images (default); npy: the float32 probability and bool edges as NumPy arrays")
    de.add_argument("--thin", action=argparse.BooleanOptionalAction, default=True, help="thin edges (default: on)")
    de.add_argument("--nms", action=argparse.BooleanOptionalAction, default=True, help="edge NMS (default: on)")
    de.add_argument("--threshold", type=threshold_arg, default="auto", help="'auto' (the model's ODS threshold) or a number in (0, 1]")
    de.add_argument("--threads", type=threads_arg, default=0, help="inference threads (default: 0, every CPU)")
    de.add_argument("--max-pixels", type=count_arg(1, "a number of pixels"), default=MAX_PIXELS,
                    help="refuse an image with more pixels than this, from its header, before decoding it "
                         "(default: %(default)s); an image within it but larger than the model's largest input "
                         "is detected in tiles, in bounded memory")
    de.add_argument("--device", choices=DEVICES, default="cpu",
                    help="where the model runs: cpu, gpu, npu (LiteRT accelerators; an error where absent) or auto "
                         "(the first that works, else the CPU) (default: %(default)s)")
    de.add_argument("--low-memory", action="store_true",
                    help="LiteRT models: rebuild XNNPACK's indirection buffers every run (less memory, more time)")
    de.add_argument("--save-overlay", action="store_true",
                    help="also write <name>_overlay.png (a video: <name>_overlay.mp4): the edges in red over the "
                         "image, as a viewer shows it")
    de.add_argument("--source", type=count_arg(0, "a camera index"), metavar="N",
                    help="read camera N (until --max-frames or Ctrl-C) and write <out>/cameraN_edges.mp4")
    de.add_argument("--max-frames", type=count_arg(1, "a number of frames"), metavar="N",
                    help="videos and cameras: stop after N frames")
    de.add_argument("--skip-existing", action="store_true",
                    help="keep an input's outputs when all are already there and whole (a video: every frame), to "
                         "finish an interrupted run")
    de.add_argument("--background", type=background_arg, default=(255, 255, 255),
                    help="what transparent pixels are composited over: white (default), black, a gray level, "
                         "#RRGGBB or R,G,B")
    de.add_argument("--workers", type=count_arg(1, "a number of worker processes"), default=1,
                    help="model instances, each in its own process with its share of the CPUs (default: 1)")
    de.add_argument("--shard", type=shard_arg, metavar="I/N",
                    help="only the I-th of N shares of the images (0 <= I < N), for N machines; outputs keep their names")
    de.add_argument("--from-list", metavar="FILE", help="also the paths listed in FILE, one per line (- reads stdin)")
    de.add_argument("--jsonl", metavar="FILE",
                    help="append a JSON record per input to FILE as it finishes (outputs, size, timings, or error)")
    de.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    de.add_argument("--json", action="store_true",
                    help="print one JSON document: per input its outputs, size, edge pixels, timings, or its error")
    de.set_defaults(run=_detect_command)

    an = sub.add_parser("annotate", help="ControlNet-style conditioning images: white soft edges on black",
                        description="Conditioning images for ControlNet-style image generators, made as "
                                    "controlnet_aux's HED/PiDiNet/TEED detectors make them (sizes rounded to "
                                    "multiples of 64), by the bundled model without torch. Writes <out>/<name>.png.")
    an.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    an.add_argument("-o", "--out", default="control", help="output folder (default: %(default)s)")
    an.add_argument("--detect-resolution", type=count_arg(1, "a side in pixels"), default=512,
                    help="the shorter side edges are found at (default: %(default)s)")
    an.add_argument("--image-resolution", type=count_arg(1, "a side in pixels"), default=512,
                    help="the shorter side of the written image (default: %(default)s)")
    an.add_argument("--safe", action="store_true", help="quantise the soft edges to three levels (0, 127, 255)")
    an.add_argument("--scribble", action="store_true", help="thick simplified lines instead of soft edges")
    an.add_argument("--model", default="default", help="bundled model name or a .tflite path (default: %(default)s)")
    an.add_argument("--threads", type=threads_arg, default=0, help="inference threads (default: 0, every CPU)")
    an.add_argument("--device", choices=DEVICES, default="cpu",
                    help="where the model runs: cpu, gpu, npu (LiteRT accelerators; an error where absent) or auto "
                         "(the first that works, else the CPU) (default: %(default)s)")
    an.add_argument("--quiet", action="store_true", help="print only errors")
    an.set_defaults(run=_annotate_command)

    mo = sub.add_parser("models", help="list bundled and local models with their measured numbers")
    mo.add_argument("--dir", action="append", default=[], help="also list the models in this folder")
    mo.add_argument("--json", action="store_true", help="print the models' metadata as JSON")
    mo.set_defaults(run=_models_command)

    be = sub.add_parser("benchmark", help="per-stage latency and peak memory of models on this device")
    be.add_argument("--model", action="append", help="model name or path (repeatable; default: every bundled model)")
    be.add_argument("--size", type=count_arg(1, "a side in pixels"), nargs="+", default=[512, 1000],
                    help="square sizes (default: 512 1000)")
    be.add_argument("--runs", type=count_arg(1, "a number of timed runs"), default=10,
                    help="timed runs per model and size; the table shows their median and 95th percentile "
                         "(default: %(default)s)")
    be.add_argument("--warmup", type=count_arg(0, "a number of warm-up runs"), default=2,
                    help="untimed runs first (default: %(default)s)")
    be.add_argument("--threads", type=threads_arg, default=0, help="inference threads (default: 0, every CPU)")
    be.add_argument("--low-memory", action="store_true", help="also measure each LiteRT model in low-memory mode")
    be.add_argument("--device", choices=DEVICES, default="cpu",
                    help="where the model runs: cpu, gpu, npu (LiteRT accelerators; an error where absent) or auto "
                         "(the first that works, else the CPU) (default: %(default)s)")
    be.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    be.add_argument("-o", "--out", metavar="FILE", help="also write the report (JSON) to FILE")
    be.set_defaults(run=_benchmark_command)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # Paths are printed as the OS gave them: a name that is not valid UTF-8 keeps its bytes
    # (as ls prints it) instead of failing the print after the work was done.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `edgesdk`: what it can do, not a usage error
        parser.print_help()
        return EXIT_OK
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`edgesdk ... | head -1`): stop, as Unix tools do, without an error
        # of our own; stdout points at /dev/null so that the exit's flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (EdgeSDKError, ValueError, OSError) as exc:
        print(f"edgesdk {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"edgesdk {args.command}: interrupted", file=sys.stderr)
        return 130


def console_main() -> None:
    """The ``edgesdk`` command: :func:`main`, then exit without LiteRT's farewell.

    Low-memory mode's CompiledModel makes LiteRT create an environment of its own,
    destroyed only among the C++ static destructors after Python has finished,
    where it logs an INFO line per accelerator; no Python code runs then to filter
    them. Once every output is written and flushed, this process's stderr has
    nothing more to say, so it is closed to them. (Library users keep their stderr.)
    """
    import os

    status = main()
    if "ai_edge_litert.compiled_model" in sys.modules:  # imported only by low-memory mode
        sys.stdout.flush()
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    console_main()
