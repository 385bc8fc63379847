"""The bundled default model through the public API and the CLI, without torch.

Numbers: the bundled student must find the BSDS boundaries of the three
bundled test images clearly better than a smoothed-Sobel baseline does, and
close to what its metadata claims for the whole test set.
"""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgesdk
from baseline import sobel_edges
from command import run_edgesdk as _cli
from datasets import REPO
from exif_jpeg import with_exif_orientation
from edgesdk.errors import InputError
from edgesdk.eval import Protocol, evaluate, read_ground_truth
from edgesdk.runtime.metadata import bundled_dir, default_model_name, list_models

SAMPLE = REPO / "examples" / "bsds500-sample"
IMAGES = sorted((SAMPLE / "images").glob("*.jpg"))


@pytest.fixture(scope="module")
def detector():
    return edgesdk.load()


def test_a_default_model_is_bundled_with_its_numbers(detector):
    assert default_model_name() == detector.info.name
    assert detector.info.precision == "int8" and detector.info.backend == "litert"
    assert 0.0 < detector.info.threshold < 1.0
    assert any(info.name == detector.info.name for info, _ in list_models())


@pytest.fixture(scope="module")
def sobel_on_the_bundled_images():
    gts = {p.stem: read_ground_truth(SAMPLE / "groundTruth" / f"{p.stem}.mat") for p in IMAGES}
    sobel = {p.stem: sobel_edges(cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in IMAGES}
    return gts, evaluate(sobel, gts, Protocol(thresholds=33))


# Every sidecar, not list_models(): that one skips an unreadable sidecar, which would hide a broken model.
@pytest.mark.parametrize("name", sorted(p.stem for p in bundled_dir().glob("*.json")))
def test_every_bundled_model_is_small_checksummed_and_beats_sobel(name, sobel_on_the_bundled_images):
    gts, r_sobel = sobel_on_the_bundled_images
    det = edgesdk.load(name)  # verifies the sha256 in the sidecar
    assert det.path.stat().st_size < 8e6  # a few MB
    test = det.info.metrics["bsds500_test"]
    assert test["images"] == 200 and 0.5 < test["ods"] <= test["ois"] < 1
    r_ours = evaluate({p.stem: det.detect(p).probability for p in IMAGES}, gts, Protocol(thresholds=33))
    assert r_ours.ods_f > r_sobel.ods_f + 0.1, (name, r_ours.ods_f, r_sobel.ods_f)
    assert r_ours.ods_f > test["ods"] - 0.1


def test_rgb_bgr_gray_and_16_bit_inputs_agree(detector):
    bgr = cv2.imread(str(IMAGES[0]), cv2.IMREAD_COLOR)
    a = detector.detect(IMAGES[0]).probability
    b = detector.detect(bgr, color="BGR").probability
    c = detector.detect(np.ascontiguousarray(bgr[:, :, ::-1]), color="RGB").probability
    d = detector.detect(bgr.astype(np.uint16) * 257, color="BGR").probability
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a, d)
    gray = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert gray.probability.shape == a.shape


def test_an_opencv_array_is_read_as_bgr_by_default(detector):
    # OpenCV's convention (cv2.imread, cv2.VideoCapture; Ultralytics too): an array is BGR unless
    # the caller says otherwise, so reading the file yourself changes nothing, bit for bit.
    a = detector.detect(IMAGES[0])
    b = detector.detect(cv2.imread(str(IMAGES[0])))
    np.testing.assert_array_equal(a.probability, b.probability)
    np.testing.assert_array_equal(a.edges, b.edges)
    np.testing.assert_array_equal(detector.probability(cv2.imread(str(IMAGES[0]))), a.probability)
    # The alpha channel of an array is BGRA's, as cv2.imread(..., IMREAD_UNCHANGED) gives it.
    bgra = cv2.cvtColor(cv2.imread(str(IMAGES[0])), cv2.COLOR_BGR2BGRA)
    np.testing.assert_array_equal(detector.detect(bgra).probability, a.probability)
    # Swapped channels do change the result: the default is not ignored.
    rgb = np.ascontiguousarray(cv2.imread(str(IMAGES[0]))[:, :, ::-1])
    assert np.abs(detector.detect(rgb).probability - a.probability).max() > 0.05
    np.testing.assert_array_equal(detector.detect(rgb, color="RGB").probability, a.probability)


