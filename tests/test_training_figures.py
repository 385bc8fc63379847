"""The results figures: one edge panel, the grid layout, and the prediction cache."""

import cv2
import numpy as np
import pytest

from datasets import REPO, SAMPLE_IDS, sample_bsds_tree

pytest.importorskip("matplotlib")
from training.figures import edge_panel, make_figures  # noqa: E402


def test_edge_panel_marks_the_ridge_of_a_line_in_red():
    # A vertical ridge at column 20 (Gaussian profile, sigma 1.5): NMS + thinning keep column 20 alone.
    x = np.arange(48, dtype=np.float32)
    prob = np.tile(np.exp(-((x - 20) ** 2) / (2 * 1.5**2)), (40, 1)).astype(np.float32)
    panel = edge_panel(prob, threshold=0.5)
    red = np.all(panel == (0, 0, 200), axis=2)
    rows, cols = np.nonzero(red)
    assert set(cols.tolist()) == {20}
    # edgesNms fades the s=5 border rows by 0, .2, .4, .6, .8; the ridge after convTri(1) is
    # (2 + 2 exp(-1/4.5)) / 4 = 0.900, so rows 3 and 4 (0.54, 0.72) pass 0.5 and row 2 (0.36) does not.
    assert set(rows.tolist()) == set(range(3, 37))
    # Elsewhere the soft map, dark where the probability is high: 255 * (1 - p).
    assert panel[0, 20].tolist() == [0, 0, 0] and panel[20, 0].tolist() == [255] * 3


def test_figures_from_the_bundled_model_and_their_cache(tmp_path, caplog):
    caplog.set_level("INFO", logger="training.figures")
    root = sample_bsds_tree(tmp_path / "bsds", {"test": None})
    out, cache = tmp_path / "fig", tmp_path / "cache"
    first = make_figures([("int8", "default")], root, out, cache, SAMPLE_IDS[:2], thresholds=9)
    assert (out / "pr_curves.png").stat().st_size > 10_000
    grid = cv2.imread(str(out / "edge_maps.jpg"))
    # 2 rows of landscape cells: each cell is 481x321 halved plus a 26-pixel title and a 2-pixel margin.
    cell_h, cell_w = 160 + 26 + 4, 240 + 4  # cv2.resize rounds 160.5 and 240.5 down
    assert grid.shape == (2 * cell_h, 3 * cell_w, 3)
    assert len(list((cache / "int8").glob("*.png"))) == 3
    # The second call reads the cached maps: a model that cannot load is never opened.
    again = make_figures([("int8", "no-such-model.pt")], root, out, cache, SAMPLE_IDS[:1], thresholds=9)
    assert again["int8"].ods_f == pytest.approx(first["int8"].ods_f, abs=1e-4)
    assert any(m.startswith("int8: test ODS") for m in caplog.messages)  # reported through logging


def test_a_cache_made_by_other_weights_is_discarded(tmp_path):
    root = sample_bsds_tree(tmp_path / "bsds", {"test": None})
    ids = SAMPLE_IDS[:1]
    # The label "m" first caches the Model, then names the SO Model (as a retrained checkpoint or a new
    # bundled default would): its maps must be the SO Model's, as from a fresh cache, not the stale ones.
    stale = make_figures([("m", "model-int8")], root, tmp_path / "a", tmp_path / "cache", ids, thresholds=9)
    now = make_figures([("m", "so-model-int8")], root, tmp_path / "b", tmp_path / "cache", ids, thresholds=9)
    fresh = make_figures([("m", "so-model-int8")], root, tmp_path / "c", tmp_path / "fresh", ids, thresholds=9)
    assert now["m"].ods_f == pytest.approx(fresh["m"].ods_f, abs=1e-6)
    assert now["m"].ods_f != pytest.approx(stale["m"].ods_f, abs=1e-4)


def test_the_readme_picture_is_what_the_bundled_model_makes_of_the_sample(tmp_path):
    # docs/figures/sample.png (the README's first picture) must be the current bundled model's
    # output, made by `python -m training figures --strip`, not an old or hand-made picture.
    from training.figures import strip_figure

    image = REPO / "examples" / "bsds500-sample" / "images" / "101027.jpg"
    fresh = cv2.imread(str(strip_figure(image, tmp_path / "sample.png")))
    shipped = cv2.imread(str(REPO / "docs" / "figures" / "sample.png"))
    assert fresh.shape == shipped.shape == (2 + 26 + 321 + 2, 3 * (2 + 481 + 2), 3)
    # Below the labels (text rendering is OpenCV's, not the model's), pixel for pixel.
    np.testing.assert_array_equal(fresh[30:], shipped[30:])
