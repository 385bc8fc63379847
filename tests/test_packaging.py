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
    assert not any(n.startswith(("training/", "convert/", "tests/", "csrc/")) for n in names)
    # The bundled default model, its sidecar and the sample image travel in the wheel.
    from edgesdk.runtime.metadata import default_model_name

    name = default_model_name()
    for required in ("edgesdk/models/DEFAULT", f"edgesdk/models/{name}.tflite", f"edgesdk/models/{name}.json",
                     "edgesdk/models/sample.jpg", "edgesdk/runtime/detector.py"):
        assert required in names


def test_wheel_runs_outside_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # The installed package detects edges with its bundled model (checksum verified at load).
    code = ("import numpy as np, edgesdk, edgesdk.postprocess as pp; "
            "assert pp.thin(pp.nms(np.ones((9, 9), np.float32)) > 0).sum() > 0; "
            "from edgesdk.runtime.bench import sample_image; "
            "print(int(edgesdk.load().detect(sample_image()).edges.sum()))")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "", "HOME": str(tmp_path)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0


def _site_packages() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def _bare_python(code: str, cwd) -> subprocess.CompletedProcess:
    """Python started in ``cwd`` that finds the dependencies but not an installed or editable edgesdk.

    ``-S`` skips site-packages' .pth files (an editable install's import hook among them);
    the dependencies come from PYTHONPATH. So ``import edgesdk`` is the ``edgesdk/`` in ``cwd``,
    as for a user who ran ``pip install .`` and then Python in the repository root.
    """
    env = {"PYTHONPATH": _site_packages(), "PATH": "", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, env=env, capture_output=True, text=True)


def test_python_started_in_the_repository_root_finds_the_kernels(wheel):
    # The build places a copy of the kernels in the checkout's edgesdk/ (git-ignored), because
    # Python started in the root imports ./edgesdk, not the installed package: `import edgesdk;
    # edgesdk.load()` and `edgesdk benchmark` (whose measuring children start there) failed with a
    # bare "cannot import name '_native'".
    assert list((REPO / "edgesdk").glob("_native*")), "the build left no kernels module in edgesdk/"
    code = ("import edgesdk, edgesdk.postprocess as pp; from edgesdk.runtime.bench import sample_image; "
            "assert pp.__file__.startswith(%r); print(int(edgesdk.load().detect(sample_image()).edges.sum()))"
            % str(REPO / "edgesdk"))
    proc = _bare_python(code, REPO)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0


def test_a_checkout_without_kernels_says_how_to_build_them(tmp_path):
    import shutil

    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "edgesdk", checkout / "edgesdk", ignore=shutil.ignore_patterns("_native*.so", "_native*.pyd", "models"))
    shutil.copy(REPO / "pyproject.toml", checkout)
    (checkout / "csrc").mkdir()
    proc = _bare_python("import edgesdk.postprocess", checkout)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: the source checkout") and "pip install ." in last, proc.stderr


def test_the_wheel_carries_the_licence_and_the_model_cards(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    import json

    for sidecar in sorted((REPO / "edgesdk" / "models").glob("*.json")):
        card = json.loads(sidecar.read_text()).get("card")
        assert card and f"edgesdk/models/{card}" in names
