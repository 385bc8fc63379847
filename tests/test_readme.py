"""The README is for users: short, its links resolve, its set-up commands are CI's, its examples run."""

import os
import re
import subprocess
import sys

import pytest

from datasets import REPO

README = (REPO / "README.md").read_text()


def readme_commands():
    section = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def code_blocks(language):
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def test_readme_has_exactly_two_setup_commands():
    assert len(readme_commands()) == 2


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1]
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_main_command_detects_a_bundled_image_with_the_bundled_model():
    main = readme_commands()[0]
    m = re.search(r"edgesdk detect (\S+)", main)
    assert m and (REPO / m.group(1)).is_file(), main
    assert "--model" not in main  # the default, bundled model
    assert "torch" not in main


def test_readme_is_short():
    assert len(README.splitlines()) <= 150


def test_every_relative_link_in_the_readme_exists():
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+://", t) and not t.startswith("#")]
    assert local, "no links found: the pattern is wrong"
    assert [t for t in local if not (REPO / t).exists()] == []


@pytest.fixture
def fresh_folder(tmp_path):
    """A new folder where the README's relative paths resolve (its examples/ is the repository's)."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    return tmp_path


def _env():
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def test_the_python_example_runs_as_written(fresh_folder):
    (block,) = code_blocks("python")
    proc = subprocess.run([sys.executable, "-c", block], cwd=fresh_folder, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    shape, edges = proc.stdout.splitlines()[0].rsplit(" ", 1)
    assert shape == "(321, 481)" and int(edges) > 1000
    assert (fresh_folder / "out" / "101027_edges.png").is_file() and (fresh_folder / "out" / "101027_prob.png").is_file()
    ods = float(re.search(r"ODS (\d\.\d+)", proc.stdout).group(1))
    # One image, so not a test-set score: a smoothed Sobel (tests/baseline.py) scores 0.546 on it.
    assert 0.65 < ods <= 1.0


def test_the_command_line_example_runs_as_written(fresh_folder):
    (block,) = code_blocks("bash")
    proc = subprocess.run(["bash", "-e", "-c", block], cwd=fresh_folder, env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for stem in ("100007", "101027", "103006"):
        assert (fresh_folder / "edges" / f"{stem}_edges.png").is_file()
    assert (fresh_folder / "hed-eval" / "eval_bdry.txt").is_file()
    assert "model-int8 (default)" in proc.stdout and "ODS" in proc.stdout
