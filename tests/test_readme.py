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


def test_main_command_uses_bundled_files():
    main = readme_commands()[0]
    for path in re.findall(r"--(?:pred|gt) (\S+)", main):
        assert (REPO / path).is_dir(), path