@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (321, 481), (481, 321), (1000, 1000), (1100, 1500)])
def test_any_size_comes_back_at_its_size(detector, shape):
    bgr = cv2.imread(str(IMAGES[1]), cv2.IMREAD_COLOR)
    img = cv2.resize(bgr, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    em = detector.detect(img, color="BGR")
    assert em.probability.shape == shape and em.edges.shape == shape
    assert set(em.timings) == {"read", "preprocess", "inference", "nms", "threshold", "thin"}
    if shape == (1100, 1500):
        assert em.tiles > 1


def test_edges_are_the_thinned_threshold_of_the_nms_map(detector):
    skimage_thin = pytest.importorskip("skimage.morphology").thin
    em = detector.detect(IMAGES[2])
    e = em.edges
    # The same algorithm as MATLAB bwmorph(.., 'thin', Inf), from an independent implementation.
    np.testing.assert_array_equal(e, skimage_thin(em.nms >= em.threshold))
    # One pixel wide: thinning keeps a 2x2 block only where removing a pixel would cut a junction.
    blocks = e[:-1, :-1] & e[1:, :-1] & e[:-1, 1:] & e[1:, 1:]
    assert e.sum() > 500 and blocks.sum() < 0.005 * e.sum()
    thick = detector.detect(IMAGES[2], nms=False, thin=False)
    assert thick.edges.sum() > e.sum()
    assert detector.detect(IMAGES[2], threshold=0.99).edges.sum() < e.sum()


def test_a_phone_photo_is_detected_as_it_is_displayed(detector, tmp_path):
    # The sample's own bytes plus EXIF orientation 6 (stored rows are the displayed image's
    # right side): every viewer shows it turned 90 degrees clockwise, so must the edges be.
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(with_exif_orientation(IMAGES[0].read_bytes(), 6))
    bgr = cv2.imread(str(IMAGES[0]), cv2.IMREAD_COLOR)
    turned = np.ascontiguousarray(np.rot90(bgr, -1))
    em = detector.detect(photo)
    assert em.probability.shape == (481, 321)
    np.testing.assert_array_equal(em.probability, detector.detect(turned, color="BGR").probability)
    np.testing.assert_array_equal(em.edges, detector.detect(turned, color="BGR").edges)


def test_an_upload_in_memory_is_detected_as_its_file(detector):
    data = IMAGES[1].read_bytes()
    em = detector.detect(data)
    assert em.source == f"bytes of {len(data)} bytes"
    from_file = detector.detect(IMAGES[1])
    np.testing.assert_array_equal(em.probability, from_file.probability)
    np.testing.assert_array_equal(em.edges, from_file.edges)


def test_a_pil_image_is_detected_as_its_file(detector, tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="needs Pillow (pip install -e '.[dev]')")
    png = tmp_path / "sample.png"  # lossless, so Pillow and OpenCV decode the same pixels
    cv2.imwrite(str(png), cv2.imread(str(IMAGES[0]), cv2.IMREAD_COLOR))
    em = detector.detect(Image.open(png))
    assert em.source == str(png)
    from_file = detector.detect(png)
    np.testing.assert_array_equal(em.probability, from_file.probability)
    np.testing.assert_array_equal(em.edges, from_file.edges)
    assert em.edges.sum() > 1000


@pytest.mark.parametrize("low_memory", [False, True])
def test_threads_default_to_every_cpu_and_do_not_change_the_result(low_memory):
    import os

    # LiteRT's own default is a single thread: on 2 cores a 1000x1000 inference took 59 ms
    # by default against 32 ms with 2 threads, and a 4-core Pi would idle 3 of its cores.
    cpus = len(os.sched_getaffinity(0))
    many = edgesdk.load(low_memory=low_memory)
    one = edgesdk.load(threads=1, low_memory=low_memory)
    assert many.backend.threads == cpus and one.backend.threads == 1
    img = cv2.imread(str(IMAGES[0]), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(many.detect(img, color="BGR").probability, one.detect(img, color="BGR").probability)
    # A process confined to one CPU (taskset, a container's cpuset) gets one thread.
    mask = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(mask)})
        assert edgesdk.load(low_memory=low_memory).backend.threads == 1
    finally:
        os.sched_setaffinity(0, mask)


