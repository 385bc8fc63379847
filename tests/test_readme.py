"""The README's two set-up commands are the ones that exist and that CI runs."""

import re

from datasets import REPO


def readme_commands():
    text = (REPO / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


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
