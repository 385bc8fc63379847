"""The ControlNet-style annotator: the call and output conventions of controlnet_aux's soft-edge detectors."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgesdk
from edgesdk.annotators import EdgeAnnotator, resolution_size, safe_levels, to_map
from edgesdk.errors import InputError
from command import run_edgesdk as _cli
from datasets import REPO, SAMPLE

IMAGE = SAMPLE / "images" / "101027.jpg"  # 481 wide, 321 high


@pytest.fixture(scope="module")
def annotator():
    return EdgeAnnotator(threads=1)


@pytest.fixture(scope="module")
def rgb():
    return np.ascontiguousarray(cv2.imread(str(IMAGE))[:, :, ::-1])


@pytest.mark.parametrize("size, resolution, expected", [
    # shorter side -> resolution, each side then rounded to a multiple of 64, by hand:
    ((321, 481), 512, (512, 768)),    # 481 * 512/321 = 767.2 -> 11.99 * 64 -> 768
    ((321, 481), 256, (256, 384)),    # 481 * 256/321 = 383.6 -> 5.99 * 64 -> 384
    ((512, 768), 1024, (1024, 1536)),
    ((1000, 1000), 512, (512, 512)),
    ((100, 300), 512, (512, 1536)),
    ((300, 100), 64, (192, 64)),
    ((480, 640), 500, (512, 640)),    # 480 * 500/480 = 500 -> 7.8125 -> 8 * 64; 640 * 500/480 = 666.7 -> 10.4 -> 640
    ((1, 10000), 64, (64, 640000)),   # the short side's 64; the long one as the rule says
    ((10000, 1), 1, (9984, 64)),      # 1/64 rounds to 0: 64, the least a side can be; 10000/64 = 156.25
])
def test_the_resolution_rule(size, resolution, expected):
    assert resolution_size(*size, resolution) == expected


def test_safe_quantises_to_three_levels():
    p = np.array([0.0, 0.33, 0.334, 0.66, 0.667, 0.99, 1.0], np.float32)
    # floor(p * 3) / 2 -> 0, 0, .5, .5, 1, 1, 1.5; * 255 truncated and clipped -> 0, 127, 255
    assert to_map(safe_levels(p)).tolist() == [0, 0, 127, 127, 255, 255, 255]
    assert to_map(p).tolist() == [0, 84, 85, 168, 170, 252, 255]  # p * 255 truncated


def test_outputs_follow_the_peers_conventions(annotator, rgb):
    Image = pytest.importorskip("PIL.Image")
    out = annotator(rgb)  # defaults: 512 / 512, PIL out
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (768, 512)
    a = np.asarray(out)
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all()
    # White edges on black: most of a photo is not an edge.
    assert np.median(a) < 40 and a.max() > 200
    arr = annotator(rgb, detect_resolution=256, image_resolution=1024, output_type="np")
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.shape == (1024, 1536, 3)
    assert set(np.unique(annotator(rgb, safe=True, output_type="np"))) <= {0, 127, 255}
    lines = annotator(rgb, scribble=True, output_type="np")
    assert set(np.unique(lines)) == {0, 255} and lines.shape == (512, 768, 3)
    assert isinstance(annotator(rgb, return_pil=False), np.ndarray)  # the peers' older argument


def test_the_map_is_the_models_probability_at_the_detection_size(annotator, rgb):
    # At a size the rule keeps (both sides multiples of 64, the short one the resolution), nothing is
    # resized: the map is the detector's probability * 255, truncated, in three equal channels.
    img = np.ascontiguousarray(rgb[:320, :448])
    out = annotator(img, detect_resolution=320, image_resolution=320, output_type="np")
    want = (edgesdk.load(threads=1).probability(img, color="RGB") * np.float32(255)).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 1], want)


def test_pil_gray_rgba_and_paths_are_taken(annotator, rgb, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    base = annotator(rgb, output_type="np")
    np.testing.assert_array_equal(annotator(Image.fromarray(rgb), output_type="np"), base)
    np.testing.assert_array_equal(annotator(IMAGE, output_type="np"), base)  # a file: decoded, not an array
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(annotator(rgba, output_type="np"), base)  # opaque alpha changes nothing
    gray = annotator(rgb[:, :, 1], output_type="np")
    assert gray.shape == base.shape


@pytest.mark.parametrize("kwargs, message", [
    ({"output_type": "cv2"}, "output_type"), ({"detect_resolution": 0}, "detect_resolution"),
    ({"image_resolution": 2.5}, "image_resolution"), ({"safe": "yes"}, "safe"), ({"scribble": None}, "scribble"),
    ({"detect_resolution": 16384}, "max_pixels"),
])
def test_bad_arguments_are_named(annotator, rgb, kwargs, message):
    with pytest.raises(InputError, match=message):
        annotator(rgb, **kwargs)


def _peer_util():
    """controlnet_aux's util.py (resize_image, HWC3, safe_step, nms), loaded alone: its package imports
    every detector and their dependencies (timm, torchvision ...), which edgesdk does not install."""
    spec = importlib.util.find_spec("controlnet_aux")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("controlnet_aux is not installed (pip install --no-deps controlnet_aux to compare with it)")
    pytest.importorskip("torch")  # util.py imports it
    path = Path(list(spec.submodule_search_locations)[0]) / "util.py"
    module_spec = importlib.util.spec_from_file_location("controlnet_aux_util", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kwargs", [{}, {"safe": True}, {"scribble": True},
                                    {"detect_resolution": 384, "image_resolution": 768, "safe": True}])
def test_equal_to_the_peers_pipeline_around_the_same_network(annotator, rgb, kwargs):
    # HEDdetector.__call__ with its network replaced by this model's probability: every step around
    # the network (resizing, quantising, scribble) done by controlnet_aux's own functions.
    util = _peer_util()
    det_res, img_res = kwargs.get("detect_resolution", 512), kwargs.get("image_resolution", 512)
    x = util.resize_image(util.HWC3(rgb), det_res)
    edge = annotator.detector.probability(x, color="RGB").astype(np.float64)
    if kwargs.get("safe"):
        edge = util.safe_step(edge)
    detected = util.HWC3((edge * 255.0).clip(0, 255).astype(np.uint8))
    h, w = util.resize_image(x, img_res).shape[:2]
    detected = cv2.resize(detected, (w, h), interpolation=cv2.INTER_LINEAR)
    if kwargs.get("scribble"):
        detected = util.nms(detected, 127, 3.0)
        detected = cv2.GaussianBlur(detected, (0, 0), 3.0)
        detected[detected > 4] = 255
        detected[detected < 255] = 0
    np.testing.assert_array_equal(annotator(rgb, output_type="np", **kwargs), detected)


def test_cli_annotate_writes_each_image_and_names_the_bad_one(tmp_path, annotator):
    (tmp_path / "in" / "a").mkdir(parents=True)
    (tmp_path / "in" / "a" / "x.jpg").write_bytes(IMAGE.read_bytes())
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    r = _cli("annotate", "in/**/*.jpg", "-o", tmp_path / "out", "--safe", cwd=tmp_path)
    assert r.returncode == 2 and "broken.jpg" in r.stderr and "Traceback" not in r.stderr
    written = cv2.imread(str(tmp_path / "out" / "a" / "x.png"))  # the input tree mirrored
    np.testing.assert_array_equal(written, annotator(IMAGE, safe=True, output_type="np"))
    assert not (tmp_path / "out" / "broken.png").exists()


def test_the_docs_picture_is_what_the_command_writes(tmp_path):
    # docs/figures/control.png (the ControlNet page) must be the current bundled model's, made as the page says.
    repo = REPO
    page = (repo / "docs" / "controlnet.md").read_text()
    assert "edgesdk annotate examples/bsds500-sample/images/101027.jpg -o control" in page
    r = _cli("annotate", IMAGE, "-o", tmp_path, "--quiet", cwd=repo)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "101027.png")),
                                  cv2.imread(str(repo / "docs" / "figures" / "control.png")))
