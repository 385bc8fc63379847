"""Hostile input and faults: no crash, no lost or corrupt output, bounded memory, no hang, nothing silently wrong.

Every test here was written against a failure of the runtime as it stood before the
hardening (a segfault, a 0-byte PNG reported as written, gigabytes spent before a
refusal, an endless glob, a silently wrong score) and fails without the fix.
Processes that could crash or hang run as children under a timeout; memory is the
peak RSS of a child process.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgesdk
from datasets import REPO
from edgesdk import postprocess as pp
from edgesdk.errors import EdgeSDKError, InputError

SAMPLE = REPO / "examples" / "bsds500-sample"
IMAGES = sorted((SAMPLE / "images").glob("*.jpg"))
MODEL = REPO / "edgesdk" / "models" / "model-int8.json"
POSIX = sys.platform != "win32"


@pytest.fixture(scope="module")
def detector():
    return edgesdk.load(threads=1)


# -- helpers ----------------------------------------------------------------------
# A small process between the test and the child: a child's peak RSS as wait4 reports it starts from the
# RSS of the process it was forked from, which for pytest after many tests is gigabytes.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen([os.fsencode(a) for a in sys.argv[2:]])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run(args, *, cwd, timeout=300, stdin=None, preexec_fn=None):
    """Run a child to its end (killed after ``timeout`` s); returns (exit status, stdout, stderr, peak RSS in MB).

    The exit status is negative for a signal (a segfault is -11).
    """
    report = Path(cwd) / f".report-{os.getpid()}-{time.monotonic_ns()}"
    argv = [sys.executable, "-c", LAUNCHER, str(report), *(os.fsdecode(a) if isinstance(a, (bytes, Path)) else a for a in args)]
    proc = subprocess.Popen([os.fsencode(a) for a in argv], cwd=cwd, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=preexec_fn, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the child it started
        proc.communicate()
        raise
    status, maxrss = report.read_text().split()
    report.unlink()
    peak = int(maxrss) / (2**20 if sys.platform == "darwin" else 2**10)
    return int(status), stdout, stderr, peak


def cli(*args):
    return [sys.executable, "-m", "edgesdk", *args]


def png_header(width, height, bit_depth=8, color_type=0):
    """A PNG signature and IHDR for the given size, with one IDAT of a few zero rows: no decoder gets far."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(bytes(64))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def tiff_bomb(width, height):
    """A little-endian TIFF (TIFF 6.0) declaring width x height 16-bit gray, LZW, one strip of a few bytes."""
    strip = b"\x80\x00\x00\x00"  # an LZW clear code and little else
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 16), (259, 3, 1, 5), (262, 3, 1, 1),
        (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, len(strip)),
    ]
    ifd_offset = 8 + len(strip)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + strip + ifd


