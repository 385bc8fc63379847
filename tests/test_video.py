"""Videos and cameras: `edgesdk detect clip.mp4`, `--source N`, edgesdk.video.detect_video."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgesdk
from edgesdk.errors import InputError
from edgesdk.video import detect_video
from command import run_edgesdk as _cli
from datasets import SAMPLE

FPS, SIZE, FRAMES = 12.5, (320, 240), 8


def _clip(path: Path, frames: int = FRAMES) -> Path:
    """A generated clip: a window panning across a sample photo, written by OpenCV (MJPG in AVI)."""
    img = cv2.imread(str(SAMPLE / "images" / "101027.jpg"))
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    assert w.isOpened()
    for i in range(frames):
        w.write(np.ascontiguousarray(img[40:40 + SIZE[1], 8 * i: 8 * i + SIZE[0]]))
    w.release()
    return path


def _read_all(path: Path):
    fd = os.open(path, os.O_RDONLY)  # through the descriptor: OpenCV crashes on a name that is not UTF-8
    cap = cv2.VideoCapture(f"/proc/self/fd/{fd}", cv2.CAP_FFMPEG)
    os.close(fd)  # FFmpeg holds its own
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames, fps


@pytest.fixture(scope="module")
def detector():
    return edgesdk.load(threads=1)


def test_cli_writes_an_edges_video_of_the_same_size_and_rate_and_a_record_per_frame(tmp_path, detector):
    clip = _clip(tmp_path / "clip.avi")
    r = _cli("detect", clip, "-o", tmp_path / "out", "--jsonl", tmp_path / "frames.jsonl", "--save-overlay",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "8 frames, 320x240 at 12.5 fps" in r.stdout and "frames/s" in r.stdout
    source, _ = _read_all(clip)
    edges_video, fps = _read_all(tmp_path / "out" / "clip_edges.mp4")
    overlay_video, _ = _read_all(tmp_path / "out" / "clip_overlay.mp4")
    assert fps == FPS and len(edges_video) == len(overlay_video) == len(source) == FRAMES
    records = [json.loads(line) for line in (tmp_path / "frames.jsonl").read_text().splitlines()]
    assert [rec["frame"] for rec in records] == list(range(FRAMES))
    assert records[2]["time_s"] == pytest.approx(2 / FPS)
    for i, (frame, written) in enumerate(zip(source, edges_video)):
        em = detector.detect(frame)  # a decoded frame is BGR, as detect() takes arrays
        assert written.shape == frame.shape
        assert records[i]["edge_pixels"] == int(em.edges.sum())
        # MPEG-4 is lossy: the white-on-black lines come back nearly, not exactly.
        drawn = written[:, :, 1] > 127
        agree = (drawn & em.edges).sum() / max(em.edges.sum(), 1)
        assert agree > 0.9 and drawn.sum() < 1.3 * em.edges.sum(), (i, agree)


def test_a_camera_that_is_not_there_is_a_clean_error(tmp_path):
    r = _cli("detect", "--source", "63", "-o", tmp_path, cwd=tmp_path)
    assert r.returncode == 2 and "camera 63: no such camera" in r.stderr
    assert "Traceback" not in r.stderr and "WARN" not in r.stderr
    assert not any(tmp_path.iterdir())
    with pytest.raises(InputError, match="camera 63"):
        detect_video(edgesdk.load(threads=1), 63, tmp_path)


def test_a_bad_video_is_named_and_the_other_inputs_are_done(tmp_path):
    (tmp_path / "fake.mp4").write_text("not a video")
    clip = _clip(tmp_path / "clip.avi", 3)
    r = _cli("detect", "fake.mp4", clip, SAMPLE / "images" / "101027.jpg", "-o", "out", "--json", cwd=tmp_path)
    assert r.returncode == 2 and "fake.mp4: not a video" in r.stderr and "Traceback" not in r.stderr
    doc = json.loads(r.stdout)  # one document for the images and the videos
    assert [v["input"] for v in doc["videos"]] == ["fake.mp4", str(clip)] and "error" in doc["videos"][0]
    assert doc["videos"][1]["frames"] == 3 and doc["images"][0]["edge_pixels"] > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "101027_edges.png", "101027_prob.png", "clip_edges.mp4"]  # no temporary file left behind


def test_a_planted_symlink_is_replaced_and_odd_names_work(tmp_path, detector):
    folder = tmp_path / os.fsdecode(b"v\xe9deo")  # not UTF-8: FFmpeg never sees the name
    folder.mkdir()
    clip = folder / os.fsdecode(b"cl\xffip.avi")
    _clip(tmp_path / "clip.avi", 3).rename(clip)  # OpenCV itself crashes on a name that is not UTF-8
    out = tmp_path / os.fsdecode(b"out\xfe")
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / os.fsdecode(b"cl\xffip_edges.mp4")).symlink_to(victim)
    result = detect_video(detector, clip, out, max_frames=2)
    (path,) = result.outputs
    assert victim.read_text() == "keep me" and not path.is_symlink() and result.frames == 2
    assert len(_read_all(path)[0]) == 2


def test_skip_existing_keeps_a_whole_video_and_redoes_a_short_one(tmp_path, detector):
    clip = _clip(tmp_path / "clip.avi", 4)
    first = detect_video(detector, clip, tmp_path / "out")
    again = detect_video(detector, clip, tmp_path / "out", skip_existing=True)
    assert again.skipped and again.outputs == first.outputs
    detect_video(detector, clip, tmp_path / "out", max_frames=2)  # a short one, as an interrupted run leaves
    redone = detect_video(detector, clip, tmp_path / "out", skip_existing=True)
    assert not redone.skipped and redone.frames == 4


def test_oversized_frames_are_refused_from_the_header(tmp_path, detector):
    clip = _clip(tmp_path / "clip.avi", 2)
    with pytest.raises(InputError, match="above max_pixels=1000"):
        detect_video(detector, clip, tmp_path / "out", max_pixels=1000)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_output_folder_that_cannot_be_made_is_a_write_error(tmp_path, detector):
    from edgesdk.io import WriteError

    clip = _clip(tmp_path / "clip.avi", 2)
    (tmp_path / "taken").write_text("a file where the folder would go")
    with pytest.raises(WriteError, match="could not write"):
        detect_video(detector, clip, tmp_path / "taken")
    assert (tmp_path / "taken").read_text() == "a file where the folder would go"


def test_a_truncated_video_writes_what_it_holds_and_says_so(tmp_path, detector):
    clip = _clip(tmp_path / "clip.avi", 6)
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])  # the header (and its frame count) stays; the last frames go
    r = _cli("detect", cut, "-o", tmp_path / "out", "--json", cwd=tmp_path)
    (video,) = json.loads(r.stdout)["videos"]
    if video.get("error"):  # a container OpenCV cannot open at all once cut: named, not a crash
        assert r.returncode == 2 and "Traceback" not in r.stderr
        return
    assert 0 < video["frames"] < 6 and video["short_by"] == 6 - video["frames"]
    assert "could not be read" in r.stderr and len(_read_all(tmp_path / "out" / "cut_edges.mp4")[0]) == video["frames"]
