"""The one GPU lease of issue 5 (2026-11-26, one H200, 15 minutes of device time in all).

What it runs, on a copy of the repository with ``gpu/`` carried beside it:

1. the RCF teacher, continued from ``runs/rcf-4500`` (sent as bfloat16) with the
   recipe of ``rcf.toml`` at batch 8, its cosine schedule sized from the
   throughput measured in its first iterations so that it ends at a deadline;
2. meanwhile, the Model alone continued from ``runs/model-c3`` for 5000-iteration
   cycles of ``model.toml`` (c4, then c5, ... while time allows);
3. after the teacher: its maps cached on train+val, then one 5000-iteration cycle of
   ``model-hinton.toml`` (Hinton KD, T=2, alpha 0.5) from the same ``model-c3``:
   against the alone c4, the A/B of "distillation helps".

Nothing is scored there (the test split is not sent); the models come back under
``$OUT`` and are evaluated on the CPU with ``python -m training evaluate``.
A second call trained two teachers side by side (``--teachers-only 0.1,1.0``: the
backbone's learning-rate factor) from the first call's teacher.

A second lease (a later session the same day) used two more modes: ``--kd-balance`` (the KD
cycle with ``loss.kd_balance``) with ``--backbone-lr-mult 1.0`` in the layout above, and
``--kd-only --kd-seeds 0,1 --teacher-scales 0.5,1,1.5``: no teacher training, the teacher
init's maps cached at RCF's three test scales, one KD cycle per seed side by side.

A fourth lease (2026-11-27, one H200) used ``--eta-teachers 0.5,0.15``: RCF continued from
``rcf-rebuild`` at each labelling threshold eta side by side (0.5 the control), each teacher's maps
cached, then from each one the bundled network's η-0.15 KD cycle (the CPU's ``model-g8-...-s1``
recipe); packed with ``pack --init runs/rcf-rebuild/model.pt:rcf-rebuild.bf16.pt --init
runs/model-g7-kd-bal-eta015-lr3e-4-s1-cpu/model.pt:model-g7-s1.pt``.

A fifth lease (2026-11-27, stop 27, a fresh machine again) used ``--soup-teachers 0.15:0,0.15:1,0.5:0``:
a parent RCF from HED as ``rcf-rebuild`` was made, then three siblings from it side by side (label
threshold eta and seed per sibling), then their uniform weight average; the soup and two siblings come
back in the call, the third sibling and the parent in a second call on the still-warm machine
(``cp /tmp/gpu-work/later/* $OUT``; it came a minute late, after the machine's 30 s of idle warmth, and
found a fresh machine: issue it at once, or send less); packed with ``pack --init
../shared/weights/hed_bsds500_vgg16.pth:hed_bsds500_vgg16.bf16.pth``.

A third lease (a fresh machine: no run of the earlier ones survived it) used ``--rebuild``: from the
shared weights alone, RCF from HED (1500 iterations at backbone lr x0.1, then the full rate to a
deadline) beside two seeds of the Model from ImageNet (a cycle alone to a deadline, then a class-balanced
KD cycle from the new teacher's maps), packed with
``pack --init ../shared/weights/hed_bsds500_vgg16.pth:hed_bsds500_vgg16.bf16.pth --init
../shared/weights/mobilenet_v2_imagenet.pth:mobilenet_v2_imagenet.bf16.pth``.

    python docs/scripts/gpu-2026-11-26.py pack --init runs/rcf-4500/model.pt:rcf-4500.bf16.pt \
        --init runs/model-c3/model.pt:model-c3.pt                 # here: fill gpu/ (git-ignored)

    python3 docs/scripts/gpu-2026-11-26.py run --budget 520      # on the device
    python3 docs/scripts/gpu-2026-11-26.py run --budget 300 --smoke   # a CPU rehearsal of every stage
"""

from __future__ import annotations

import argparse
import glob
import io
import lzma
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from training.__main__ import parse_scales  # noqa: E402  (torch-free, like the driver's own start)
CARRIED = REPO / "gpu"
WORK = Path(os.environ.get("GPU_WORK", "/tmp/gpu-work"))
OUT = Path(os.environ.get("OUT", "/tmp/gpu-out"))
STUDENT_ITERATIONS = 5000


def say(msg: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    with open(OUT / "driver.log", "a") as fh:
        fh.write(line + "\n")


def cast_floats(state_dict: dict, dtype) -> dict:
    """The state dict with its floating-point tensors in ``dtype`` (integer buffers stay as they are)."""
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}


def save_xz(doc: dict, path: Path) -> None:
    """``doc`` as torch saves it, xz-compressed into ``path`` (the form inits travel in, and returns may)."""
    import torch

    buf = io.BytesIO()
    torch.save(doc, buf)
    path.write_bytes(lzma.compress(buf.getvalue(), preset=6))


