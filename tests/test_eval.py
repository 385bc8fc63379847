"""The benchmark end to end on synthetic images, its files, its errors, and the CLI."""

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from bsds_files import write_bsds_gt
from edgesdk.cli import main
from edgesdk.errors import InputError
from edgesdk.eval import Protocol, evaluate, evaluate_dir, image_counts, read_ground_truth, read_prediction
from edgesdk.postprocess import NmsParams

pytest.importorskip("scipy.io")


def scene(seed, shape=(96, 128)):
    """Ground truth (two annotators) and a soft prediction that misses a bit."""
    rng = np.random.default_rng(seed)
    gt1 = np.zeros(shape, bool)
    y0, x0 = rng.integers(20, 40), rng.integers(20, 40)
    gt1[y0, 10:-10] = True
    gt1[10:-10, x0] = True
    gt2 = np.roll(gt1, 1, axis=0)
    pred = cv2.GaussianBlur(gt1.astype(np.float32), (0, 0), 1.5)
    pred[y0 - 5 : y0 + 5, : shape[1] // 2] = 0  # miss part of an edge
    pred += 0.05 * rng.random(shape, dtype=np.float32)
    return np.clip(pred / pred.max(), 0, 1), [gt1, gt2]


def test_perfect_prediction_scores_one():
    # Thin ground-truth lines given as a binary prediction, no NMS: every
    # threshold finds exactly the ground truth. AP is 0 by the toolbox's
    # rule (a single recall value spans no area).
    _, gts = scene(0)
    res = evaluate({"a": gts[0].astype(float)}, {"a": [gts[0]]}, Protocol(nms=None, thresholds=5))
    assert res.ods_f == pytest.approx(1) and res.ois_f == pytest.approx(1)
    assert res.ap == 0


def test_image_counts_by_hand():
    # One annotator with a 20-pixel line; the prediction has it plus 5 far
    # pixels at 0.9 and nothing else: at t=0.5, recall 20/20, precision 20/25.
    gt = np.zeros((200, 200), bool)
    gt[100, 50:70] = True
    pred = gt.astype(float)
    pred[20, 150:155] = 0.9
    c = image_counts(pred, [gt], Protocol(nms=None, thresholds=(0.5, 0.95)))
    np.testing.assert_array_equal(c.cnt_r, [20, 20])
    np.testing.assert_array_equal(c.sum_r, [20, 20])
    np.testing.assert_array_equal(c.cnt_p, [20, 20])
    np.testing.assert_array_equal(c.sum_p, [25, 20])


def test_precision_counts_a_pixel_matched_by_any_annotator_once():
    gt1 = np.zeros((200, 200), bool)
    gt1[50, 20:40] = True
    gt2 = np.zeros_like(gt1)
    gt2[150, 20:40] = True
    pred = (gt1 | gt2).astype(float)
    c = image_counts(pred, [gt1, gt2], Protocol(nms=None, thresholds=1))
    # Each annotator matches its own 20 pixels: recall 40/40; every predicted
    # pixel is matched by one annotator: precision 40/40.
    assert (c.cnt_r[0], c.sum_r[0], c.cnt_p[0], c.sum_p[0]) == (40, 40, 40, 40)


@pytest.fixture()
def dataset(tmp_path):
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    preds, gts = {}, {}
    for i in range(4):
        pred, gt = scene(i)
        name = f"img{i}"
        preds[name], gts[name] = pred, gt
        write_bsds_gt(gt_dir / f"{name}.mat", gt)
        if i % 2:
            cv2.imwrite(str(pred_dir / f"{name}.png"), np.round(pred * 65535).astype(np.uint16))
        else:
            np.save(pred_dir / f"{name}.npy", pred[None].astype(np.float32))
    return pred_dir, gt_dir, preds, gts


def test_dir_and_memory_evaluations_agree_and_write_bsds_files(dataset, tmp_path):
    pred_dir, gt_dir, preds, gts = dataset
    out = tmp_path / "out"
    protocol = Protocol(thresholds=19)
    res = evaluate_dir(pred_dir, gt_dir, protocol, workers=2, out_dir=out)
    # The 16-bit PNGs round the maps to 1/65535: negligible.
    mem = evaluate({k: read_prediction(next(pred_dir.glob(k + ".*"))) for k in preds}, gts, protocol)
    assert res.ods_f == pytest.approx(mem.ods_f, abs=1e-12)
    assert 0.5 < res.ods_f < 1 and 0.5 < res.ois_f < 1 and 0 < res.ap < 1
    row = np.loadtxt(out / "eval_bdry.txt")
    np.testing.assert_allclose(
        row, [res.ods_t, res.ods_r, res.ods_p, res.ods_f, res.ois_r, res.ois_p, res.ois_f, res.ap], rtol=1e-5
    )
    thr = np.loadtxt(out / "eval_bdry_thr.txt")
    assert thr.shape == (19, 4)
    img = np.loadtxt(out / "eval_bdry_img.txt")
    np.testing.assert_array_equal(img[:, 0], [1, 2, 3, 4])
    doc = json.loads((out / "summary.json").read_text())
    assert doc["summary"]["ODS"] == pytest.approx(res.ods_f)
    assert doc["protocol"]["nms"] == {"r": 2, "s": 5, "m": 1.01}
    assert doc["protocol"]["max_dist"] == 0.0075 and doc["protocol"]["thin"] is True
    assert [i["name"] for i in doc["images"]] == ["img0", "img1", "img2", "img3"]
    assert (out / "pr_curve.png").stat().st_size > 10_000


def test_worker_count_does_not_change_results(dataset):
    pred_dir, gt_dir, _, _ = dataset
    a = evaluate_dir(pred_dir, gt_dir, Protocol(thresholds=9), workers=1)
    b = evaluate_dir(pred_dir, gt_dir, Protocol(thresholds=9), workers=3)
    assert a.ods_f == b.ods_f and a.ois_f == b.ois_f and a.ap == b.ap


@pytest.mark.parametrize(
    "layout",
    [
        lambda a: a,
        lambda a: a[None],
        lambda a: a[..., None],
        lambda a: a[None, None],
    ],
)
def test_prediction_layouts(tmp_path, layout):
    a = np.random.default_rng(0).random((10, 12)).astype(np.float32)
    np.save(tmp_path / "p.npy", layout(a))
    np.testing.assert_allclose(read_prediction(tmp_path / "p.npy"), a)


def test_prediction_bit_depths(tmp_path):
    a = np.arange(120, dtype=np.uint16).reshape(10, 12) * 500
    cv2.imwrite(str(tmp_path / "p16.png"), a)
    np.testing.assert_allclose(read_prediction(tmp_path / "p16.png"), a / 65535)
    b = (a // 257).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "p8.png"), b)
    np.testing.assert_allclose(read_prediction(tmp_path / "p8.png"), b / 255)
    cv2.imwrite(str(tmp_path / "rgb.png"), np.dstack([b, b, b]))
    np.testing.assert_allclose(read_prediction(tmp_path / "rgb.png"), b / 255)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((5, 5), 3.0), r"values span \[3, 3\]; expected probabilities"),
        (np.array([[0.1, np.nan]]), "NaN"),
        (np.zeros((2, 3, 4, 5)), "cannot read an edge map"),
        (np.zeros((4, 4), np.int64), "unsupported dtype"),
    ],
)
def test_bad_predictions_name_the_file(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match="bad.npy: " + message if "span" in message else message):
        read_prediction(tmp_path / "bad.npy")


