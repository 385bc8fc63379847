"""Edges drawn over the image: EdgeMap.overlay and `edgesdk detect --save-overlay`."""

import json

import cv2
import numpy as np
import pytest

import edgesdk
from edgesdk.errors import InputError
from edgesdk.runtime import EdgeMap
from command import run_edgesdk as _cli
from datasets import REPO, SAMPLE
from exif_jpeg import with_exif_orientation

IMAGES = sorted((SAMPLE / "images").glob("*.jpg"))


@pytest.fixture(scope="module")
def detector():
    return edgesdk.load(threads=1)


def _map(edges, prob=None):
    edges = np.asarray(edges, bool)
    prob = edges.astype(np.float32) if prob is None else np.asarray(prob, np.float32)
    return EdgeMap(prob, edges, 0.5)


def test_the_blend_by_hand():
    # out = p + (c - p) * alpha * weight, rounded half to even, in the image's (BGR) order.
    img = np.zeros((1, 2, 3), np.uint8)
    img[0, 0] = img[0, 1] = (10, 200, 30)  # B, G, R
    em = _map([[True, False]])
    out = em.overlay(img, color=(255, 0, 0), alpha=0.5)
    assert out[0, 0].tolist() == [5, 100, 142]  # B 10->5, G 200->100, R 30 + 225/2 = 142.5 -> 142
    assert out[0, 1].tolist() == [10, 200, 30]  # no edge: untouched
    assert em.overlay(img)[0, 0].tolist() == [0, 0, 255]  # opaque red by default
    rgb = em.overlay(img[:, :, ::-1], color=(0, 0, 255), order="RGB")  # an RGB image gives RGB
    assert rgb[0, 0].tolist() == [0, 0, 255] and rgb[0, 1].tolist() == [30, 200, 10]
    soft = _map([[True, False]], [[0.5, 0.25]]).overlay(img, color=(255, 255, 255), soft=True)
    assert soft[0].tolist() == [[132, 228, 142], [71, 214, 86]]  # 10 + 245 * .5 = 132.5 -> 132; 10 + 245/4 = 71.25


def test_thickness_widens_each_edge_pixel_to_a_square():
    edges = np.zeros((9, 9), bool)
    edges[4, 4] = True
    out = _map(edges).overlay(np.zeros((9, 9, 3), np.uint8), thickness=3)
    drawn = out[:, :, 2] == 255
    assert drawn.sum() == 9 and drawn[3:6, 3:6].all()


def test_a_phone_photo_is_drawn_as_it_is_displayed(detector, tmp_path):
    # A landscape JPEG tagged "rotate 90 CW" (orientation 6) shows as portrait; its edges come back
    # portrait, and the overlay is that portrait view (decoded by Pillow, another decoder).
    Image = pytest.importorskip("PIL.Image")
    ImageOps = pytest.importorskip("PIL.ImageOps")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(with_exif_orientation(IMAGES[0].read_bytes(), 6))
    em = detector.detect(photo)
    h, w = cv2.imread(str(IMAGES[0])).shape[:2]
    assert em.edges.shape == (w, h)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(photo)).convert("RGB"))
    out = em.overlay(photo, order="RGB", alpha=1.0)
    assert out.shape == shown.shape
    plain = ~em.edges
    assert np.abs(out[plain].astype(int) - shown[plain]).max() <= 3  # JPEG decoders may differ by a level or two
    assert (out[em.edges] == (255, 0, 0)).all()


def test_bad_overlay_arguments_are_named(detector):
    em = detector.detect(IMAGES[0])
    with pytest.raises(InputError, match="pass the image the edges were detected in"):
        em.overlay(np.zeros((5, 5, 3), np.uint8))
    for kwargs, message in [({"alpha": 1.5}, "alpha"), ({"alpha": float("nan")}, "alpha"), ({"color": "red"}, "color"),
                            ({"color": (0, 0, 256)}, "color"), ({"thickness": 0}, "thickness"),
                            ({"order": "rgb"}, "order"), ({"soft": "yes"}, "soft")]:
        with pytest.raises(InputError, match=message):
            em.overlay(IMAGES[0], **kwargs)


def test_cli_save_overlay_writes_it_with_the_other_outputs_and_resumes(tmp_path, detector):
    photo = tmp_path / "in" / "photo.jpg"
    photo.parent.mkdir()
    photo.write_bytes(with_exif_orientation(IMAGES[0].read_bytes(), 6))
    r = _cli("detect", photo, "-o", tmp_path / "out", "--save-overlay", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    drawn = cv2.imread(str(tmp_path / "out" / "photo_overlay.png"))
    em = detector.detect(photo)
    np.testing.assert_array_equal(drawn, em.overlay(photo))  # 1 pixel wide below 1000 pixels a side
    edges = cv2.imread(str(tmp_path / "out" / "photo_edges.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(edges > 0, em.edges)  # the same edges as without the overlay
    # --skip-existing keeps all three; a missing overlay is redone.
    (tmp_path / "out" / "photo_overlay.png").unlink()
    r = _cli("detect", photo, "-o", tmp_path / "out", "--save-overlay", "--skip-existing", "--json", cwd=tmp_path)
    (record,) = json.loads(r.stdout)["images"]
    assert not record.get("skipped") and len(record["outputs"]) == 3
    r = _cli("detect", photo, "-o", tmp_path / "out", "--save-overlay", "--skip-existing", "--json", cwd=tmp_path)
    assert json.loads(r.stdout)["images"][0]["skipped"] is True


def test_the_docs_overlay_picture_is_what_the_command_writes(tmp_path):
    # docs/figures/overlay.png (Getting started) must be the current bundled model's, made as the page says.
    image = SAMPLE / "images" / "101027.jpg"
    r = _cli("detect", image, "-o", tmp_path, "--save-overlay", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shipped = cv2.imread(str(REPO / "docs" / "figures" / "overlay.png"))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "101027_overlay.png")), shipped)
    page = (REPO / "docs" / "index.md").read_text()
    assert "edgesdk detect examples/bsds500-sample/images/101027.jpg --save-overlay" in page