def load_pt(path: Path) -> dict:
    """A torch file, or one ``save_xz`` wrote (``*.xz``), loaded on the CPU."""
    import torch

    raw = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)


SHARED_WEIGHTS = ("hed_bsds500_vgg16.pth", "mobilenet_v2_imagenet.pth")


def unpack(args) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    if args.rebuild or args.soup_teachers:
        # From the shared weights: sent as gpu/<stem>.bf16.pth.xz, written back in float32 to
        # WORK/shared/weights/<name>, which the stages find through $EDGESDK_SHARED.
        import torch

        (WORK / "shared" / "weights").mkdir(parents=True, exist_ok=True)
        for name in SHARED_WEIGHTS[:1] if args.soup_teachers else SHARED_WEIGHTS:  # the soup needs HED only
            sd = load_pt(CARRIED / f"{Path(name).stem}.bf16.pth.xz")
            torch.save(cast_floats(sd, torch.float32), WORK / "shared" / "weights" / name)
        return
    for name in {args.teacher_init, args.alone_init, args.kd_init}:
        (WORK / name).write_bytes(lzma.decompress((CARRIED / f"{name}.xz").read_bytes()))


def build_native() -> None:
    """The C++ kernels, compiled in place (the evaluation imports them; nothing here scores)."""
    if glob.glob(str(REPO / "edgesdk" / "_native*.so")):
        return
    import pybind11

    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    inc = [f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}", f"-I{REPO / 'csrc'}"]
    objs, procs = [], []
    for src in sorted((REPO / "csrc").glob("*.cpp")):
        obj = WORK / f"{src.stem}.o"
        objs.append(str(obj))
        procs.append(subprocess.Popen(["c++", "-O3", "-fno-math-errno", "-ffp-contract=off", "-std=c++17", "-fPIC",
                                       *inc, "-c", str(src), "-o", str(obj)]))
    if any(p.wait() for p in procs):
        raise RuntimeError("compiling csrc failed")
    subprocess.run(["c++", "-shared", *objs, "-o", str(REPO / "edgesdk" / f"_native{suffix}")], check=True)


def sets(smoke: bool, device: str, **extra) -> dict:
    base = {"run.device": device, "run.checkpoint_minutes": 1e9, "run.log_every": 50}
    if smoke:
        base.update({"data.crop": 96, "run.log_every": 5})
    base.update(extra)
    return base


def teacher(args) -> None:
    """RCF to a deadline: measure its throughput, then fix the schedule's length to end in time."""
    import torch

    from training.cache_teacher import cache_teacher
    from training.config import load_config
    from training.train import Trainer

    torch.backends.cudnn.benchmark = True
    cfg = load_config(REPO / "training/configs/rcf.toml", sets(
        args.smoke, args.device, **{"run.name": args.teacher_name, "model.init": str(WORK / args.teacher_init),
                                    "run.batch": 2 if args.smoke else 8, "run.workers": args.workers,
                                    "run.iterations": 10**7,
                                    **({"model.backbone_lr_mult": args.backbone_lr_mult} if args.backbone_lr_mult else {})}))
    tr = Trainer(cfg, WORK / args.teacher_name)
    path = fit_to_deadline(tr, args.deadline, args.smoke, "teacher")
    return_teacher(path, args.teacher_name)
    if args.no_kd:
        return
    cache = WORK / f"teacher-{args.teacher_name}"
    cache_teacher(tr.model.float(), cache, limit=4 if args.smoke else 0, device=str(tr.device), scales=args.teacher_scales)
    say("teacher: maps cached")
    del tr
    name = kd_name(args)
    kd = student(args, name, "training/configs/model-hinton.toml", WORK / args.kd_init,
                 {"teacher.cache": str(cache), "data.limit": 4 if args.smoke else 0,
                  **({"loss.kd_balance": True} if args.kd_balance else {})})
    shutil.copy(kd, OUT / f"{name}.pt")


def fit_to_deadline(tr, deadline: float, smoke: bool, label: str) -> Path:
    """Train ``tr`` (configured with a huge iteration count) on a cosine schedule that ends by ``deadline``.

    The throughput of its first iterations fixes the schedule's length; the run is saved and its path returned.
    """
    warm, probe = (4, 8) if smoke else (60, 160)
    tr.fit(until=warm)
    t = time.time()
    tr.fit(until=probe)
    rate = (probe - warm) / (time.time() - t)
    tr.cfg.run.iterations = probe + max(1, int(0.95 * rate * (deadline - time.time())))
    say(f"{label}: {rate:.2f} it/s at batch {tr.cfg.run.batch}; schedule set to {tr.cfg.run.iterations} iterations")
    tr.fit()
    path = tr.save_final()
    say(f"{label}: {tr.iteration} iterations in {tr.wall_s:.0f} s -> {path}")
    return path