def decodes(path: Path):
    """The file's pixels if it decodes whole (read as bytes: its name may not be UTF-8), else None."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None


def tree(folder: Path):
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


# -- crashes ----------------------------------------------------------------------
@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_paths_that_are_not_utf8_work_for_detect_and_eval(tmp_path):
    # OpenCV's imread/imwrite crashed the process (SIGSEGV) on surrogate-escaped names.
    folder = tmp_path / os.fsdecode(b"in\xff")
    folder.mkdir()
    image = folder / os.fsdecode(b"x\xfe.jpg")
    image.write_bytes(IMAGES[0].read_bytes())
    out = tmp_path / os.fsdecode(b"out\xfd")
    status, stdout, stderr, _ = run(cli("detect", image, "-o", out, "--threads", "1"), cwd=tmp_path)
    assert status == 0, stderr
    written = sorted(os.fsencode(p.name) for p in out.iterdir())
    assert written == [b"x\xfe_edges.png", b"x\xfe_prob.png"]
    assert decodes(out / os.fsdecode(b"x\xfe_edges.png")).shape == (321, 481)
    # The evaluator: predictions, ground truth and the output folder, all with such names; then --model.
    pred, gt = tmp_path / os.fsdecode(b"pred\xff"), tmp_path / os.fsdecode(b"gt\xff")
    pred.mkdir()
    gt.mkdir()
    name = os.fsdecode(b"i\xfe")
    (pred / f"{name}.png").write_bytes((out / os.fsdecode(b"x\xfe_prob.png")).read_bytes())
    (gt / f"{name}.mat").write_bytes((SAMPLE / "groundTruth" / f"{IMAGES[0].stem}.mat").read_bytes())
    status, stdout, stderr, _ = run(cli("eval", "--pred", pred, "--gt", gt, "-o", tmp_path / os.fsdecode(b"ev\xfc"),
                                        "--thresholds", "5", "--no-plot", "--json"), cwd=tmp_path)
    assert status == 0, stderr
    assert json.loads(stdout)["n_images"] == 1
    (folder / f"{name}.jpg").write_bytes(IMAGES[0].read_bytes())
    image.unlink()
    status, stdout, stderr, _ = run(cli("eval", "--model", "default", "--images", folder, "--gt", gt, "-o",
                                        tmp_path / os.fsdecode(b"m\xfc"), "--thresholds", "5", "--no-plot", "--json"),
                                    cwd=tmp_path)
    assert status == 0, stderr
    assert json.loads(stdout)["n_images"] == 1


def test_absurd_thread_counts_are_refused_by_name_before_anything_is_built(tmp_path):
    # 100000 threads made every image fail, then LiteRT segfaulted at exit.
    status, _, stderr, _ = run(cli("detect", IMAGES[0], "-o", "out", "--threads", "100000"), cwd=tmp_path, timeout=120)
    assert status == 2 and "--threads" in stderr.decode() and "Traceback" not in stderr.decode()
    assert not (tmp_path / "out").exists()
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"threads must be an integer in \[0, 1024\], got 32768"):
        edgesdk.load(threads=32768)
    assert time.perf_counter() - started < 1.0
    for args in (["--threads", "1e20"], ["--threads", "2049"]):
        status, _, stderr, _ = run(cli("eval", "--pred", ".", "--gt", ".", *args), cwd=tmp_path, timeout=120)
        assert status == 2 and "--threads" in stderr.decode() and "Traceback" not in stderr.decode()


# -- lost, corrupt or clobbered output ----------------------------------------------
def _limit_file_size(limit):
    """A preexec_fn: files larger than ``limit`` bytes cannot be written (EFBIG), as on a full disk."""

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


@pytest.mark.skipif(not POSIX, reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_is_an_error_and_leaves_no_file_under_a_final_name(tmp_path):
    # cv2.imwrite reported success for 0-byte PNGs, and a large image left _edges.png without _prob.png.
    out = tmp_path / "out"
    out.mkdir()
    status, stdout, stderr, _ = run(cli("detect", IMAGES[0], "-o", out, "--threads", "1"), cwd=tmp_path,
                                    preexec_fn=_limit_file_size(30_000))
    assert status == 2, stderr
    assert b"could not write" in stderr and b"_prob.png" in stderr
    assert list(out.iterdir()) == []  # neither of the pair, and no temporary file left behind
    # The API says the same, and leaves nothing either.
    em = edgesdk.load(threads=1).detect(IMAGES[0])
    big = tmp_path / "big"
    big.mkdir()
    code = ("import sys, numpy as np, edgesdk\n"
            "em = edgesdk.load(threads=1).detect(sys.argv[1])\n"
            "try:\n    em.save(sys.argv[2], 'x')\nexcept edgesdk.EdgeSDKError as exc:\n    print(exc)\n")
    status, stdout, stderr, _ = run([sys.executable, "-c", code, IMAGES[0], big], cwd=tmp_path,
                                    preexec_fn=_limit_file_size(30_000))
    assert status == 0 and b"could not write" in stdout, stderr
    assert list(big.iterdir()) == []
    assert len(em.save(big, "x")) == 2 and decodes(big / "x_prob.png") is not None  # and without the limit, it writes


def test_a_killed_writer_leaves_the_old_file_or_none_never_a_partial_one(tmp_path):
    # SIGKILL in the middle of a write left truncated PNGs under their final names.
    target = tmp_path / "x_prob.png"
    target.write_bytes(b"the previous complete file")
    code = ("import sys, time\nfrom edgesdk import io\n"
            "def writer(fh):\n    fh.write(b'half of a new file'); fh.flush(); print('half', flush=True); time.sleep(60)\n"
            "io.write_files([(sys.argv[1], writer)])\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"half\n"
    proc.kill()
    proc.wait()
    assert target.read_bytes() == b"the previous complete file"
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].startswith(".edgesdk-") and leftovers[0].endswith(".tmp")


def _big_inputs(folder: Path, n: int, size=(1600, 1200)):
    """``n`` images of ``size`` (their PNG outputs take milliseconds to write), each a different shift of a sample."""
    folder.mkdir()
    img = cv2.imread(str(IMAGES[0]))
    for k in range(n):
        cv2.imwrite(str(folder / f"b{k}.png"), cv2.resize(np.roll(img, 40 * k + 7 * len(folder.name), axis=1), size))
    return folder


def test_a_run_killed_while_writing_leaves_whole_files_and_can_be_finished(tmp_path, detector):
    # SIGKILL mid-batch left truncated PNGs under their final names.
    images = _big_inputs(tmp_path / "in", 3)
    out = tmp_path / "out"
    out.mkdir()
    for wait in (0.0, 0.002, 0.01):
        proc = subprocess.Popen(cli("detect", str(images), "-o", str(out), "--threads", "1"), cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = set(os.listdir(out))
        while proc.poll() is None and set(os.listdir(out)) == before:  # the moment a file is being written
            time.sleep(0.0005)
        time.sleep(wait)
        proc.kill()
        proc.wait()
        for p in out.iterdir():
            if not p.name.startswith("."):
                assert decodes(p) is not None, (wait, p.name)
    # Repeated with --skip-existing, the run finishes: every pair whole and what a fresh detection gives.
    status, _, stderr, _ = run(cli("detect", images, "-o", out, "--threads", "1", "--skip-existing"), cwd=tmp_path)
    assert status == 0, stderr
    for k in range(3):
        em = detector.detect(images / f"b{k}.png")
        np.testing.assert_array_equal(decodes(out / f"b{k}_edges.png"), em.edges.astype(np.uint8) * 255)
        np.testing.assert_array_equal(decodes(out / f"b{k}_prob.png"), np.round(em.probability * 255).astype(np.uint8))


def test_concurrent_runs_into_one_folder_leave_whole_matching_pairs(tmp_path, detector):
    # Four runs writing the same names left _edges/_prob pairs from different runs, and undecodable PNGs;
    # a reader looking while they wrote saw partial files.
    runs = [_big_inputs(tmp_path / f"run{r}", 4, (1200, 900)) for r in range(4)]
    expected = {}
    for r, folder in enumerate(runs):
        for k in range(4):
            em = detector.detect(folder / f"b{k}.png")
            expected[(r, k)] = (em.edges.astype(np.uint8) * 255, np.round(em.probability * 255).astype(np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    procs = [subprocess.Popen(cli("detect", str(f), "-o", str(out), "--threads", "1", "--quiet"), cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for f in runs]
    partial = []
    while any(p.poll() is None for p in procs):  # a reader: every file under a final name must be whole
        for name in os.listdir(out):
            if name.startswith("."):
                continue
            try:
                data = (out / name).read_bytes()
            except FileNotFoundError:  # renamed away between the listing and the read
                continue
            if not data or cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None:
                partial.append(name)
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    assert not partial, f"a reader saw partial files: {sorted(set(partial))}"
    for k in range(4):
        edges, prob = decodes(out / f"b{k}_edges.png"), decodes(out / f"b{k}_prob.png")
        assert edges is not None and prob is not None
        owners = [r for r in range(4) if np.array_equal(expected[(r, k)][0], edges) and np.array_equal(expected[(r, k)][1], prob)]
        assert owners, f"b{k}: its _edges and _prob come from different runs"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.skipif(not POSIX, reason="symlinks")
def test_a_symlink_planted_at_an_output_is_replaced_not_followed(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{IMAGES[0].stem}_edges.png").symlink_to(precious)
    (out / f"{IMAGES[0].stem}_prob.png").symlink_to(tmp_path / "dangling")
    status, _, stderr, _ = run(cli("detect", IMAGES[0], "-o", out, "--threads", "1"), cwd=tmp_path)
    assert status == 0, stderr
    assert precious.read_text() == "keep me" and not (tmp_path / "dangling").exists()
    for kind in ("edges", "prob"):
        p = out / f"{IMAGES[0].stem}_{kind}.png"
        assert not p.is_symlink() and decodes(p).shape == (321, 481)


def test_skip_existing_redoes_only_what_is_missing_or_damaged(tmp_path):
    out = tmp_path / "out"
    status, _, stderr, _ = run(cli("detect", SAMPLE / "images", "-o", out, "--threads", "1"), cwd=tmp_path)
    assert status == 0, stderr
    a, b, c = (p.stem for p in IMAGES)
    (out / f"{b}_prob.png").write_bytes((out / f"{b}_prob.png").read_bytes()[:500])  # truncated by a crash
    (out / f"{c}_edges.png").unlink()
    kept = (out / f"{a}_edges.png").stat().st_mtime_ns, (out / f"{a}_prob.png").stat().st_mtime_ns
    status, stdout, stderr, _ = run(cli("detect", SAMPLE / "images", "-o", out, "--threads", "1", "--skip-existing",
                                        "--json"), cwd=tmp_path)
    assert status == 0, stderr
    doc = json.loads(stdout)
    assert (doc["done"], doc["skipped"], doc["failed"]) == (2, 1, 0)
    assert [bool(r.get("skipped")) for r in doc["images"]] == [True, False, False]
    assert ((out / f"{a}_edges.png").stat().st_mtime_ns, (out / f"{a}_prob.png").stat().st_mtime_ns) == kept
    for p in IMAGES:
        for kind in ("edges", "prob"):
            assert decodes(out / f"{p.stem}_{kind}.png").shape == (321, 481)


# -- memory blow-ups before a refusal -------------------------------------------------
READ_CHILD = ("import sys, edgesdk\nfrom edgesdk.runtime.image import read_image\n"
              "try:\n    read_image(sys.argv[1] if sys.argv[1] != '-' else sys.stdin.buffer, max_pixels=64_000_000)\n"
              "except edgesdk.InputError as exc:\n    print(exc)\n")


def test_a_tiff_bomb_is_refused_from_its_header(tmp_path):
    # A 4 MB LZW TIFF declaring 25000x25000 16-bit was decoded first (7.2 GB peak), then refused.
    bomb = tmp_path / "bomb.tif"
    bomb.write_bytes(tiff_bomb(25000, 25000))
    status, stdout, stderr, peak = run([sys.executable, "-c", READ_CHILD, bomb], cwd=tmp_path, timeout=120)
    assert status == 0 and b"25000x25000 is above max_pixels=64000000" in stdout, stderr
    assert peak < 300, peak
    status, _, stderr, peak = run(cli("detect", bomb, "-o", "out"), cwd=tmp_path, timeout=120)
    assert status == 2 and b"25000x25000 is above max_pixels" in stderr and peak < 600, (stderr, peak)


@pytest.mark.skipif(not POSIX, reason="sparse files and shell redirection")
def test_a_huge_file_is_refused_from_its_length_before_it_is_read(tmp_path):
    # A 4 GB sparse file (a small PNG's header, then zeros) was read whole, path or stdin, before failing.
    sparse = tmp_path / "sparse.png"
    with open(sparse, "wb") as fh:
        fh.write(png_header(100, 100))
        fh.truncate(4 << 30)
    status, stdout, stderr, peak = run([sys.executable, "-c", READ_CHILD, sparse], cwd=tmp_path, timeout=120)
    assert status == 0 and b"is more than a 100x100 PNG image can take" in stdout, stderr
    assert peak < 300, peak
    with open(sparse, "rb") as fh:
        status, stdout, stderr, peak = run([sys.executable, "-c", READ_CHILD, "-"], cwd=tmp_path, stdin=fh, timeout=120)
    assert status == 0 and b"more than a 100x100 PNG image can take" in stdout, stderr
    assert peak < 400, peak


def test_eval_checks_a_predictions_size_before_decoding_it(tmp_path):
    # A 30000x30000 prediction PNG cost 8.6 GB before the size-mismatch error.
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    (pred / "a.png").write_bytes(png_header(30000, 30000, 16))
    cv2.imwrite(str(gt / "a.png"), np.zeros((32, 48), np.uint8))
    code = ("import sys\nfrom edgesdk.eval import evaluate_dir\n"
            "try:\n    evaluate_dir(sys.argv[1], sys.argv[2])\nexcept ValueError as exc:\n    print(exc)\n")
    status, stdout, stderr, peak = run([sys.executable, "-c", code, pred, gt], cwd=tmp_path, timeout=120)
    assert status == 0 and b"prediction is 30000x30000 but its ground truth is 32x48" in stdout, stderr
    assert peak < 300, peak


def _detect_peak(tmp_path, image, *extra):
    status, _, stderr, peak = run(cli("detect", image, "-o", tmp_path / "out", "--threads", "2",
                                      "--max-pixels", "500000000", *extra), cwd=tmp_path, timeout=600)
    assert status == 0, stderr
    return peak


@pytest.mark.parametrize("mode", [[], ["--low-memory"]], ids=["default", "low-memory"])
def test_a_tiled_detection_holds_a_few_bytes_a_pixel(tmp_path, mode):
    # A 20000x20000 JPEG peaked at 8.8 GB (22 bytes a pixel); a 64 MP one at 1.76 GB. Now the probability
    # (4 bytes a pixel), the edges (1) and bounded buffers; OpenCV's JPEG decoder briefly holds the decoded
    # image twice (6). Measured as the rise of the peak from a 1000x1000 image to a 20 MP one, same model.
    img = cv2.imread(str(IMAGES[0]))
    small, large = tmp_path / "small.jpg", tmp_path / "large.jpg"
    cv2.imwrite(str(small), cv2.resize(img, (1000, 1000)))
    cv2.imwrite(str(large), cv2.resize(img, (5000, 4000)))
    rise = _detect_peak(tmp_path, large, *mode) - _detect_peak(tmp_path, small, *mode)
    per_pixel = rise * 2**20 / (5000 * 4000 - 1000 * 1000)
    print(f"\npeak RSS rise {rise:.0f} MB: {per_pixel:.1f} bytes per pixel")
    assert per_pixel < 7.5, per_pixel


@pytest.mark.parametrize("function", ["thin", "correspond_pixels", "nms"])
def test_kernels_refuse_an_oversized_map_before_copying_it(tmp_path, function):
    # A broadcast 100000x100000 view was copied (9.5 / 19 GB) before "too large".
    code = ("import numpy as np, time\nfrom edgesdk import postprocess as pp\n"
            "view = np.broadcast_to(np.zeros(1, np.float32 if '%s' == 'nms' else bool), (100000, 100000))\n"
            "args = (view, view) if '%s' == 'correspond_pixels' else (view,)\n"
            "try:\n    pp.%s(*args)\nexcept ValueError as exc:\n    print(exc)\n") % (function, function, function)
    status, stdout, stderr, peak = run([sys.executable, "-c", code], cwd=tmp_path, timeout=120)
    assert status == 0 and b"too large" in stdout, (stdout, stderr)
    assert peak < 300, peak


def test_matching_memory_is_bounded_whatever_max_dist(tmp_path):
    # Every pixel of two full 100x100 maps within reach of every other: 10^8 pairs, 3.5 GB.
    code = ("import numpy as np\nfrom edgesdk import postprocess as pp\nfull = np.ones((100, 100), bool)\n"
            "try:\n    pp.correspond_pixels(full, full, max_dist=1.0)\nexcept ValueError as exc:\n    print(exc)\n")
    status, stdout, stderr, peak = run([sys.executable, "-c", code], cwd=tmp_path, timeout=120)
    assert status == 0 and b"pixel pairs within max_dist" in stdout, (stdout, stderr)
    assert peak < 400, peak
    # An ordinary case still matches: two thin lines, everything within reach.
    a = np.zeros((100, 100), bool)
    a[50, 10:90] = True
    m1, m2, _ = pp.correspond_pixels(a, np.roll(a, 1, axis=0), max_dist=0.05)
    assert (m1 > 0).sum() == 80



def test_the_threshold_sweep_counts_kept_components_against_the_pairs_bound(tmp_path):
    # Two far-apart 30x40 blobs on a full annotation, 50 px reach: ~9.4 M pairs each, 2^24 allowed. At 0.9
    # one blob alone is matched; at 0.2 the other joins in its own component while the first is kept as
    # it was: together they pass the bound and the step is refused (it was matched when only the
    # rebuilt component counted).
    code = ("import numpy as np\nfrom edgesdk import postprocess as pp\n"
            "pb = np.zeros((1000, 1000)); pb[100:130, 100:140] = 0.9; pb[700:730, 700:740] = 0.3\n"
            "gt = np.ones((1000, 1000), bool)\nreach = 50 / np.hypot(1000, 1000)\n"
            "print(pp.boundary_counts(pb, [gt], [0.9], thin=False, max_dist=reach)[0])\n"
            "try:\n    pp.boundary_counts(pb, [gt], [0.9, 0.2], thin=False, max_dist=reach)\n"
            "except ValueError as exc:\n    print(exc)\n")
    status, stdout, stderr, peak = run([sys.executable, "-c", code], cwd=tmp_path, timeout=120)
    assert status == 0 and stdout.startswith(b"[1200]") and b"pixel pairs within max_dist" in stdout, (stdout, stderr)
    assert peak < 600, peak

# -- hangs -------------------------------------------------------------------------
@pytest.mark.skipif(not POSIX, reason="symlinks")
def test_a_recursive_glob_ends_over_folders_that_link_to_themselves(tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "sub" / "a.jpg").write_bytes(IMAGES[0].read_bytes())
    (photos / "loop1").symlink_to(photos)
    (photos / "loop2").symlink_to(photos)
    (photos / "sub" / "up").symlink_to(photos)
    status, stdout, stderr, _ = run(cli("detect", "photos/**/*.jpg", "-o", "out", "--json", "--threads", "1"),
                                    cwd=tmp_path, timeout=120)
    assert status == 0, stderr
    doc = json.loads(stdout)
    assert [r["input"] for r in doc["images"]] == ["photos/sub/a.jpg"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_models_dir_names_a_fifo_and_a_deeply_nested_sidecar_and_lists_the_good_one(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    os.mkfifo(d / "x.json")  # reading it would wait forever for a writer
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    good = json.loads(MODEL.read_text())
    (d / "model-int8.tflite").write_bytes(MODEL.with_suffix(".tflite").read_bytes())
    good["file"] = "model-int8.tflite"
    (d / "mine.json").write_text(json.dumps(good))
    status, stdout, stderr, _ = run(cli("models", "--dir", d, "--json"), cwd=tmp_path, timeout=60)
    assert status == 2, stderr
    err = stderr.decode()
    assert "x.json: not a regular file" in err and "deep.json: not valid JSON (nested too deeply)" in err
    assert "Traceback" not in err
    assert str(d / "model-int8.tflite") in [m["path"] for m in json.loads(stdout)]
    with pytest.raises(InputError, match="not a regular file"):
        edgesdk.load(str(d / "x.json"))


# -- silently wrong results -------------------------------------------------------
def test_evaluate_refuses_what_the_folder_mode_refuses():
    from edgesdk.eval import Protocol, evaluate, read_ground_truth

    gts = read_ground_truth(SAMPLE / "groundTruth" / f"{IMAGES[0].stem}.mat")
    prob = edgesdk.load(threads=1).detect(IMAGES[0]).probability
    protocol = Protocol(thresholds=5)
    with pytest.raises(InputError, match=r"values span \[0, 2\d\d"):  # it returned ODS 0.613
        evaluate({"a": prob * 255}, {"a": gts}, protocol)
    with pytest.raises(InputError, match="no prediction for 1 images: b"):  # b's ground truth was dropped
        evaluate({"a": prob}, {"a": gts, "b": gts}, protocol)
    with pytest.raises(InputError, match="NaN"):
        evaluate({"a": np.full_like(prob, np.nan)}, {"a": gts}, protocol)
    assert evaluate({"a": prob}, {"a": gts}, protocol).ods_f > 0.5


def test_values_that_float32_cannot_hold_are_refused(detector, tmp_path):
    x = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    with pytest.raises(ValueError, match="conv_tri: r must be at least"):  # it returned an all-NaN map
        pp.conv_tri(x, r=1e-38)
    assert np.isfinite(pp.conv_tri(x, r=1e-30)).all()
    with pytest.raises(InputError, match="is 0 in float32"):  # every pixel became an edge
        detector.detect(IMAGES[0], threshold=1e-46)
    status, _, stderr, _ = run(cli("detect", IMAGES[0], "-o", "out", "--threshold", "1e-46"), cwd=tmp_path, timeout=60)
    assert status == 2 and b"--threshold" in stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d["nms"].update(r=5000), "nms needs r <= 1000"),
        (lambda d: d["nms"].update(s=99999999999), "s <= 2147483647"),
        (lambda d: d["buckets"][0].update(height=100000, width=100000), "a side may be at most 8192"),
        (lambda d: d.update(max_tile=100000), "max_tile at most 8192"),
    ],
)
def test_sidecar_values_that_cannot_work_are_refused_at_load(tmp_path, change, message):
    # A 100000x100000 bucket tried 27.9 GiB per image; NMS r=5000 failed on every image.
    doc = json.loads(MODEL.read_text())
    change(doc)
    (tmp_path / "m.json").write_text(json.dumps(doc))
    (tmp_path / doc["file"]).write_bytes(MODEL.with_suffix(".tflite").read_bytes())
    with pytest.raises(InputError, match=message):
        edgesdk.load(tmp_path / "m.json")


def test_a_bucket_the_model_file_does_not_have_is_refused_at_load(tmp_path):
    doc = json.loads(MODEL.read_text())
    doc["buckets"][0].update(height=320, width=480)  # the file's signature takes 352x512
    (tmp_path / "m.json").write_text(json.dumps(doc))
    (tmp_path / doc["file"]).write_bytes(MODEL.with_suffix(".tflite").read_bytes())
    with pytest.raises(EdgeSDKError, match="bucket s352x512 is 320x480, but the model file's signature takes 352x512"):
        edgesdk.load(tmp_path / "m.json")


def test_bad_arguments_are_input_errors_not_tracebacks(detector, tmp_path):
    with pytest.raises(InputError, match=r"array\(20,\): expected an \(H, W\) or \(H, W, C\) image"):
        detector.detect(np.zeros(20, np.uint8))
    status, _, stderr, _ = run(cli("eval", "--pred", ".", "--gt", ".", "--nms-s", "99999999999"), cwd=tmp_path, timeout=60)
    assert status == 2 and b"s <= 2147483647" in stderr and b"Traceback" not in stderr


def _blue_square_on_hidden_blue(hidden_alpha_color=(255, 0, 0)):
    """A BGRA image: an opaque blue square on a transparent background whose hidden colour is blue too."""
    img = np.zeros((160, 200, 4), np.uint8)
    img[..., :3] = hidden_alpha_color
    img[40:120, 50:150, 3] = 255
    return img


def test_transparent_pixels_are_composited_over_a_background(detector, tmp_path):
    # The square was invisible to the model: its hidden colour is the square's.
    bgra = _blue_square_on_hidden_blue()
    path = tmp_path / "square.png"
    cv2.imwrite(str(path), bgra)
    shown = np.full((160, 200, 3), 255, np.uint8)  # as a viewer shows it: blue on white
    shown[40:120, 50:150] = (255, 0, 0)
    want = detector.detect(shown, color="BGR")
    assert want.edges.sum() > 200
    for arg, kwargs in ((path, {}), (path.read_bytes(), {}), (bgra, {"color": "BGR"})):
        got = detector.detect(arg, **kwargs)
        np.testing.assert_array_equal(got.edges, want.edges)
    # Over blue, the square disappears; the option says so, in the API and the CLI.
    assert detector.detect(path, background=(0, 0, 255)).edges.sum() < 20
    status, stdout, stderr, _ = run(cli("detect", path, "-o", "out", "--background", "#0000ff", "--json", "--threads", "1"),
                                    cwd=tmp_path, timeout=60)
    assert status == 0, stderr
    assert json.loads(stdout)["images"][0]["edge_pixels"] < 20
    # A 16-bit image with alpha, and a half-transparent pixel: colour * a + background * (1 - a), rounded.
    half = np.zeros((1, 1, 4), np.uint16)
    half[0, 0] = (0, 0, 65535, 32768)  # red, half transparent
    from edgesdk.runtime.image import read_image

    px, order, _ = read_image(half, color="BGR")
    a = 32768 / 65535  # by hand: blue and green 255 * (1 - a) = 127.498, red 255
    assert px[0, 0].tolist() == [round(255 * (1 - a)), round(255 * (1 - a)), 255] == [127, 127, 255]


def test_a_folder_gives_every_format_a_path_is_accepted_in(tmp_path):
    # A folder's .gif was skipped although a .gif path was detected.
    photos = tmp_path / "photos"
    photos.mkdir()
    img = cv2.imread(str(IMAGES[0]))
    for ext in (".gif", ".tif", ".pbm", ".jpe"):
        name = photos / f"x{ext[1:]}{ext}"
        assert cv2.imwrite(str(name), img[..., 0] if ext == ".pbm" else img), ext
    status, stdout, stderr, _ = run(cli("detect", photos, "-o", "out", "--json", "--threads", "1"), cwd=tmp_path, timeout=120)
    assert status == 0, stderr
    assert json.loads(stdout)["done"] == 4
