"""The documentation: the site builds strictly, and every number in it comes from a file the code wrote."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from datasets import REPO

MODELS = REPO / "edgesdk" / "models"


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bundled():
    docs = [json.loads(p.read_text()) for p in sorted(MODELS.glob("*.json"))]
    return [d for d in docs if d.get("format") == "edgesdk-model/1"]


def test_the_readme_models_table_is_the_one_the_files_give():
    readme = (REPO / "README.md").read_text()
    expected = _hooks().models_table()
    header = expected.splitlines()[0]
    assert header in readme, "the README has no models table"
    start = readme.index(header)
    got = readme[start:].split("\n\n", 1)[0].strip()
    # On a mismatch: paste the expected table (it is rendered from the sidecars and the benchmark report).
    assert got == expected


def test_every_bundled_model_has_a_card_whose_numbers_are_its_sidecars():
    for doc in _bundled():
        assert doc.get("card") == f"{doc['name']}.md", doc["name"]
        card = (MODELS / doc["card"]).read_text()
        for section in ("## Intended use", "## Numbers", "## How it was made", "## Licences and terms", "## Limits"):
            assert section in card, (doc["name"], section)
        for split in ("test", "val"):
            m = doc["metrics"][f"bsds500_{split}"]
            row = f"| {split} | {m['ods']:.4f} | {m['ois']:.4f} | {m['ap']:.4f} | {m['r50']:.4f} | {m['images']} |"
            assert row in card, (doc["name"], row)
        assert f"{doc['threshold']:g}" in card  # the operating threshold it states
        assert "BSDS500" in card and "research" in card  # the data's terms, said plainly


def test_the_docs_hold_no_run_logs_or_one_off_scripts():
    tracked = subprocess.run(["git", "ls-files", "docs", "training"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    files = tracked.stdout.split()
    assert not [f for f in files if f.startswith("docs/scripts/") or f.endswith((".log", "RESULTS.md"))]
    # Parity reports only for the files that ship, and only for their current bytes.
    shipped = {d["sha256"] for d in _bundled()}
    for f in files:
        if f.endswith(".parity.json"):
            report = json.loads((REPO / f).read_text())
            assert {e["sha256"] for e in report["exports"].values()} <= shipped, f


def test_the_command_line_page_is_rendered_from_the_parser():
    text = _hooks().cli_reference()
    for command in ("detect", "eval", "models", "benchmark"):
        assert f"## edgesdk {command}" in text
    assert "--max-pixels" in text and "--skip-existing" in text


def test_mkdocs_builds_the_site_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must build the docs: mkdocs is missing (pip install -e '.[dev]' installs it)")
        pytest.skip("mkdocs not installed (pip install '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    site = tmp_path / "site"
    api = (site / "api" / "index.html").read_text()
    assert "detect_many" in api and "Parameters" in api  # the docstrings were rendered
    models = (site / "models" / "index.html").read_text()
    assert re.search(r"0\.7814", models) and (site / "cards" / "model-int8" / "index.html").is_file()
    assert "usage: edgesdk detect" in (site / "cli" / "index.html").read_text()


def test_the_results_page_claims_only_what_the_benchmark_report_shows():
    # The targets the Results page says are met, read against the suite's report (pytest benchmarks -m bench).
    report = json.loads((REPO / "docs" / "reports" / "benchmark.json").read_text())
    assert report["settings"]["full"], "docs/reports/benchmark.json must be a full run's"
    rows = {(r["suite"], r["contender"]): r for r in report["ratios"]}
    results = (REPO / "docs" / "results.md").read_text()
    speed = rows[("models 1000x1000", "model-int8")]
    lean = rows[("models 1000x1000", "model-int8 (low memory)")]
    if re.search(r"15× faster than the RCF teacher at 1000².*\| met \|", results):
        assert speed["speedup"] >= 15, speed
    if re.search(r"peak memory ≤ 1/5 of the teacher's.*\| met \|", results):
        assert lean["memory_fraction"] <= 0.2, lean
    # And the table the page renders from it has a row per student and size.
    table = _hooks().teacher_ratios()
    assert "| 1000×1000 | model-int8 |" in table and "| 512×512 | so-model-int8 (low memory) |" in table


def test_the_readme_bulk_numbers_are_the_reports():
    # The "At scale" sentence is rendered from docs/reports/benchmark.json (pytest benchmarks -m bench).
    readme = (REPO / "README.md").read_text()
    expected = _hooks().bulk_summary()
    assert expected in readme, f"paste into the README's At scale section:\n{expected}"
    doc = json.loads((REPO / "docs" / "reports" / "benchmark.json").read_text())
    workers = [r for r in doc["ratios"] if r["contender"] == "process, a worker per CPU"]
    assert f"{workers[0]['speedup']:.2f}×" in expected