def test_unreadable_files(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="x.png: not a readable image"):
        read_prediction(tmp_path / "x.png")
    (tmp_path / "g.mat").write_bytes(b"garbage")
    with pytest.raises(InputError, match="g.mat: not a readable MATLAB file"):
        read_ground_truth(tmp_path / "g.mat")
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 2] = 9
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    with pytest.raises(InputError, match="c.png: has 3 channels that differ"):
        read_prediction(tmp_path / "c.png")


def test_ground_truth_round_trip(tmp_path):
    _, gts = scene(3)
    got = read_ground_truth(write_bsds_gt(tmp_path / "g.mat", gts))
    assert len(got) == 2
    for a, b in zip(got, gts):
        np.testing.assert_array_equal(a, b)


def test_missing_and_mis_sized_predictions_are_all_reported(dataset, tmp_path):
    pred_dir, gt_dir, _, _ = dataset
    (pred_dir / "img1.png").unlink()
    with pytest.raises(InputError, match="no prediction for 1 of 4 ground-truth images: img1"):
        evaluate_dir(pred_dir, gt_dir, Protocol(thresholds=3))
    cv2.imwrite(str(pred_dir / "img1.png"), np.zeros((50, 60), np.uint8))
    np.save(pred_dir / "img2.npy", np.zeros((7, 7), np.float32))
    with pytest.raises(InputError) as err:
        evaluate_dir(pred_dir, gt_dir, Protocol(thresholds=3))
    msg = str(err.value)
    assert "2 of 4 images could not be evaluated" in msg
    assert "img1.png: prediction is 50x60 but its ground truth is 96x128" in msg
    assert "img2.npy: prediction is 7x7" in msg


def test_ambiguous_predictions(dataset):
    pred_dir, gt_dir, _, _ = dataset
    cv2.imwrite(str(pred_dir / "img0.png"), np.zeros((96, 128), np.uint8))
    with pytest.raises(InputError, match="several predictions for img0"):
        evaluate_dir(pred_dir, gt_dir)