def return_teacher(path: Path, name: str, xz: bool = False, out: Path = OUT) -> None:
    """The teacher into OUT as two bfloat16 halves (by bytes), each under the 16 MiB a returned file may have.

    ``xz``: each half xz-compressed (``NAME.a.pt.xz``; bf16 weights shrink by about 30 %), so that two
    teachers and two students fit the 64 MiB that come back.
    """
    import torch

    doc = torch.load(path, map_location="cpu", weights_only=True)
    keys, total, acc, cut = list(doc["state_dict"]), sum(t.numel() for t in doc["state_dict"].values()), 0, 0
    for cut, k in enumerate(keys):
        if acc >= total / 2:
            break
        acc += doc["state_dict"][k].numel()
    for part, chunk in (("a", keys[:cut]), ("b", keys[cut:])):
        half = {k: v for k, v in doc.items() if k != "state_dict"}
        half["state_dict"] = cast_floats({k: doc["state_dict"][k] for k in chunk}, torch.bfloat16)
        save_out(half, f"{name}.{part}.pt", xz, out)


def save_out(doc: dict, name: str, xz: bool, out: Path = OUT) -> None:
    """``doc`` into ``out`` (OUT) as ``name``, or xz-compressed as ``name.xz``."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    if xz:
        save_xz(doc, out / f"{name}.xz")
    else:
        torch.save(doc, out / name)


def kd_name(args) -> str:
    return (f"model-c{args.cycle}-kd" + ("-bal" if args.kd_balance else "")
            + ("-ms" if tuple(args.teacher_scales) != (1.0,) else "") + (f"-s{args.seed}" if args.seed else ""))


def student(args, name: str, config: str, init: Path, extra: dict) -> Path:
    """One student cycle of ``config`` from ``init`` (STUDENT_ITERATIONS unless ``extra`` sets
    ``run.iterations``; ``extra`` overrides the config); the saved model's path."""
    import torch

    from training.config import load_config
    from training.train import Trainer

    torch.backends.cudnn.benchmark = True

    iterations = 6 if args.smoke else STUDENT_ITERATIONS
    cfg = load_config(REPO / config, sets(args.smoke, args.device, **{
        "run.name": name, "model.init": str(init), "run.iterations": iterations, "run.workers": args.student_workers,
        **extra}))
    t = time.time()
    tr = Trainer(cfg, WORK / name)
    tr.fit()
    path = tr.save_final()
    say(f"{name}: {tr.iteration} iterations in {time.time() - t:.0f} s")
    return path


LATER = "later"  # WORK/later: what a second call on the still-warm machine copies into OUT


def parse_siblings(spec: str) -> list:
    """``"0.15:0,0.5:1"`` -> [(0.15, 0), (0.5, 1)]: the (eta, seed) of each sibling teacher."""
    out = []
    for item in spec.split(","):
        eta, _, seed = item.partition(":")
        out.append((float(eta), int(seed or 0)))
    return out


def sibling_name(parent: str, eta: float, seed: int) -> str:
    return f"{parent}-eta{f'{eta:g}'.replace('.', '')}-s{seed}"


def soup_parent(args) -> None:
    """RCF from the shared HED as ``rcf-rebuild`` was made (:func:`teacher_from_hed`, eta 0.5): the parent
    of the sibling teachers. It goes back only in the second call."""
    teacher_from_hed(args, "parent")


def soup_sibling(args) -> None:
    """One sibling: the parent continued at --eta with --seed (VGG16 at the full lr, batch 8) to --deadline.

    Saved as WORK/<name>/model.pt; the driver averages the siblings and sends them back."""
    import torch

    from training.config import load_config
    from training.train import Trainer

    torch.backends.cudnn.benchmark = True
    name = sibling_name(args.teacher_name, args.eta, args.seed)
    cfg = load_config(REPO / "training/configs/rcf.toml", sets(
        args.smoke, args.device, **{"run.name": name, "model.init": str(WORK / args.teacher_name / "model.pt"),
                                    "run.batch": 2 if args.smoke else 8, "run.workers": args.workers,
                                    "run.seed": args.seed, "run.iterations": 10**7, "model.backbone_lr_mult": 1.0,
                                    "data.eta": args.eta}))
    tr = Trainer(cfg, WORK / name)
    fit_to_deadline(tr, args.deadline, args.smoke, name)