@pytest.mark.parametrize("low_memory", [False, True])
def test_one_detector_shared_by_threads_gives_each_its_own_result(low_memory):
    # A server shares one Detector between request threads; LiteRT's interpreter holds one
    # run's tensors, so unserialised runs swapped inputs and outputs (34-35 of 45 maps wrong
    # before the backend took a lock).
    from concurrent.futures import ThreadPoolExecutor

    det = edgesdk.load(low_memory=low_memory)
    arrays = []
    for p in IMAGES:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        arrays += [bgr, np.ascontiguousarray(bgr[::-1]), np.ascontiguousarray(bgr[:, ::-1])]
    serial = [det.probability(a, color="BGR") for a in arrays]
    with ThreadPoolExecutor(6) as pool:
        for _ in range(3):
            shared = list(pool.map(lambda a: det.probability(a, color="BGR"), arrays))
            for i, (got, want) in enumerate(zip(shared, serial)):
                np.testing.assert_array_equal(got, want, err_msg=f"input {i}")


def bundled_model_copy(folder):
    """The default model's file copied into ``folder``; returns (its name, its sidecar as a dict) to edit and write there."""
    import json
    import shutil

    name = default_model_name()
    doc = json.loads((bundled_dir() / f"{name}.json").read_text())
    shutil.copy(bundled_dir() / doc["file"], folder / doc["file"])
    return name, doc


@pytest.mark.parametrize(
    "edit,field",
    [
        (lambda d: d["input"].update(std=[127.5, 0, 127.5]), "input.std must be positive"),
        (lambda d: d["input"].update(mean=[127.5, 127.5]), "input.mean must be three finite numbers"),
        (lambda d: d["input"].update(channel_order="RGBA"), "input.channel_order"),
        (lambda d: d.update(threshold=0), "threshold must be a number in (0, 1]"),
        (lambda d: d.update(threshold="0.4"), "threshold must be a number in (0, 1]"),
        (lambda d: d.update(hysteresis_low=1.5), "hysteresis_low must be a number in (0, 1]"),
        (lambda d: d["nms"].update(r=-1), "nms needs integers r, s >= 0"),
        (lambda d: d["buckets"][0].update(height=0), "needs a name and a positive integer height and width"),
        (lambda d: d.update(multiple=0), "multiple and max_tile must be positive integers"),
        (lambda d: d.update(input="RGB"), "malformed model metadata"),
        (lambda d: d.update(nms=[2, 5, 1.01]), "malformed model metadata"),
        (lambda d: d.update(colour="RGB"), "malformed model metadata"),
        # A card is a file beside its sidecar: a path could send a reader anywhere.
        (lambda d: d.update(card="../../etc/passwd.md"), "card must be the name of a .md file beside the sidecar"),
        (lambda d: d.update(card="card.txt"), "card must be the name of a .md file beside the sidecar"),
        (lambda d: d.update(card=3), "card must be the name of a .md file beside the sidecar"),
    ],
)
def test_a_sidecar_with_bad_values_is_refused_at_load_naming_the_field(tmp_path, edit, field):
    import json

    name, doc = bundled_model_copy(tmp_path)
    edit(doc)
    sidecar = tmp_path / f"{name}.json"
    sidecar.write_text(json.dumps(doc))
    with pytest.raises(ValueError) as info:
        edgesdk.load(sidecar)
    assert str(info.value).startswith(f"{sidecar}: ") and field in str(info.value)


def test_a_sidecar_that_is_not_a_json_object_is_refused(tmp_path):
    sidecar = tmp_path / "m.json"
    sidecar.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"m.json: not an edgesdk model sidecar \(a JSON list"):
        edgesdk.load(sidecar)


