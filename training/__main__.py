"""python -m training {train, cache-teacher, average-caches, prune, average, evaluate, figures, profile}.

    python -m training train --config training/configs/rcf.toml [--resume]
    python -m training cache-teacher --ckpt runs/rcf/model.pt --out runs/teacher-rcf
    python -m training average-caches --cache runs/teacher-rcf --cache runs/teacher-model --out runs/teacher-ens
    python -m training prune --ckpt runs/rcf/model.pt --ratio 0.5 --out runs/rcf-pruned-init.pt
    python -m training average --ckpt runs/a/model.pt --ckpt runs/b/model.pt --out runs/a+b/model.pt
    python -m training evaluate --ckpt runs/rcf/model.pt --split test
    python -m training profile

Multi-process: torchrun --nproc_per_node 2 -m training train --config ...
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from training.paths import REPO


def _parse_set(items):
    overrides = {}
    for item in items or []:
        key, _, raw = item.partition("=")
        if not _ or "." not in key:
            raise SystemExit(f"--set expects section.key=value, got {item!r}")
        if raw in ("true", "false"):  # TOML's spelling, as in the config files
            overrides[key] = raw == "true"
            continue
        try:
            overrides[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            overrides[key] = raw
    return overrides


def cmd_train(args) -> int:
    from training.config import load_config
    from training.evaluate import evaluate_split
    from training.results import RESULTS_FILE, append_row
    from training.train import Trainer

    cfg = load_config(args.config, _parse_set(args.set))
    out = Path(args.out or REPO / "runs" / cfg.run.name)
    trainer = Trainer(cfg, out)
    if args.resume:
        trainer.resume()
    finished = trainer.fit(until=args.until, progress=sys.stderr.isatty())
    if trainer.rank != 0:
        return 0
    if not finished:
        print(f"stopped at iteration {trainer.iteration}; continue with --resume (checkpoint {trainer.ckpt_path})")
        return 0
    model_path = trainer.save_final()
    print(f"trained {cfg.run.name}: {trainer.iteration} iterations, {trainer.wall_s / 60:.1f} min -> {model_path}")
    if args.no_eval:
        return 0
    res = evaluate_split(trainer.model, cfg.eval.split, cfg.eval.thresholds, cfg.eval.limit, progress=sys.stderr.isatty())
    n = len(res.images)
    print(f"{cfg.eval.split}: ODS {res.ods_f:.4f} OIS {res.ois_f:.4f} AP {res.ap:.4f} ({n} images)")
    trainer.log(f"eval {cfg.eval.split} ({n} images): ODS {res.ods_f:.4f} OIS {res.ois_f:.4f} AP {res.ap:.4f}")
    for path in [out / RESULTS_FILE] + ([args.results] if args.results else []):
        append_row(cfg.run.name, Path(cfg.source).name if cfg.source else "-", trainer.commit, trainer.iteration,
                   trainer.wall_s, cfg.eval.split, n, res.ods_f, res.ois_f, res.ap, notes=args.notes or "", path=path)
    return 0


def cmd_cache_teacher(args) -> int:
    import torch

    from training.cache_teacher import cache_teacher
    from training.checkpoint import build_model, init_weights, load_model

    if args.ckpt:
        teacher = load_model(args.ckpt)
    else:
        teacher = build_model({"kind": args.model})
        init_weights(teacher, "hed_bsds500_vgg16.pth")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = cache_teacher(teacher.to(memory_format=torch.channels_last), Path(args.out), args.splits, limit=args.limit,
                        progress=sys.stderr.isatty(), device=args.device, scales=args.scales)
    print(f"teacher cache in {out}")
    return 0


def cmd_average_caches(args) -> int:
    from training.cache_teacher import average_caches

    out = average_caches(args.cache, args.out, args.weights)
    print(f"ensemble teacher cache in {out}")
    return 0


def cmd_prune(args) -> int:
    from training.checkpoint import architecture, load_model, save_model
    from training.complexity import cpu_latency_ms, report
    from training.pruning import plan_pruning, prune_rcf

    model = load_model(args.ckpt)
    pruned = prune_rcf(model, plan_pruning(model, args.ratio, args.scope))
    size = (args.size, args.size)
    rows = {}
    for name, m in (("before", model), ("after", pruned)):
        rows[name] = {**report(m, size), "cpu_ms@%dx%d" % size: cpu_latency_ms(m, size, runs=args.runs)}
    save_model(Path(args.out), pruned, architecture(pruned, "rcf"), {"pruned_from": str(args.ckpt), "ratio": args.ratio,
                                                                      "scope": args.scope, "complexity": rows})
    print(json.dumps(rows, indent=2))
    print(f"pruned model -> {args.out}; fine-tune it with a config whose [model] init points at it")
    return 0


def cmd_average(args) -> int:
    from training.averaging import average_checkpoints

    try:
        doc = average_checkpoints(args.ckpt, args.out, args.weights, args.bn_batches, args.bn_batch, args.data)
    except (OSError, ValueError) as e:
        raise SystemExit(str(e))
    bn = doc.get("bn_recomputed")
    print(f"{args.out}: average of {', '.join(doc['averaged_from'])} with weights "
          f"{', '.join(f'{w:.3g}' for w in doc['average_weights'])}"
          + (f"; BatchNorm statistics re-estimated on {bn['batches']} x {bn['batch']} crops" if bn else ""))
    return 0


def scales_note(scales, flip: bool = False, merge_sides: bool = False) -> str:
    """How a results row names a test other than the standard one (scale 1, no flip, the fused map)."""
    if len(scales) == 1:
        note = "" if scales[0] == 1 else f"one forward at input scale {scales[0]:g} (map resized back)"
    else:
        note = f"multi-scale test, scales {','.join(map(str, scales))}"
    if flip:
        note = (note + ", " if note else "") + "averaged with the horizontally flipped image's map"
    if merge_sides:
        note = (note + ", " if note else "") + "late merging: the fused and every side output's map averaged"
    return note


def cmd_evaluate(args) -> int:
    import torch

    from training.checkpoint import git_commit, load_model
    from training.evaluate import evaluate_split
    from training.results import RESULTS_FILE, append_row

    doc = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    model = load_model(args.ckpt)
    save_dir = Path(args.save) if args.save else None
    res = evaluate_split(model, args.split, args.thresholds, args.limit, save_dir=save_dir, progress=sys.stderr.isatty(),
                         scales=args.scales, flip=args.flip, merge_sides=args.merge_sides)
    n = len(res.images)
    if args.scales != (1.0,) or args.flip or args.merge_sides:
        # A score of another test must never pass for the standard one in the results file.
        args.notes = scales_note(args.scales, args.flip, args.merge_sides) + "; " + (args.notes or "")
    print(f"{args.split}: ODS {res.ods_f:.4f} OIS {res.ois_f:.4f} AP {res.ap:.4f} R50 {res.r50:.4f} ({n} images)")
    if args.record:
        cfg = doc.get("config", {}) or {}
        run = cfg.get("run", {}).get("name", Path(args.ckpt).parent.name)
        for path in [Path(args.ckpt).parent / RESULTS_FILE] + ([args.results] if args.results else []):
            append_row(run, Path(cfg.get("source") or "-").name, doc.get("commit") or git_commit(),
                       int(doc.get("iterations", 0)), float(doc.get("wall_s", 0.0)), args.split, n, res.ods_f,
                       res.ois_f, res.ap, notes=args.notes or "", path=path)
    return 0


def cmd_figures(args) -> int:
    from training.figures import make_figures, strip_figure
    from training.paths import bsds500_dir

    if args.strip:
        out = Path(args.out) / "sample.png"
        strip_figure(Path(args.strip), out, model=(args.model or ["default"])[0])
        print(f"{out}")
        return 0
    if not args.model:
        raise SystemExit("figures: give --model LABEL=SPEC (repeat) for the PR curves, or --strip IMAGE")
    models = []
    for m in args.model:
        label, sep, spec = m.partition("=")
        if not sep:
            raise SystemExit(f"--model {m!r}: expected LABEL=CHECKPOINT_OR_MODEL")
        models.append((label, spec))
    make_figures(models, Path(args.data or bsds500_dir()), Path(args.out), Path(args.cache), args.images,
                 args.thresholds, progress=sys.stderr.isatty())
    return 0


def cmd_profile(args) -> int:
    from training.checkpoint import build_model
    from training.complexity import cpu_latency_ms, report
    from training.config import load_config
    from training.models.pdc import fold_pixel_differences

    size = (args.size, args.size)
    models = [(kind + (":" + preset if preset else ""), {"kind": kind, "preset": preset or "model"})
              for kind, preset in (("hed", ""), ("rcf", ""), ("student", "model"), ("student", "so-model"))]
    for path in args.config or []:
        m = load_config(path).model
        models.append((Path(path).stem, {"kind": m.kind, "preset": m.preset, "pdc": m.pdc}))
    for name, arch in models:
        m = build_model(arch)
        fold_pixel_differences(m)  # measured as deployed: the export folds them
        row = report(m, size)
        if args.latency:
            row["cpu_ms"] = cpu_latency_ms(m, size, runs=args.runs)
        print(f"{name:18s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    return 0


SCALES_HELP = "image scales whose maps are averaged, e.g. 0.5,1,1.5 (RCF's multi-scale test); default 1"


def parse_floats(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None


def parse_scales(text: str) -> tuple:
    scales = parse_floats(text)
    if not all(s > 0 for s in scales):
        raise argparse.ArgumentTypeError(f"scales must be positive: {text!r}")
    return scales


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train from a TOML config")
    t.add_argument("--config", required=True, type=Path, help="a TOML config (training/configs/*.toml)")
    t.add_argument("--out", type=Path, help="run folder (default: runs/<run.name>)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    t.add_argument("--until", type=int, help="stop (with a checkpoint) at this iteration")
    # extend: "--set a=1 --set b=2" keeps both (a plain nargs list kept only the last).
    t.add_argument("--set", nargs="+", action="extend", help="override config values: section.key=value")
    t.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    t.add_argument("--notes", help="text for the results row")
    t.add_argument("--results", type=Path,
                   help="also append the row to this file, shared by several runs (it always goes to OUT/results.md)")
    t.set_defaults(run=cmd_train)

    c = sub.add_parser("cache-teacher", help="store a teacher's maps and pooled features for distillation")
    c.add_argument("--ckpt", type=Path, help="a trained model (default: HED from the shared weights)")
    c.add_argument("--model", default="hed", help="without --ckpt: the shared network to use (default: %(default)s)")
    c.add_argument("--out", required=True, help="folder for the maps (<id>.png) and pooled features")
    c.add_argument("--splits", nargs="+", default=["train", "val"], help="BSDS500 splits to cache (default: train val)")
    c.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    c.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    c.add_argument("--device", default="cpu", help="where the teacher runs: cpu or cuda[:N]")
    c.add_argument("--scales", type=parse_scales, default=(1.0,), help=SCALES_HELP)
    c.set_defaults(run=cmd_cache_teacher)

    ac = sub.add_parser("average-caches", help="average teacher caches into one (an ensemble teacher)")
    ac.add_argument("--cache", action="append", required=True, type=Path, help="a cache-teacher folder; repeat")
    ac.add_argument("--weights", type=parse_floats, help="one weight per --cache, comma-separated (default: uniform)")
    ac.add_argument("--out", required=True, type=Path, help="folder for the averaged cache")
    ac.set_defaults(run=cmd_average_caches)

    pr = sub.add_parser("prune", help="L1 filter pruning of a trained RCF")
    pr.add_argument("--ckpt", required=True, type=Path, help="a trained RCF (model.pt)")
    pr.add_argument("--ratio", type=float, required=True, help="fraction of the filters to remove, e.g. 0.5")
    pr.add_argument("--scope", choices=["layer", "global"], default="layer",
                    help="rank filters within each layer or across the network (default: %(default)s)")
    pr.add_argument("--out", required=True, help="where the pruned model.pt goes (fine-tune it with a config)")
    pr.add_argument("--size", type=int, default=1000, help="image side for FLOPs and latency")
    pr.add_argument("--runs", type=int, default=3, help="latency runs before and after (median)")
    pr.set_defaults(run=cmd_prune)

    av = sub.add_parser("average", help="average the weights of runs fine-tuned from one checkpoint (a model soup)")
    av.add_argument("--ckpt", action="append", required=True, type=Path, help="a run's model.pt; repeat")
    av.add_argument("--weights", type=parse_floats, help="one weight per --ckpt, comma-separated (default: uniform)")
    av.add_argument("--out", required=True, type=Path, help="where the averaged model goes, e.g. runs/NAME/model.pt")
    av.add_argument("--bn-batches", type=int, default=0,
                    help="re-estimate the average's BatchNorm statistics on this many batches of augmented "
                         "train+val crops (SWA's BatchNorm update); 0: keep the averaged statistics")
    av.add_argument("--bn-batch", type=int, default=8, help="crops per batch of --bn-batches")
    av.add_argument("--data", type=Path, help="BSDS500 folder for --bn-batches (default: the shared copy)")
    av.set_defaults(run=cmd_average)

    e = sub.add_parser("evaluate", help="predict a BSDS500 split and benchmark it")
    e.add_argument("--ckpt", required=True, type=Path, help="a model.pt written by python -m training")
    e.add_argument("--split", choices=["train", "val", "test"], default="val", help="BSDS500 split (default: %(default)s)")
    e.add_argument("--thresholds", type=int, default=99, help="thresholds of the sweep (default: %(default)s)")
    e.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    e.add_argument("--save", help="also write the predicted maps (8-bit PNG) here")
    e.add_argument("--record", action="store_true",
                   help="append a results row to results.md beside the checkpoint (and to --results FILE)")
    e.add_argument("--scales", type=parse_scales, default=(1.0,), help=SCALES_HELP)
    e.add_argument("--flip", action="store_true",
                   help="also average the horizontally flipped image's map (mirrored back) at every scale")
    e.add_argument("--merge-sides", action="store_true",
                   help="average the fused map with every side output's (HED's late merging), not the fused alone")
    e.add_argument("--notes", help="with --record: text for the results row")
    e.add_argument("--results", type=Path, help="with --record: also append the row to this shared file")
    e.set_defaults(run=cmd_evaluate)

    fg = sub.add_parser("figures", help="PR curves and edge maps of several models on BSDS500 test")
    fg.add_argument("--model", action="append",
                    help="LABEL=CHECKPOINT.pt or LABEL=MODEL (anything edgesdk.load takes); repeat. "
                         "With --strip: the model to run (default: the bundled default)")
    fg.add_argument("--strip", metavar="IMAGE",
                    help="instead: OUT/sample.png, the image, probability and edges of IMAGE side by side "
                         "(through the runtime, as edgesdk detect makes them)")
    fg.add_argument("--out", default="docs/figures", help="output folder (default: %(default)s)")
    fg.add_argument("--cache", default="runs/figures", help="cached predictions (16-bit PNG)")
    fg.add_argument("--images", nargs="+", default=["100007", "101027", "103006"],
                    help="test images of the edge-map figure (default: the bundled sample's)")
    fg.add_argument("--data", help="BSDS500 folder (default: ../shared/data/BSDS500)")
    fg.add_argument("--thresholds", type=int, default=99, help="thresholds of the sweep (default: %(default)s)")
    fg.set_defaults(run=cmd_figures)

    pf = sub.add_parser("profile", help="params, FLOPs (and latency) of every model at a size")
    pf.add_argument("--size", type=int, default=1000, help="square input side (default: %(default)s)")
    pf.add_argument("--latency", action="store_true", help="also time each model on the CPU")
    pf.add_argument("--runs", type=int, default=3, help="with --latency: timed runs (median)")
    pf.add_argument("--config", type=Path, action="append",
                    help="also the network a training config builds, as exported (repeatable)")
    pf.set_defaults(run=cmd_profile)
    return p


def main(argv=None) -> int:
    from training.console import log_on_stdout

    args = build_parser().parse_args(argv)
    with log_on_stdout("training"):  # the library reports through logging; the command shows it
        return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