def soup_and_return(args, names: list) -> None:
    """The uniform weight average of the siblings (``training average``'s), then what goes back: the
    soup and the first and last sibling into OUT now, the others and the parent into WORK/later."""
    from concurrent.futures import ThreadPoolExecutor

    from training.averaging import average_checkpoints

    soup = f"soup-{args.teacher_name}-{len(names)}"
    average_checkpoints([WORK / n / "model.pt" for n in names], WORK / soup / "model.pt")
    say(f"{soup}: the uniform average of {', '.join(names)}")
    now = [soup, names[0], names[-1]]
    later = [n for n in names if n not in now] + [args.teacher_name]
    with ThreadPoolExecutor(len(now) + len(later)) as pool:  # lzma releases the GIL
        jobs = [pool.submit(return_teacher, WORK / n / "model.pt", n, True, OUT) for n in now]
        jobs += [pool.submit(return_teacher, WORK / n / "model.pt", n, True, WORK / LATER) for n in later]
        for j in jobs:
            j.result()
    say(f"sent now: {now}; kept in {WORK / LATER} for a second call: {later}")


def side_kd(args) -> None:
    """The teacher init's maps cached (at --teacher-scales), then a KD cycle from --kd-init with --seed.

    One process per seed of --kd-seeds, side by side: the first seed's writes the cache, the others
    wait for its ``done`` marker.
    """
    import torch

    from training.cache_teacher import cache_teacher
    from training.checkpoint import load_model

    cache = WORK / "teacher-init"
    if args.seed == int(args.kd_seeds.split(",")[0]):
        teacher = load_model(WORK / args.teacher_init).float().to(memory_format=torch.channels_last)
        cache_teacher(teacher, cache, limit=4 if args.smoke else 0, device=args.device, scales=args.teacher_scales)
        del teacher
        (cache / "done").touch()
        say(f"side-kd: {args.teacher_init} maps cached at scales {args.teacher_scales}")
    while not (cache / "done").exists():
        time.sleep(2)
    name = kd_name(args)
    kd = student(args, name, "training/configs/model-hinton.toml", WORK / args.kd_init,
                 {"teacher.cache": str(cache), "data.limit": 4 if args.smoke else 0, "run.seed": args.seed,
                  **({"loss.kd_balance": True} if args.kd_balance else {})})
    shutil.copy(kd, OUT / f"{name}.pt")


def eta_teacher(args) -> None:
    """RCF from --teacher-init at labelling threshold --eta to --deadline (backbone at the full lr), its
    maps cached, then the bundled network's KD cycle from them (the CPU's ``model-g8-...-s1`` recipe:
    2000 iterations, η 0.15, peak lr 3e-4, class-balanced KD, seed 1) from --kd-init.

    The teacher and the student come back xz-compressed (two of each fit the 64 MiB a call returns).
    """
    import torch

    from training.cache_teacher import cache_teacher
    from training.config import load_config
    from training.train import Trainer

    torch.backends.cudnn.benchmark = True
    tag = f"{args.eta:g}".replace(".", "")
    name = f"{args.teacher_name}-eta{tag}"
    cfg = load_config(REPO / "training/configs/rcf.toml", sets(
        args.smoke, args.device, **{"run.name": name, "model.init": str(WORK / args.teacher_init),
                                    "run.batch": 2 if args.smoke else 8, "run.workers": args.workers,
                                    "run.iterations": 10**7, "model.backbone_lr_mult": 1.0, "data.eta": args.eta}))
    tr = Trainer(cfg, WORK / name)
    path = fit_to_deadline(tr, args.deadline, args.smoke, name)
    return_teacher(path, name, xz=True)
    cache = WORK / f"teacher-{name}"
    cache_teacher(tr.model.float(), cache, limit=4 if args.smoke else 0, device=str(tr.device))
    say(f"{name}: maps cached")
    del tr
    student_name = f"model-g8-kd-bal-eta015-lr3e-4-s1-t{tag}"
    kd = student(args, student_name, "training/configs/model-hinton.toml", WORK / args.kd_init, {
        "run.seed": 1, "run.iterations": 6 if args.smoke else 2000, "data.eta": 0.15, "optim.lr": 3e-4,
        "loss.kd_balance": True, "teacher.cache": str(cache), "data.limit": 4 if args.smoke else 0})
    save_out(load_pt(kd), f"{student_name}.pt", xz=True)


REBUILD_CACHE = "teacher-rebuild"


