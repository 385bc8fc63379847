"""The command line as a newcomer meets it: help, versions, every option explained."""

import argparse
import subprocess
import sys

import pytest

import edgesdk
from datasets import REPO
from edgesdk.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser):
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_bare_edgesdk_prints_help_not_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgesdk"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for command in ("detect", "eval", "models", "benchmark"):
        assert command in proc.stdout
    assert "usage: edgesdk" in proc.stdout and "error" not in proc.stdout


@pytest.mark.parametrize("command", ["detect", "eval", "models", "benchmark"])
def test_every_option_has_help_text(command):
    parser = _subparsers(build_parser())[command]
    missing = [a.option_strings or [a.dest] for a in parser._actions
               if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert missing == []


def test_max_pixels_help_says_what_the_limit_does():
    (action,) = [a for a in _subparsers(build_parser())["detect"]._actions if "--max-pixels" in a.option_strings]
    help_text = action.help
    assert "refuse" in help_text and "before decoding" in help_text and "tiles" in help_text


def test_the_version_is_written_once():
    # pyproject.toml takes it from edgesdk/__init__.py; no second copy may drift.
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and "\nversion =" not in pyproject
    from importlib.metadata import version

    assert version("edgesdk") == edgesdk.__version__
    proc = subprocess.run([sys.executable, "-m", "edgesdk", "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"edgesdk {edgesdk.__version__}"


def _options_without_help(parser: argparse.ArgumentParser, prefix: str = ""):
    missing = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                missing += _options_without_help(sp, f"{prefix} {name}")
        elif not isinstance(a, (argparse._HelpAction, argparse._VersionAction)) and not (a.help or "").strip():
            missing.append(f"{prefix} {'/'.join(a.option_strings) or a.dest}")
    return missing


@pytest.mark.parametrize("module", ["training.__main__", "convert.__main__"])
def test_every_option_of_the_training_and_conversion_commands_has_help_text(module):
    pytest.importorskip("torch", reason="the training and conversion commands need torch")
    import importlib

    assert _options_without_help(importlib.import_module(module).build_parser()) == []