def test_bad_threshold_and_oversized_images_are_refused(detector):
    with pytest.raises(ValueError, match="threshold"):
        detector.detect(IMAGES[0], threshold=1.5)
    with pytest.raises(ValueError, match="max_pixels"):
        detector.detect(np.zeros((100, 100), np.uint8), max_pixels=5000)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        # Each of these was accepted: "no" is truthy (NMS stayed on), True is 1.0 (no edge at
        # all), max_pixels=0 refused every image with "raise the limit", 2.5 passed through.
        (dict(nms="no"), "nms must be True or False, got 'no'"),
        (dict(thin=1), "thin must be True or False, got 1"),
        (dict(threshold=True), "threshold must be 'auto' or a number in (0, 1], got True"),
        (dict(threshold=None), "threshold must be 'auto' or a number in (0, 1], got None"),
        (dict(max_pixels=0), "max_pixels must be an integer >= 1, got 0"),
        (dict(max_pixels=2.5e7), "max_pixels must be an integer >= 1, got 25000000.0"),
        (dict(color="rgb"), "color must be 'RGB' or 'BGR', got 'rgb'"),  # for a file too
    ],
)
def test_detect_refuses_arguments_of_the_wrong_kind_before_reading(detector, kwargs, message):
    with pytest.raises(InputError) as err:
        detector.detect(IMAGES[0], **kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(threads=-1), "threads must be an integer in [0, 1024], got -1"),
        (dict(threads=2.5), "threads must be an integer in [0, 1024], got 2.5"),  # LiteRT said "type of num_threads should be int"
        (dict(threads="2"), "threads must be an integer in [0, 1024], got '2'"),  # a TypeError from a comparison
        (dict(low_memory="no"), "low_memory must be True or False, got 'no'"),  # low-memory mode, silently
        (dict(model=7), "model must be a name or a path, got int"),
    ],
)
def test_load_refuses_arguments_of_the_wrong_kind(kwargs, message):
    with pytest.raises(InputError) as err:
        edgesdk.load(**kwargs)
    assert str(err.value) == message


def test_numpy_scalars_are_numbers_and_flags(detector):
    a = detector.detect(IMAGES[0], threshold=np.float32(0.5), nms=np.bool_(True), max_pixels=np.int64(10**6))
    b = detector.detect(IMAGES[0], threshold=0.5)
    np.testing.assert_array_equal(a.edges, b.edges)
    assert edgesdk.load(threads=np.int64(1)).info.name == detector.info.name