def teacher_from_hed(args, label: str):
    """RCF from the shared HED weights in two phases: ``--teacher-heads-its`` iterations with the backbone at
    the config's tenth of the lr (the new 21-channel heads learn), then the full rate on a cosine schedule
    sized to end by ``--deadline``. Returns the trainer and the saved model's path."""
    import torch

    from training.config import load_config
    from training.train import Trainer

    torch.backends.cudnn.benchmark = True
    heads = f"{args.teacher_name}-heads"
    cfg = load_config(REPO / "training/configs/rcf.toml", sets(
        args.smoke, args.device, **{"run.name": heads, "run.batch": 2 if args.smoke else 8, "run.workers": args.workers,
                                    "run.iterations": 6 if args.smoke else args.teacher_heads_its,
                                    "model.backbone_lr_mult": 0.1}))
    tr = Trainer(cfg, WORK / heads)
    tr.fit()
    init = tr.save_final()
    say(f"{label} heads: {tr.iteration} iterations in {tr.wall_s:.0f} s")
    del tr
    cfg = load_config(REPO / "training/configs/rcf.toml", sets(
        args.smoke, args.device, **{"run.name": args.teacher_name, "model.init": str(init),
                                    "run.batch": 2 if args.smoke else 8, "run.workers": args.workers,
                                    "run.iterations": 10**7, "model.backbone_lr_mult": 1.0}))
    tr = Trainer(cfg, WORK / args.teacher_name)
    return tr, fit_to_deadline(tr, args.deadline, args.smoke, label)


def rebuild_teacher(args) -> None:
    """RCF from the shared HED weights: heads first (backbone lr x0.1), then the full rate to a deadline.

    The two phases are the CPU cycles' recipe then the GPU cycles' (docs/results.md, The teacher), in
    one lease. The teacher goes back in bf16 halves; its maps are cached (padded, as evaluated) for the
    students' KD cycles, which wait for the ``done`` marker.
    """
    from training.cache_teacher import cache_teacher

    tr, path = teacher_from_hed(args, "teacher")
    return_teacher(path, args.teacher_name)
    cache = WORK / REBUILD_CACHE
    cache_teacher(tr.model.float(), cache, limit=4 if args.smoke else 0, device=str(tr.device))
    (cache / "done").touch()
    say("teacher: maps cached")


def rebuild_student(args) -> None:
    """The Model from ImageNet: one cycle alone to --alone-deadline, then one class-balanced KD cycle
    from the rebuilt teacher's maps to --deadline (both cosine schedules sized to their deadlines)."""
    import torch

    from training.config import load_config
    from training.train import Trainer

    torch.backends.cudnn.benchmark = True
    alone = f"model-g1-s{args.seed}"
    cfg = load_config(REPO / "training/configs/model.toml", sets(args.smoke, args.device, **{
        "run.name": alone, "run.seed": args.seed, "run.iterations": 10**7, "run.workers": args.student_workers}))
    tr = Trainer(cfg, WORK / alone)
    init = fit_to_deadline(tr, args.alone_deadline, args.smoke, alone)
    shutil.copy(init, OUT / f"{alone}.pt")
    del tr
    cache = WORK / REBUILD_CACHE
    while not (cache / "done").exists():
        if time.time() > args.deadline - 60:
            say(f"{alone}: no teacher maps in time; no KD cycle")
            return
        time.sleep(2)
    name = f"model-g2-kd-bal-s{args.seed}"
    cfg = load_config(REPO / "training/configs/model-hinton.toml", sets(args.smoke, args.device, **{
        "run.name": name, "run.seed": args.seed, "run.iterations": 10**7, "run.workers": args.student_workers,
        "model.init": str(init), "teacher.cache": str(cache), "loss.kd_balance": True,
        "data.limit": 4 if args.smoke else 0}))
    tr = Trainer(cfg, WORK / name)
    shutil.copy(fit_to_deadline(tr, args.deadline, args.smoke, name), OUT / f"{name}.pt")


def students_alone(args) -> None:
    """Cycles of the Model alone from --alone-init while the teacher trains, as many as fit."""
    init, k, last = WORK / args.alone_init, args.cycle, 0.0
    while True:
        if last and time.time() + 1.1 * last > args.deadline:
            say(f"alone: no time for cycle c{k} (the last took {last:.0f} s)")
            return
        t = time.time()
        name = f"model-c{k}"
        init = student(args, name, "training/configs/model.toml", init, {})
        last = time.time() - t
        # The first is the A/B baseline; later cycles overwrite one file (eight files come back at most).
        shutil.copy(init, OUT / (f"{name}.pt" if k == args.cycle else "model-alone-last.pt"))
        k += 1


def wait_and_archive(procs, hard: float, archive: bool = True) -> list:
    """Wait for the stages (SIGTERM, on which a trainer checkpoints, at ``hard``); then pack their logs
    (unless ``archive`` is false: a later stage follows). Returns their exit codes.

    At most eight files come back: the logs travel as one archive, and their ends in the output.
    """
    codes = []
    for name, p in procs:
        try:
            rc = p.wait(timeout=max(1.0, hard - time.time()))
        except subprocess.TimeoutExpired:
            p.terminate()
            rc = p.wait(timeout=30)
        say(f"{name} exited with {rc}")
        codes.append(rc)
    if archive:
        archive_logs([name for name, _ in procs])
    return codes


