"""The package ships ``py.typed``: its own code and a user's use of the public API must type-check."""

import subprocess
import sys
import textwrap

import pytest

from datasets import REPO

pytest.importorskip("mypy", reason="type checking needs mypy (pip install -e '.[dev]')")

USER_CODE = textwrap.dedent(
    """
    import numpy as np
    import edgesdk
    from edgesdk import postprocess as pp
    from edgesdk.eval import Protocol, evaluate

    detector: edgesdk.Detector = edgesdk.load("default", threads=1)
    result: edgesdk.EdgeMap = detector.detect("photo.jpg", threshold=0.4)
    with open("photo.jpg", "rb") as upload:
        from_stream = detector.detect(upload)
    from_bytes = detector.detect(b"...", nms=False)
    written: list = result.save("out", "photo", format="npy")
    try:
        edgesdk.load("no-such-model")
    except edgesdk.InputError as exc:
        reason: str = str(exc)
    prob: np.ndarray = result.probability
    thin_edges = pp.thin(pp.nms(prob) >= 0.5)
    score = evaluate({"a": prob}, {"a": [thin_edges]}, Protocol(thresholds=9))
    best: float = score.ods_f
    """
)


def _mypy(*args, cwd):
    cmd = [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary", "--cache-dir", str(cwd / ".mypy"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)


def test_the_package_type_checks(tmp_path):
    proc = _mypy(str(REPO / "edgesdk"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_users_code_type_checks_and_a_wrong_use_does_not(tmp_path):
    (tmp_path / "user.py").write_text(USER_CODE)
    proc = _mypy("user.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tmp_path / "wrong.py").write_text(USER_CODE + "\nbad: str = result.threshold\n")
    proc = _mypy("wrong.py", cwd=tmp_path)
    assert proc.returncode == 1 and 'incompatible types in assignment (expression has type "float"' in proc.stdout.lower()
