"""Many images: the overlapped pipeline, worker processes, the mirrored tree, shards, lists, the manifest, pickling."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgesdk
from command import run_edgesdk as _cli
from datasets import REPO
from edgesdk.batch import process
from edgesdk.errors import InputError
from edgesdk.inputs import Task, plan

SAMPLE = REPO / "examples" / "bsds500-sample"
IMAGES = sorted((SAMPLE / "images").glob("*.jpg"))
MODEL = REPO / "edgesdk" / "models" / "model-int8.json"


@pytest.fixture(scope="module")
def detector():
    return edgesdk.load(threads=1)


def _tree(root: Path) -> Path:
    """photos/a.jpg, photos/day1/b.jpg, photos/day1/cam/c.jpg, photos/day2/a.jpg (a second 'a')."""
    for rel, src in (("a.jpg", 0), ("day1/b.jpg", 1), ("day1/cam/c.jpg", 2), ("day2/a.jpg", 1)):
        p = root / "photos" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(IMAGES[src], p)
    return root / "photos"


def test_detect_many_gives_the_one_at_a_time_results_in_order(detector):
    img = cv2.imread(str(IMAGES[0]))
    inputs = [IMAGES[0], img, b"not an image", IMAGES[1], cv2.resize(img, (700, 500)), IMAGES[2]]
    got = list(detector.detect_many(inputs, lanes=3))  # arrays are BGR, as cv2.imread gives them
    assert [x is y for (x, _), y in zip(got, inputs)] == [True] * len(inputs)
    for (source, result), expected_input in zip(got, inputs):
        if isinstance(expected_input, bytes):
            assert isinstance(result, InputError) and "not a readable image" in str(result)
            continue
        one = detector.detect(expected_input, color="BGR")
        np.testing.assert_array_equal(result.probability, one.probability)
        np.testing.assert_array_equal(result.edges, one.edges)


def test_a_detector_pickles_as_its_model_and_options_and_is_verified_again(tmp_path):
    shutil.copy(MODEL, tmp_path / "m.json")
    shutil.copy(MODEL.with_suffix(".tflite"), tmp_path / "model-int8.tflite")
    det = edgesdk.load(tmp_path / "m.json", threads=1, low_memory=True)
    blob = pickle.dumps(det)
    assert len(blob) < 1000  # the path and options, not the model
    again = pickle.loads(blob)
    assert (again.backend.threads, again.backend.low_memory, again.info.name) == (1, True, det.info.name)
    np.testing.assert_array_equal(again.detect(IMAGES[0]).edges, det.detect(IMAGES[0]).edges)
    data = bytearray((tmp_path / "model-int8.tflite").read_bytes())
    data[-1] ^= 1
    (tmp_path / "model-int8.tflite").write_bytes(bytes(data))  # altered after pickling: refused where it lands
    with pytest.raises(InputError, match="checksum mismatch"):
        pickle.loads(blob)


def test_plan_mirrors_the_input_tree_and_names_clashes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path)
    entries = plan(["photos/**/*.jpg", "photos/day1/b.jpg", str(IMAGES[0]), "nothere.jpg"])
    tasks = [e for e in entries if isinstance(e, Task)]
    assert [t.name for t in tasks] == ["a", "day1/b", "day1/cam/c", "day2/a", IMAGES[0].stem]
    assert entries[-1] == ("nothere.jpg", "no such file")  # named, in its place; b.jpg given twice is once
    # The folder itself: its images (not its subfolders), named by file; two files by path with one name clash.
    tasks = [e for e in plan(["photos", "photos/day2/a.jpg"]) if isinstance(e, Task)]
    assert [(t.name, t.renamed) for t in tasks] == [("a", False), ("a-2", True)]


def test_shards_split_the_sorted_images_whatever_the_order_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path)
    files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "photos").rglob("*.jpg"))
    whole = {(t.source.as_posix(), t.name) for t in plan(files)}
    shards = [{(t.source.as_posix(), t.name) for t in plan(files, shard=(i, 3))} for i in range(3)]
    assert set().union(*shards) == whole and sum(map(len, shards)) == len(whole)  # each image in one shard
    # Which images a shard gets does not depend on the order given (the names of clashing files do).
    assert [{t.source.as_posix() for t in plan(files[::-1], shard=(i, 3))} for i in range(3)] == [
        {source for source, _ in shard} for shard in shards]
    with pytest.raises(ValueError, match="shard must be"):
        plan(files, shard=(3, 3))


def test_process_writes_a_mirrored_tree_a_manifest_and_resumes(tmp_path, monkeypatch, detector):
    monkeypatch.chdir(tmp_path)
    photos = _tree(tmp_path)
    out, manifest = tmp_path / "out", tmp_path / "job.jsonl"
    records = list(process(["photos/**/*.jpg", "missing/*.png"], out, threads=1, manifest=manifest))
    assert [r["input"] for r in records] == [
        "photos/a.jpg", "photos/day1/b.jpg", "photos/day1/cam/c.jpg", "photos/day2/a.jpg", "missing/*.png"]
    assert records[-1]["error"] == "pattern matches no file"
    for r, rel in zip(records, ["a", "day1/b", "day1/cam/c", "day2/a"]):
        assert r["outputs"] == [str(out / f"{rel}_edges.png"), str(out / f"{rel}_prob.png")]
        em = detector.detect(tmp_path / r["input"])
        np.testing.assert_array_equal(cv2.imread(str(out / f"{rel}_edges.png"), cv2.IMREAD_GRAYSCALE) > 0, em.edges)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert lines == records  # one line per input, as it finished
    # Again with skip_existing: the manifest grows by a record per input, every image kept.
    (out / "day1" / "b_prob.png").unlink()
    again = list(process(["photos/**/*.jpg"], out, threads=1, skip_existing=True, manifest=manifest))
    assert [bool(r.get("skipped")) for r in again] == [True, False, True, True]
    assert len(manifest.read_text().splitlines()) == len(records) + len(again)
    assert photos.is_dir()


def test_worker_processes_write_what_one_process_writes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    images = [str(p) for p in IMAGES] + [str(IMAGES[0].parent / "nothere.jpg")]
    a = list(process(images, one, threads=1))
    b = list(process(images, two, workers=2, threads=1))
    assert [r.get("error") for r in a] == [r.get("error") for r in b] == [None, None, None, "no such file"]
    for p in IMAGES:
        for kind in ("edges", "prob"):
            assert (one / f"{p.stem}_{kind}.png").read_bytes() == (two / f"{p.stem}_{kind}.png").read_bytes()
    with pytest.raises(InputError, match="workers must be an integer in"):
        list(process(images, one, workers=0))
    for bad, message in (({"threshold": 1e-46}, "is 0 in float32"), ({"nms": "no"}, "nms must be True or False"),
                         ({"thershold": 0.5}, "unknown detect options")):
        with pytest.raises(InputError, match=message):  # before any image, not once per image
            next(process(images, one, **bad))


def test_cli_reads_a_list_shards_and_streams_a_manifest(tmp_path):
    spaced = tmp_path / "with space"
    spaced.mkdir()
    for p in IMAGES:
        shutil.copy(p, spaced / p.name)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{spaced / p.name}\n" for p in IMAGES) + "\n")
    names = set()
    for i in range(2):
        proc = _cli("detect", "--from-list", listing, "--shard", f"{i}/2", "-o", "out", "--jsonl", "job.jsonl", "--json",
                    cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        names |= {Path(r["input"]).name for r in json.loads(proc.stdout)["images"]}
    assert names == {p.name for p in IMAGES}
    assert sorted(json.loads(line)["input"] for line in (tmp_path / "job.jsonl").read_text().splitlines()) == sorted(
        str(spaced / p.name) for p in IMAGES)
    proc = _cli("detect", "--from-list", "-", "-o", "out2", "--quiet", cwd=tmp_path, stdin=f"{spaced / IMAGES[0].name}\n")
    assert proc.returncode == 0 and (tmp_path / "out2" / f"{IMAGES[0].stem}_edges.png").is_file(), proc.stderr
    for bad in ("2/2", "1", "a/b"):
        proc = _cli("detect", IMAGES[0], "--shard", bad, cwd=tmp_path)
        assert proc.returncode == 2 and "--shard" in proc.stderr
    proc = _cli("detect", IMAGES[0], "-o", "w", "--workers", "2", "--quiet", cwd=tmp_path)  # python -m edgesdk, spawned
    assert proc.returncode == 0 and (tmp_path / "w" / f"{IMAGES[0].stem}_prob.png").is_file(), proc.stderr