def test_cli_detect_writes_the_good_files_and_reports_the_bad_one(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    proc = _cli("detect", SAMPLE / "images", bad, tmp_path / "missing.jpg", "-o", out, cwd=tmp_path)
    assert proc.returncode == 2
    assert "broken.png: not a readable image" in proc.stderr and "missing.jpg: no such file" in proc.stderr
    assert "3 of 5 images" in proc.stdout
    for p in IMAGES:
        edges = cv2.imread(str(out / f"{p.stem}_edges.png"), cv2.IMREAD_UNCHANGED)
        prob = cv2.imread(str(out / f"{p.stem}_prob.png"), cv2.IMREAD_UNCHANGED)
        assert edges.shape == prob.shape == (321, 481)
        assert set(np.unique(edges)) == {0, 255}


def test_cli_detect_runs_a_file_named_twice_once(tmp_path):
    # The folder, a glob over it and one of its files by another spelling: three images, not seven.
    (tmp_path / "photos").mkdir()
    for p in IMAGES:
        (tmp_path / "photos" / p.name).write_bytes(p.read_bytes())
    proc = _cli("detect", "photos", "photos/*.jpg", f"./photos/../photos/{IMAGES[0].name}", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "3 of 3 images" in proc.stdout and "written as" not in proc.stderr
    assert sorted(q.name for q in (tmp_path / "out").iterdir()) == sorted(
        f"{p.stem}_{kind}.png" for p in IMAGES for kind in ("edges", "prob"))


def test_cli_detect_gives_every_input_its_own_outputs(tmp_path, detector):
    # a/x.jpg and b/x.jpg share a name, and the second's new name x-2 is c/x-2.jpg's own.
    for folder in "abc":
        (tmp_path / folder).mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(IMAGES[0].read_bytes())
    (tmp_path / "b" / "x.jpg").write_bytes(IMAGES[1].read_bytes())
    (tmp_path / "c" / "x-2.jpg").write_bytes(IMAGES[2].read_bytes())
    out = tmp_path / "out"
    proc = _cli("detect", "a/x.jpg", "b/x.jpg", "c/x-2.jpg", "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "3 of 3 images" in proc.stdout
    assert "b/x.jpg is written as x-2_*" in proc.stderr and "c/x-2.jpg is written as x-2-2_*" in proc.stderr
    for stem, src in (("x", IMAGES[0]), ("x-2", IMAGES[1]), ("x-2-2", IMAGES[2])):
        edges = cv2.imread(str(out / f"{stem}_edges.png"), cv2.IMREAD_GRAYSCALE)
        assert (edges > 0).sum() == int(detector.detect(src).edges.sum()), stem


def test_cli_detect_reports_an_output_it_cannot_write_and_keeps_the_others(tmp_path):
    out = tmp_path / "out"
    (out / f"{IMAGES[0].stem}_edges.png").mkdir(parents=True)  # a folder where the file must go
    proc = _cli("detect", IMAGES[0], IMAGES[1], "-o", out, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"could not write {out / IMAGES[0].stem}_edges.png" in proc.stderr
    assert "1 of 2 images" in proc.stdout
    assert cv2.imread(str(out / f"{IMAGES[1].stem}_edges.png")).shape[:2] == (321, 481)
    proc = _cli("detect", IMAGES[0], "-o", out, "--format", "npy", cwd=tmp_path)
    assert proc.returncode == 0 and np.load(out / f"{IMAGES[0].stem}_edges.npy").shape == (321, 481)
    (out / f"{IMAGES[1].stem}_prob.npy").mkdir()
    proc = _cli("detect", IMAGES[1], "-o", out, "--format", "npy", cwd=tmp_path)
    assert proc.returncode == 2 and f"could not write {out / IMAGES[1].stem}_prob.npy" in proc.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--threshold", "0"], "argument --threshold: expected 'auto' or a number in (0, 1], got '0'"),
        (["--threshold", "nan"], "got 'nan'"),
        (["--threshold", "high"], "got 'high'"),
        (["--threads", "-2"], "argument --threads: expected 0 (every CPU) or a number of threads"),
        (["--max-pixels", "0"], "argument --max-pixels: expected a number of pixels (an integer >= 1), got '0'"),
        (["-o", "taken"], "taken: the output folder is an existing file"),
    ],
)
def test_cli_detect_refuses_bad_options_before_any_image(tmp_path, args, message):
    (tmp_path / "taken").write_text("a file, not a folder")
    proc = _cli("detect", IMAGES[0], *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "images ->" not in proc.stdout  # refused once, not once per image
    assert sorted(q.name for q in tmp_path.iterdir()) == ["taken"]


def test_cli_detect_npy_and_glob(tmp_path):
    proc = _cli("detect", str(SAMPLE / "images" / "10*.jpg"), "-o", tmp_path, "--format", "npy", "--threshold", "0.3",
                "--no-thin", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # not even LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate"
    e = np.load(tmp_path / "100007_edges.npy")
    p = np.load(tmp_path / "100007_prob.npy")
    assert e.dtype == bool and p.dtype == np.float32 and e.shape == p.shape


def test_cli_detect_recursive_glob_and_the_pixel_limit(tmp_path):
    # `**` reaches any depth (quoted, the shell leaves it to edgesdk); without recursive
    # globbing it matched one level only and this found nothing.
    deep = tmp_path / "shoot" / "day1" / "cam"
    deep.mkdir(parents=True)
    (deep / IMAGES[0].name).write_bytes(IMAGES[0].read_bytes())
    (tmp_path / "shoot" / IMAGES[1].name).write_bytes(IMAGES[1].read_bytes())
    proc = _cli("detect", "shoot/**/*.jpg", "-o", "out", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The output tree mirrors the input tree below the pattern's folder.
    assert sorted(q.relative_to(tmp_path / "out").as_posix() for q in (tmp_path / "out").rglob("*_edges.png")) == [
        f"{IMAGES[1].stem}_edges.png", f"day1/cam/{IMAGES[0].stem}_edges.png"]
    # 481 x 321 = 154 401 pixels: the limit the error points at is reachable from the command line.
    proc = _cli("detect", deep / IMAGES[0].name, "-o", "lim", "--max-pixels", "154400", cwd=tmp_path)
    assert proc.returncode == 2 and "is above max_pixels=154400; raise the limit (--max-pixels" in proc.stderr
    proc = _cli("detect", deep / IMAGES[0].name, "-o", "lim", "--max-pixels", "154401", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "lim" / f"{IMAGES[0].stem}_edges.png").is_file()


def test_cli_detect_json_has_a_record_per_input(tmp_path, detector):
    import json

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    proc = _cli("detect", SAMPLE / "images", broken, "missing.jpg", "-o", "out", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)  # stdout is the document alone
    assert doc["model"] == detector.info.name and doc["done"] == 3 and doc["failed"] == 2
    errors = {r["input"]: r["error"] for r in doc["images"] if "error" in r}
    assert errors == {"missing.jpg": "no such file", str(broken): f"{broken}: not a readable image (not a format edgesdk reads: PNG, JPEG, GIF, BMP, WebP, TIFF, PNM)"}
    for r in doc["images"]:
        if "error" in r:
            continue
        edges_png = cv2.imread(str(tmp_path / r["outputs"][0]), cv2.IMREAD_GRAYSCALE)
        assert r["outputs"][0].endswith(f"{Path(r['input']).stem}_edges.png")
        assert r["edge_pixels"] == int((edges_png == 255).sum()) == int(detector.detect(r["input"]).edges.sum())
        assert (r["width"], r["height"]) == (481, 321) and r["threshold"] == detector.info.threshold
        assert set(r["timings_ms"]) == {"read", "preprocess", "inference", "nms", "threshold", "thin"}


def test_cli_detect_json_keeps_the_order_of_the_arguments(tmp_path, detector):
    # A script pairs records with its arguments: a missing file in the middle was listed first
    # (the inputs that name no image were gathered apart from the images).
    import json

    a, b = (str(p) for p in IMAGES[:2])
    proc = _cli("detect", a, "missing.jpg", b, "photos/*.png", a, "-o", "out", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert [r["input"] for r in doc["images"]] == [a, "missing.jpg", b, "photos/*.png"]  # the repeat of a once
    assert ["error" in r for r in doc["images"]] == [False, True, False, True]
    assert doc["done"] == 2 and doc["failed"] == 2
    # the missing inputs are still named before any detection runs
    assert proc.stderr.index("missing.jpg: no such file") < proc.stderr.index("photos/*.png: pattern matches no file")


def test_cli_detect_reads_an_image_piped_to_stdin(tmp_path, detector):
    import json

    cmd = [sys.executable, "-m", "edgesdk", "detect", "-", "-o", "out", "--json"]
    proc = subprocess.run(cmd, input=IMAGES[2].read_bytes(), capture_output=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(proc.stdout)["images"]
    assert record["input"] == "-" and record["outputs"][0] == str(Path("out") / "stdin_edges.png")
    written = cv2.imread(str(tmp_path / "out" / "stdin_edges.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(written > 0, detector.detect(IMAGES[2]).edges)
    proc = subprocess.run(cmd, input=b"", capture_output=True, cwd=tmp_path)
    assert proc.returncode == 2 and b"<stdin>: empty (0 bytes)" in proc.stderr


def test_edge_map_save_writes_what_it_holds(tmp_path, detector):
    em = detector.detect(IMAGES[0])
    edges_png, prob_png = em.save(tmp_path, "x")
    assert (edges_png.name, prob_png.name) == ("x_edges.png", "x_prob.png")
    np.testing.assert_array_equal(cv2.imread(str(edges_png), cv2.IMREAD_GRAYSCALE) > 0, em.edges)
    assert np.abs(cv2.imread(str(prob_png), cv2.IMREAD_GRAYSCALE) / 255.0 - em.probability).max() <= 0.5 / 255 + 1e-6
    edges_npy, prob_npy = em.save(tmp_path, "x", format="npy")
    np.testing.assert_array_equal(np.load(edges_npy), em.edges)
    np.testing.assert_array_equal(np.load(prob_npy), em.probability)
    with pytest.raises(InputError, match="format must be 'png' or 'npy', got 'jpg'"):
        em.save(tmp_path, "x", format="jpg")
    assert [p.name for p in em.save(tmp_path / "made" / "here", "x")] == ["x_edges.png", "x_prob.png"]  # folder made
    (tmp_path / "a-file").write_text("")
    with pytest.raises(edgesdk.EdgeSDKError, match="could not write into .*a-file"):
        em.save(tmp_path / "a-file", "x")


def test_cli_output_to_a_closed_pipe_ends_quietly(tmp_path):
    # `edgesdk models --json | head -c 1`: the reader has gone; this printed
    # "error: [Errno 32] Broken pipe" with exit 2, as if the command had failed.
    proc = subprocess.Popen([sys.executable, "-m", "edgesdk", "models", "--json"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before it writes anything
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait() == 141 and err == b""


def test_cli_models_lists_the_default(tmp_path):
    proc = _cli("models", cwd=tmp_path)
    assert proc.returncode == 0
    assert f"{default_model_name()} (default)" in proc.stdout and "test ODS" in proc.stdout
    assert f"model card: {bundled_dir() / default_model_name()}.md" in proc.stdout


def test_cli_models_lists_a_folder_and_names_its_broken_models(tmp_path):
    import json

    name, doc = bundled_model_copy(tmp_path)
    (tmp_path / "mine.json").write_text(json.dumps({**doc, "name": "mine"}))
    (tmp_path / "gone.json").write_text(json.dumps({**doc, "name": "gone", "file": "gone.tflite"}))
    (tmp_path / "zero-std.json").write_text(json.dumps({**doc, "name": "zero-std", "input": {**doc["input"], "std": [0, 1, 1]}}))
    (tmp_path / "summary.json").write_text(json.dumps({"ODS": 0.78}))  # not a model: passed over
    proc = _cli("models", "--dir", tmp_path, cwd=tmp_path)
    assert proc.returncode == 2
    assert "mine: litert int8" in proc.stdout and f"{name} (default)" in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2, proc.stderr
    assert "gone.tflite: model file named by gone.json is missing" in errors[0]
    assert "zero-std.json: input.std must be positive" in errors[1]
    proc = _cli("models", "--dir", tmp_path / "nothere", cwd=tmp_path)
    assert proc.returncode == 2 and "nothere: no such folder" in proc.stderr


def test_cli_benchmark_table_and_json(tmp_path):
    import json

    proc = _cli("benchmark", "--size", "256", "--runs", "2", "--warmup", "1", "--json", "-o", "report.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    row = rep["rows"][0]
    assert row["size"] == 256 and row["peak_rss_mb"] > 10 and row["inference_p50_ms"] > 0
    assert rep["machine"]["arch"] and rep["runs"] == 2 and rep["warmup"] == 1 and rep["edgesdk"] == edgesdk.__version__
    assert json.loads((tmp_path / "report.json").read_text()) == rep  # -o: the same report, as a file


@pytest.mark.parametrize(
    "args,message",
    [
        (["--size", "0"], "argument --size: expected a side in pixels (an integer >= 1), got '0'"),
        (["--runs", "0"], "argument --runs: expected a number of timed runs"),
        (["--warmup", "-1"], "argument --warmup: expected a number of warm-up runs (an integer >= 0)"),
    ],
)
def test_cli_benchmark_refuses_bad_options_before_measuring(tmp_path, args, message):
    proc = _cli("benchmark", *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""  # no table of failed rows


def test_cli_eval_runs_a_model_then_the_benchmark(tmp_path, detector):
    import json

    proc = _cli("eval", "--model", "default", "--images", SAMPLE / "images", "--gt", SAMPLE / "groundTruth",
                "--thresholds", "9", "--no-plot", "--quiet", "-o", tmp_path / "ev", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    # Same maps as the API gives, so the same score as scoring them directly.
    gts = {p.stem: read_ground_truth(SAMPLE / "groundTruth" / f"{p.stem}.mat") for p in IMAGES}
    direct = evaluate({p.stem: detector.probability(p) for p in IMAGES}, gts, Protocol(thresholds=9))
    assert abs(summary["summary"]["ODS"] - direct.ods_f) < 2e-3
    assert len(list((tmp_path / "ev" / "predictions").glob("*.png"))) == 3
    proc = _cli("eval", "--gt", SAMPLE / "groundTruth", cwd=tmp_path)
    assert proc.returncode == 2 and "either --pred" in proc.stderr
    (tmp_path / "twins").mkdir()
    for name in ("100007.jpg", "100007.png"):
        (tmp_path / "twins" / name).write_bytes(IMAGES[0].read_bytes())
    proc = _cli("eval", "--model", "default", "--images", tmp_path / "twins", "--gt", SAMPLE / "groundTruth", cwd=tmp_path)
    assert proc.returncode == 2 and "two images named '100007'" in proc.stderr


def test_cli_eval_with_a_bad_image_keeps_the_other_maps_and_names_every_failure(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "000bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # first in order: the others must still run
    for p in IMAGES[:2]:
        (images / p.name).write_bytes(p.read_bytes())
    (images / "zzzbad.png").write_bytes(b"")
    proc = _cli("eval", "--model", "default", "--images", images, "--gt", SAMPLE / "groundTruth",
                "--quiet", "--out", tmp_path / "ev", cwd=tmp_path)
    assert proc.returncode == 2
    assert "2 of 4 images failed, so no benchmark was run" in proc.stderr
    assert "000bad.jpg: not a readable image" in proc.stderr and "zzzbad.png: empty (0 bytes)" in proc.stderr
    maps = sorted(p.name for p in (tmp_path / "ev" / "predictions").glob("*.png"))
    assert maps == sorted(f"{p.stem}.png" for p in IMAGES[:2])
    assert not (tmp_path / "ev" / "summary.json").exists()