def test_cli_eval(dataset, tmp_path, capsys):
    pred_dir, gt_dir, _, _ = dataset
    out = tmp_path / "cli-out"
    code = main(["eval", "--pred", str(pred_dir), "--gt", str(gt_dir), "--out", str(out), "--thresholds", "9", "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    res = evaluate_dir(pred_dir, gt_dir, Protocol(thresholds=9))
    assert f"ODS  {res.ods_f:.4f}" in text and f"OIS  {res.ois_f:.4f}" in text and f"AP   {res.ap:.4f}" in text
    assert "4 images, 9 thresholds, maxDist 0.0075, NMS r=2 s=5 m=1.01, thinning on" in text
    assert (out / "eval_bdry.txt").exists()


def test_cli_protocol_options(dataset, tmp_path, capsys):
    pred_dir, gt_dir, _, _ = dataset
    code = main(
        ["eval", "--pred", str(pred_dir), "--gt", str(gt_dir), "--out", str(tmp_path / "o"), "--no-nms", "--no-thin",
         "--thresholds", "0.2,0.5,0.8", "--max-dist", "0.01", "--json", "--no-plot"]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["protocol"]["nms"] is None and doc["protocol"]["thin"] is False
    assert doc["protocol"]["thresholds"] == [0.2, 0.5, 0.8] and doc["protocol"]["max_dist"] == 0.01
    assert not (tmp_path / "o" / "pr_curve.png").exists()


def test_cli_bad_input_exits_nonzero_naming_the_problem(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "edgesdk", "eval", "--pred", str(tmp_path / "nope"), "--gt", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "nope: prediction folder does not exist" in proc.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--thresholds", "1.5"], r"threshold values must be in \[0, 1\], got 1.5"),
        (["--thresholds=-0.1,0.5"], r"threshold values must be in \[0, 1\], got -0.1 ... 0.5"),
        (["--thresholds", "0.5,0.2"], "strictly increasing"),
        (["--workers", "-1"], r"--workers: expected 0 \(every CPU\) or a number of threads"),
        (["--max-dist", "nan"], r"max_dist must be in \[0, 1\]"),
        (["--nms-r", "-1"], r"nms needs integers r, s >= 0 and a positive m, got r=-1"),
    ],
)
def test_cli_refuses_protocol_options_that_mean_nothing(dataset, tmp_path, capsys, args, message):
    # Predictions are probabilities in [0, 1]: a threshold of 1.5 finds no edge at all and
    # would print R50 nan instead of an error.
    pred_dir, gt_dir, _, _ = dataset
    try:
        code = main(["eval", "--pred", str(pred_dir), "--gt", str(gt_dir), "--out", str(tmp_path / "o"), *args])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    assert code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        # Each was accepted: "no" is truthy (thinning stayed on), True counted as 1 threshold,
        # and a string max_dist failed as a TypeError comparing str with int.
        (dict(thin="no"), "thin must be True or False, got 'no'"),
        (dict(thresholds=True), "thresholds must be a positive count or a list of values, got True"),
        (dict(max_dist="0.01"), "max_dist must be a number, got '0.01'"),
        (dict(nms={"r": 2}), "nms must be an NmsParams or None, got dict"),
    ],
)
def test_protocol_refuses_arguments_of_the_wrong_kind(kwargs, message):
    with pytest.raises((TypeError, ValueError)) as err:
        Protocol(**kwargs)
    assert str(err.value) == message


def test_protocol_of_numpy_scalars_is_written_as_json():
    p = Protocol(thresholds=np.int64(9), max_dist=np.float64(0.01), thin=np.bool_(True), nms=NmsParams(r=np.int64(3)))
    doc = json.loads(json.dumps(p.as_dict()))
    assert doc["thresholds"] == 9 and doc["max_dist"] == 0.01 and doc["thin"] is True and doc["nms"]["r"] == 3
    assert p == Protocol(thresholds=9, max_dist=0.01, nms=NmsParams(r=3))


def test_write_prediction_round_trips_through_read_prediction(tmp_path):
    from edgesdk.eval import read_prediction, write_prediction

    prob = np.array([[0.0, 0.25, 0.5], [0.75, 1.0, 0.123456]], np.float32)
    # 16 bits: levels round(p * 65535); 0.5 -> 32768 (half to even), read back as 32768 / 65535.
    back = read_prediction(write_prediction(tmp_path / "a.png", prob))
    assert back[0, 2] == 32768 / 65535 and back[1, 1] == 1.0 and back[0, 0] == 0.0
    assert np.abs(back - prob).max() <= 0.5 / 65535 + 1e-7
    back8 = read_prediction(write_prediction(tmp_path / "b.png", prob, bits=8))
    assert back8[0, 1] == 64 / 255 and np.abs(back8 - prob).max() <= 0.5 / 255 + 1e-7
    with pytest.raises(InputError, match="written as .png"):
        write_prediction(tmp_path / "c.jpg", prob)
    with pytest.raises(InputError, match="float probability map"):
        write_prediction(tmp_path / "d.png", (prob > 0.5))
    assert not (tmp_path / "c.jpg").exists() and not (tmp_path / "d.png").exists()
