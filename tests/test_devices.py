"""Where a model runs: load(..., device="cpu"|"gpu"|"npu"|"auto") and --device."""

import json
import pickle

import numpy as np
import pytest

import edgesdk
from edgesdk.errors import AcceleratorUnavailable, InputError
from command import run_edgesdk as _cli
from datasets import SAMPLE

IMAGE = SAMPLE / "images" / "101027.jpg"


@pytest.fixture(scope="module")
def cpu():
    return edgesdk.load(threads=1)


def test_the_cpu_is_the_default(cpu):
    assert cpu.device == "cpu" and cpu.options["device"] == "cpu"


@pytest.mark.parametrize("device", ["gpu", "npu"])
def test_an_accelerator_runs_the_model_or_is_named_as_absent(cpu, device, tmp_path):
    try:
        det = edgesdk.load(threads=1, device=device)
    except AcceleratorUnavailable as exc:
        assert f"device={device!r}" in str(exc) and device.upper() in str(exc)
        r = _cli("detect", IMAGE, "-o", tmp_path, "--device", device, cwd=tmp_path)
        assert r.returncode == 2 and f"device={device!r}" in r.stderr
        # One line that says it: no traceback, none of LiteRT's log.
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert not list(tmp_path.iterdir())
        pytest.skip(f"no {device.upper()} here: {exc}")
    # Where the accelerator exists, it computes in its own precision: close to the CPU, not identical.
    assert det.device == device
    a, b = det.detect(IMAGE), cpu.detect(IMAGE)
    assert np.abs(a.probability - b.probability).max() < 0.05
    assert (a.edges & b.edges).sum() > 0.9 * b.edges.sum()


def test_auto_takes_what_there_is_and_never_fails_for_want_of_it(cpu):
    det = edgesdk.load(threads=1, device="auto")
    assert det.device in ("cpu", "gpu", "npu")
    if det.device == "cpu":  # no accelerator here: the CPU path itself, bit for bit
        np.testing.assert_array_equal(det.detect(IMAGE).probability, cpu.detect(IMAGE).probability)
    # A pickled detector asks again where it lands (another machine may have an accelerator).
    assert pickle.loads(pickle.dumps(det)).options["device"] == "auto"
    low = edgesdk.load(threads=1, device="auto", low_memory=True)
    if low.device == "cpu":
        np.testing.assert_array_equal(low.detect(IMAGE).probability, cpu.detect(IMAGE).probability)


def test_a_device_that_is_no_device_is_refused(tmp_path):
    with pytest.raises(InputError, match="device must be one of 'cpu', 'gpu', 'npu', 'auto'"):
        edgesdk.load(device="tpu")
    with pytest.raises(InputError, match="device must be one of"):
        next(edgesdk.process([str(IMAGE)], tmp_path, device="cuda"))
    r = _cli("detect", IMAGE, "--device", "tpu", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice: 'tpu'" in r.stderr


def test_the_batch_and_the_benchmark_take_a_device(tmp_path):
    (record,) = list(edgesdk.process([str(IMAGE)], tmp_path, device="auto", threads=1))
    assert "error" not in record
    r = _cli("benchmark", "--device", "auto", "--size", "64", "--runs", "1", "--warmup", "0", "--model", "model-int8",
             "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["rows"]
    assert row["device"] in ("cpu", "gpu", "npu")