def archive_logs(names) -> None:
    """Every stage's log into OUT/logs.tar.gz, and the ends of the named ones printed."""
    with tarfile.open(OUT / "logs.tar.gz", "w:gz") as tar:
        for log in [*WORK.glob("*.log"), *WORK.glob("*/train.log")]:
            tar.add(log, arcname=str(log.relative_to(WORK)))
    for name in names:
        print(f"--- end of {name}.log", "".join((WORK / f"{name}.log").read_text().splitlines(True)[-15:]), sep="\n")


def stage(me, name: str, args, env) -> tuple:
    """A stage of this script in its own process, its output in WORK/<name>.log."""
    with open(WORK / f"{name}.log", "w") as log:
        return name, subprocess.Popen([*me, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def run(args) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.time()
    say(f"python {sys.version.split()[0]}; budget {args.budget:.0f} s")
    unpack(args)
    build_native()
    import torch

    say(f"torch {torch.__version__}, cuda {torch.cuda.is_available()} "
        f"{torch.cuda.get_device_name() if torch.cuda.is_available() else ''}; unpacked and built in {time.time() - start:.0f} s")
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENCV_FOR_THREADS_NUM="1")
    me = [sys.executable, __file__]
    common = ["--device", args.device, "--workers", str(args.workers), "--student-workers", str(args.student_workers),
              "--teacher-init", args.teacher_init, "--teacher-name", args.teacher_name, "--alone-init", args.alone_init,
              "--kd-init", args.kd_init, "--cycle", str(args.cycle),
              *(["--backbone-lr-mult", str(args.backbone_lr_mult)] if args.backbone_lr_mult else []),
              *(["--kd-balance"] if args.kd_balance else []),
              "--teacher-scales", ",".join(map(str, args.teacher_scales)), "--kd-seeds", args.kd_seeds]
    if args.smoke:
        common.append("--smoke")
    if args.rebuild:
        # Nothing kept from earlier leases: the teacher from HED and two seeds of the Model from
        # ImageNet side by side; the students' alone cycles end when the teacher's maps are due.
        env["EDGESDK_SHARED"] = str(WORK / "shared")
        common += ["--teacher-heads-its", str(args.teacher_heads_its)]
        procs = [stage(me, "teacher", ["rebuild-teacher", "--deadline", str(start + 0.50 * args.budget), *common], env)]
        for k in args.kd_seeds.split(","):
            procs.append(stage(me, f"student-s{k}", [
                "rebuild-student", "--seed", k, "--alone-deadline", str(start + 0.57 * args.budget),
                "--deadline", str(start + 0.89 * args.budget), *common], env))
        wait_and_archive(procs, start + 0.95 * args.budget)
    elif args.soup_teachers:
        # Sibling teachers for a weight average: a parent from HED (as rcf-rebuild), then one sibling per
        # (eta, seed) side by side from it, each to the same deadline; then their uniform average.
        env["EDGESDK_SHARED"] = str(WORK / "shared")
        sibs = parse_siblings(args.soup_teachers)
        sub = [*common, "--teacher-heads-its", str(args.teacher_heads_its)]
        parent = stage(me, "parent", ["soup-parent", "--deadline", str(start + args.teacher_share * args.budget), *sub],
                       env)
        if wait_and_archive([parent], start + args.teacher_share * args.budget + 60, archive=False) != [0]:
            archive_logs(["parent"])
            raise SystemExit("the parent teacher failed; no siblings")
        procs = []
        for eta, seed in sibs:
            s2 = list(sub)
            s2[s2.index("--workers") + 1] = str(max(1, args.workers // len(sibs)))
            procs.append(stage(me, sibling_name(args.teacher_name, eta, seed), [
                "soup-sibling", "--eta", str(eta), "--seed", str(seed),
                "--deadline", str(start + args.sibling_share * args.budget), *s2], env))
        codes = wait_and_archive(procs, start + args.sibling_share * args.budget + 60, archive=False)
        names = [sibling_name(args.teacher_name, e, k) for (e, k), rc in zip(sibs, codes) if rc == 0]
        if names:
            soup_and_return(args, names)
        archive_logs(["parent", *(n for n, _ in procs)])
    elif args.eta_teachers:
        # One teacher per labelling threshold, side by side, then each one's KD cycle: an A/B of the
        # teacher's eta (0.5, rcf.toml's, is the control) and of what it gives the student.
        etas = args.eta_teachers.split(",")
        procs = []
        for eta in etas:
            sub = list(common)
            sub[sub.index("--workers") + 1] = str(args.workers // len(etas))
            sub[sub.index("--student-workers") + 1] = str(args.student_workers // len(etas))
            procs.append(stage(me, f"eta{eta}", ["eta-teacher", "--eta", eta,
                                                 "--deadline", str(start + args.teacher_share * args.budget), *sub], env))
        wait_and_archive(procs, start + 0.95 * args.budget)
    elif args.teachers_only:
        # Teachers alone, side by side, one per backbone learning-rate factor: an A/B of the recipe.
        mults = args.teachers_only.split(",")
        deadline = start + 0.85 * args.budget
        procs = []
        for m in mults:
            name = f"{args.teacher_name}-bb{m}"
            sub = [a if a != args.teacher_name else name for a in common]
            sub[sub.index("--workers") + 1] = str(args.workers // len(mults))
            procs.append(stage(me, name, ["teacher", "--deadline", str(deadline), "--no-kd", "--backbone-lr-mult", m,
                                          *sub], env))
        wait_and_archive(procs, start + 0.97 * args.budget)
    elif args.kd_only:
        # No teacher training: one KD cycle per seed, side by side, from the teacher init's maps.
        procs = [stage(me, f"sidekd-s{k}", ["sidekd", "--seed", k, *common], env) for k in args.kd_seeds.split(",")]
        wait_and_archive(procs, start + 0.95 * args.budget)
    else:
        # The teacher stops at 55 % of the budget; the KD cycle and packing need the rest. Alone
        # cycles end by 65 %, so that the KD cycle has the GPU to itself soon after it starts.
        procs = [stage(me, "teacher", ["teacher", "--deadline", str(start + 0.55 * args.budget), *common], env),
                 stage(me, "alone", ["alone", "--deadline", str(start + 0.65 * args.budget), *common], env)]
        wait_and_archive(procs, start + 0.95 * args.budget)
    say(f"done in {time.time() - start:.0f} s")


def pack(args) -> None:
    """Here, before the lease: fill gpu/ with what travels (64 MiB a call, the repository included).

    BSDS500 train+val: the JPEGs as they are, the ground truth rewritten as ``.mat`` files holding only
    the annotators' ``Boundaries`` (5.1 MB instead of 13.6; each checked equal on reading). Inits:
    ``SRC:NAME`` xz-compressed to ``gpu/NAME.xz``, cast to bfloat16 when NAME contains ``.bf16.``.
    """
    import numpy as np
    import scipy.io
    import torch

    from edgesdk.eval import read_ground_truth
    from training.paths import bsds500_dir

    src, dst = bsds500_dir(), CARRIED / "BSDS500"
    for split in ("train", "val"):
        (dst / "images" / split).mkdir(parents=True, exist_ok=True)
        (dst / "groundTruth" / split).mkdir(parents=True, exist_ok=True)
        for img in sorted((src / "images" / split).glob("*.jpg")):
            shutil.copy2(img, dst / "images" / split / img.name)
            maps = read_ground_truth(src / "groundTruth" / split / f"{img.stem}.mat")
            cells = np.empty((1, len(maps)), dtype=object)
            for i, m in enumerate(maps):
                cells[0, i] = {"Boundaries": m.astype(np.uint8)}
            out = dst / "groundTruth" / split / f"{img.stem}.mat"
            scipy.io.savemat(out, {"groundTruth": cells}, do_compression=True)
            if not all(np.array_equal(a, b) for a, b in zip(read_ground_truth(out), maps)):
                raise RuntimeError(f"{out}: does not read back as {img.stem}'s ground truth")
    for spec in args.init or []:
        path, _, name = spec.partition(":")
        doc = torch.load(path, map_location="cpu", weights_only=True)
        if ".bf16." in name:
            if "state_dict" in doc:
                doc["state_dict"] = cast_floats(doc["state_dict"], torch.bfloat16)
            else:  # a plain state dict: the shared ImageNet / HED weights
                doc = cast_floats(doc, torch.bfloat16)
        save_xz(doc, CARRIED / f"{name}.xz")


def merge(args) -> None:
    """Here, after the lease: the returned files become runs/<name>/model.pt (teacher back in float32)."""
    import torch

    from training.checkpoint import atomic_save

    src, runs = Path(args.returned), REPO / "runs"

    for path_a in sorted([*src.glob("*.a.pt"), *src.glob("*.a.pt.xz")]):  # every teacher (--kd-only trains none)
        name = path_a.name.split(".a.pt")[0]
        a, b = load_pt(path_a), load_pt(path_a.with_name(path_a.name.replace(".a.pt", ".b.pt")))
        doc = {k: v for k, v in a.items() if k != "state_dict"}
        doc["state_dict"] = cast_floats({**a["state_dict"], **b["state_dict"]}, torch.float32)
        doc["commit"] = args.commit or doc.get("commit")
        atomic_save(doc, runs / name / "model.pt")
    for path in sorted([*src.glob("model-*.pt"), *src.glob("model-*.pt.xz")]):  # every student that came back
        dst = runs / f"{path.name.split('.pt')[0]}-gpu" / "model.pt"
        student = load_pt(path)
        student["commit"] = args.commit or student.get("commit")
        atomic_save(student, dst)
    if (src / "logs.tar.gz").is_file():  # a call of this driver (a plain `training train` call sends its logs as they are)
        with tarfile.open(src / "logs.tar.gz") as tar:
            tar.extractall(REPO / args.logs, filter="data")
    for log in src.glob("*.log"):
        (REPO / args.logs).mkdir(parents=True, exist_ok=True)
        shutil.copy(log, REPO / args.logs / log.name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["pack", "run", "teacher", "alone", "sidekd", "rebuild-teacher", "rebuild-student",
                                      "eta-teacher", "soup-parent", "soup-sibling", "merge"])
    p.add_argument("--init", action="append", help="(pack) SRC:NAME, a model to send as gpu/NAME.xz; repeat")
    p.add_argument("--returned", help="(merge) the folder the lease's files came back to")
    p.add_argument("--commit", help="(merge) the commit the lease ran, recorded in the models")
    p.add_argument("--logs", default="runs/gpu-logs", help="(merge) where the returned logs are unpacked")
    p.add_argument("--teacher-init", default="rcf-4500.bf16.pt", help="file in gpu/ (as .xz) the teacher starts from")
    p.add_argument("--teacher-name", default="rcf-gpu")
    p.add_argument("--alone-init", default="model-c3.pt", help="file in gpu/ (as .xz) the alone cycles start from")
    p.add_argument("--kd-init", default="model-c3.pt", help="file in gpu/ (as .xz) the KD cycle starts from")
    p.add_argument("--cycle", type=int, default=4, help="number of the student cycle trained (c4: the fourth)")
    p.add_argument("--teachers-only", help="comma-separated backbone lr factors: train only teachers, side by side")
    p.add_argument("--backbone-lr-mult", type=float, default=0.0, help="(teacher) override the config's factor")
    p.add_argument("--kd-balance", action="store_true",
                   help="weigh the KD cycle's distillation term with the ground truth's class balance (loss.kd_balance)")
    p.add_argument("--kd-only", action="store_true",
                   help="(run) no teacher training: a KD cycle per --kd-seeds from the teacher init, side by side")
    p.add_argument("--kd-seeds", default="0", help="comma-separated seeds of the KD cycles of --kd-only")
    p.add_argument("--seed", type=int, default=0, help="(sidekd) the KD cycle's run.seed")
    p.add_argument("--teacher-scales", type=parse_scales, default=(1.0,),
                   help="image scales the cached teacher maps average, e.g. 0.5,1,1.5 (RCF's multi-scale test)")
    p.add_argument("--rebuild", action="store_true",
                   help="(run) from the shared weights alone: RCF from HED, and per --kd-seeds the Model from "
                        "ImageNet (a cycle alone, then one of class-balanced KD), side by side")
    p.add_argument("--teacher-heads-its", type=int, default=1500,
                   help="(rebuild) iterations of the teacher's first phase (backbone lr x0.1)")
    p.add_argument("--alone-deadline", type=float, help="(rebuild-student) wall-clock time the alone cycle ends by")
    p.add_argument("--eta-teachers", help="(run) comma-separated labelling thresholds: one teacher per eta from "
                                           "--teacher-init side by side, then each one's KD cycle from --kd-init")
    p.add_argument("--eta", type=float, default=0.5, help="(eta-teacher) the teacher's data.eta")
    p.add_argument("--teacher-share", type=float, default=0.55,
                   help="(run --eta-teachers) the fraction of the budget the teachers train for")
    p.add_argument("--soup-teachers", help="(run) comma-separated ETA:SEED: a parent RCF from HED, then one sibling "
                                            "per pair side by side from it, then their uniform weight average")
    p.add_argument("--sibling-share", type=float, default=0.84,
                   help="(run --soup-teachers) the fraction of the budget by which the siblings end")
    p.add_argument("--no-kd", action="store_true", help="(teacher) stop after the teacher")
    p.add_argument("--budget", type=float, default=540.0, help="seconds the whole run may take")
    p.add_argument("--deadline", type=float, help="(stages) wall-clock time to end by")
    p.add_argument("--device", default="cuda")
    p.add_argument("--workers", type=int, default=9)
    p.add_argument("--student-workers", type=int, default=4)
    p.add_argument("--smoke", action="store_true", help="tiny crops and iterations: rehearse every stage")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    {"pack": pack, "run": run, "teacher": teacher, "alone": students_alone, "sidekd": side_kd,
     "rebuild-teacher": rebuild_teacher, "rebuild-student": rebuild_student, "eta-teacher": eta_teacher,
     "soup-parent": soup_parent, "soup-sibling": soup_sibling,
     "merge": merge}[args.stage](args)


if __name__ == "__main__":
    main()
