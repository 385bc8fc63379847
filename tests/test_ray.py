"""edgesdk on Ray Data, on a local Ray of two CPUs: what the actors write equals the serial path's files."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray tests need Ray (pip install 'edgesdk[ray]')")

import edgesdk  # noqa: E402
from datasets import REPO  # noqa: E402
from edgesdk.batch import process  # noqa: E402
from edgesdk.integrations.ray import EdgeDetector, detect_files  # noqa: E402

IMAGES = sorted((REPO / "examples" / "bsds500-sample" / "images").glob("*.jpg"))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_actors_write_what_the_serial_path_writes(tmp_path, local_ray):
    records = detect_files(IMAGES, tmp_path / "ray", concurrency=2, threads=1)
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in records) == [p.name for p in IMAGES]
    assert all(r["error"] == "" and len(r["outputs"]) == 2 for r in records)
    serial = list(process([str(p) for p in IMAGES], tmp_path / "serial", threads=1))
    assert not [r for r in serial if "error" in r]
    for p in IMAGES:
        for kind in ("edges", "prob"):
            assert (tmp_path / "ray" / f"{p.stem}_{kind}.png").read_bytes() == \
                (tmp_path / "serial" / f"{p.stem}_{kind}.png").read_bytes(), (p.name, kind)


def test_ray_gives_maps_as_columns_for_decoded_images(local_ray):
    ds = ray.data.read_images([str(p) for p in IMAGES], include_paths=True, ray_remote_args={"num_cpus": 0},
                              concurrency=1)
    rows = ds.map_batches(EdgeDetector, fn_constructor_kwargs={"threads": 1}, concurrency=1, batch_size=2).take_all()
    detector = edgesdk.load(threads=1)
    assert len(rows) == len(IMAGES)
    for row in rows:
        em = detector.detect(row["image"], color="RGB")  # read_images decodes to RGB
        assert row["error"] == ""
        np.testing.assert_array_equal(row["probability"], em.probability)
        np.testing.assert_array_equal(row["edges"], em.edges)


def test_a_bad_image_is_a_record_not_a_failed_job(tmp_path, local_ray):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    records = detect_files([IMAGES[0], bad], tmp_path / "out", concurrency=1, threads=1)
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in records}
    assert by_name[IMAGES[0].name]["error"] == "" and "not a readable image" in by_name["bad.jpg"]["error"]
