"""`pip install .` builds a wheel holding the compiled kernels that works outside the source tree."""

import subprocess
import sys
import zipfile

import pytest

from datasets import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("scikit_build_core")
    pytest.importorskip("pybind11")
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(out), "-q"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("edgesdk-*.whl")
    return path


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("edgesdk/_native") and n.endswith((".so", ".pyd")) for n in names)
    for required in ("edgesdk/__init__.py", "edgesdk/_native.pyi", "edgesdk/py.typed", "edgesdk/eval/benchmark.py"):
        assert required in names
    assert not any(n.startswith(("training/", "tests/", "csrc/")) for n in names)


def test_wheel_runs_outside_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "import numpy as np, edgesdk.postprocess as pp; print(int(pp.thin(pp.nms(np.ones((9, 9), np.float32)) > 0).sum()))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": ""}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0
