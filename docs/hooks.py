"""MkDocs hooks: the pages that must not drift from the code are rendered from it at build time.

- ``<!-- edgesdk:cli -->`` becomes the ``--help`` of the ``edgesdk`` command and of each
  subcommand, from the argparse parser itself.
- ``<!-- edgesdk:models -->`` becomes the bundled models' table: accuracy from each sidecar,
  latency and memory from ``docs/reports/runtime-benchmark.json`` (``edgesdk benchmark -o``).
- ``<!-- edgesdk:include reports/NAME.md -->`` becomes that report (the benchmark suite's),
  ``<!-- edgesdk:teacher-ratios -->`` its students-against-the-teacher ratios and
  ``<!-- edgesdk:bulk -->`` its bulk-detection numbers in a sentence (the README's too).
- ``cards/<name>.md`` pages are the model cards shipped beside the models
  (``edgesdk/models/<name>.md``), their repository links rewritten for the site.

``models_table()`` is also what ``tests/test_docs.py`` checks the README's table against.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "edgesdk" / "models"
RUNTIME_REPORT = REPO / "docs" / "reports" / "runtime-benchmark.json"
TABLE_SIZE = 1000  # the side the table reports latency and memory at


def _bundled():
    """(ModelInfo, model file) of each bundled model, the default first: the runtime's own list."""
    from edgesdk.runtime.metadata import default_model_name, list_models

    default = default_model_name()
    return sorted(list_models(), key=lambda row: (row[0].name != default, row[0].name)), default


def _row(rows: List[Dict], model: str, low_memory: bool) -> Optional[Dict]:
    for r in rows:
        if r.get("model") == model and r.get("size") == TABLE_SIZE and bool(r.get("low_memory")) == low_memory \
                and "error" not in r:
            return r
    return None


def models_table(report_path: Path = RUNTIME_REPORT, card_links: str = "edgesdk/models/") -> str:
    """The bundled models as a Markdown table: BSDS500 test scores, latency and memory at 1000², file size.

    Every number is read from a file the code wrote: the sidecar's ``metrics`` (written by
    ``python -m convert export``), the benchmark report (``edgesdk benchmark -o``) and the file's size.
    """
    report = json.loads(Path(report_path).read_text())
    rows = report["rows"]
    bundled, default = _bundled()
    lines = [
        f"| model | BSDS500 test ODS / OIS / AP | {TABLE_SIZE}² p50 ms (low-memory) | peak RSS MB (low-memory) | file MB |",
        "|---|---|---|---|---|",
    ]
    for info, model_file in bundled:
        name, test = info.name, info.metrics["bsds500_test"]
        fast, lean = _row(rows, name, False), _row(rows, name, True)
        if fast is None or lean is None:
            raise ValueError(f"{report_path}: no {TABLE_SIZE}² rows for {name} in both memory modes; rerun edgesdk benchmark")
        label = f"[`{name}`]({card_links}{info.card})" if info.card else f"`{name}`"
        if name == default:
            label += " (default)"
        size_mb = model_file.stat().st_size / 1e6
        lines.append(
            f"| {label} | {test['ods']:.4f} / {test['ois']:.4f} / {test['ap']:.4f} | "
            f"{fast['total_p50_ms']:.0f} ({lean['total_p50_ms']:.0f}) | {fast['peak_rss_mb']:.0f} ({lean['peak_rss_mb']:.0f}) | "
            f"{size_mb:.1f} |"
        )
    return "\n".join(lines)


def measured_on(report_path: Path = RUNTIME_REPORT) -> str:
    """One line saying where and how the benchmark report was measured."""
    r = json.loads(Path(report_path).read_text())
    m = r["machine"]
    return (f"{m['cpu']} ({m['arch']}, {m['cores']} cores), {r['threads']} threads, median of {r['runs']} runs after "
            f"{r['warmup']} warm-up, each row a fresh process; edgesdk {r['edgesdk']}, {r['date']}")


def cli_reference() -> str:
    """Every ``edgesdk`` command's ``--help``, as the parser prints it."""
    from edgesdk.cli import build_parser

    parser = build_parser()
    parts = ["```text", parser.format_help().rstrip(), "```"]
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sp in sub.choices.items():
        parts += ["", f"## edgesdk {name}", "", "```text", sp.format_help().rstrip(), "```"]
    return "\n".join(parts)


def card_page(name: str) -> str:
    """A model card as a site page: its links into the repository's docs/ made relative to the site."""
    text = (MODELS / f"{name}.md").read_text()
    return re.sub(r"\]\(\.\./\.\./docs/", "](../", text)


BENCHMARK_REPORT = REPO / "docs" / "reports" / "benchmark.json"


def _full_report(report_path: Path) -> Dict:
    """The benchmark suite's report, refused if it is a smoke run's (whose numbers mean nothing)."""
    doc = json.loads(Path(report_path).read_text())
    if not doc["settings"]["full"]:
        raise ValueError(f"{report_path} is a smoke run's report: run pytest benchmarks -m bench --bench-report docs/reports")
    return doc


def teacher_ratios(report_path: Path = BENCHMARK_REPORT) -> str:
    """The students against the RCF teacher, per size, from the benchmark suite's report (pytest benchmarks -m bench)."""
    doc = _full_report(report_path)
    lines = ["| size | student | speed-up against the fastest teacher form | memory fraction of the leanest |",
             "|---|---|---|---|"]
    for r in doc["ratios"]:
        if r["suite"].startswith("models ") and r["role"] == "student":
            size = r["suite"].split()[1].replace("x", "×")
            lines.append(f"| {size} | {r['contender']} | {r['speedup']:.1f}× ({r['vs_speed']}) | "
                         f"{r['memory_fraction']:.2f} ({r['vs_memory']}) |")
    m = doc["machine"]
    lines += ["", f"Measured side by side by `pytest benchmarks -m bench` on {m['cpu']} ({m['arch']}, {m['cores']} "
                  f"cores), {doc['date']}; the whole report is on [Benchmarks & ARM](benchmarks.md#the-last-full-run)."]
    return "\n".join(lines)


def bulk_summary(report_path: Path = BENCHMARK_REPORT, link: str = "docs/benchmarks.md#the-last-full-run") -> str:
    """One sentence of the bulk-detection numbers (pytest benchmarks -m bench): the README's and the scale page's."""
    doc = _full_report(report_path)
    bulk = [r for r in doc["ratios"] if r["suite"].startswith("bulk detection")]
    speedup = {r["contender"]: r["speedup"] for r in bulk}
    measured = {r["name"]: r["extra"] for r in doc["measurements"] if r["suite"] == bulk[0]["suite"]}
    m = doc["machine"]

    def rate(name: str) -> str:
        return f"{measured[name]['images_per_s']:.1f} img/s"

    loop, workers, ray = "one image at a time", "process, a worker per CPU", "Ray Data, an actor per CPU"
    return (f"Measured side by side by `pytest benchmarks -m bench` on {m['cores']} cores ({m['cpu']}), "
            f"{doc['date']}: one image at a time "
            f"{rate(loop)}; `--workers {m['cores']}` {rate(workers)}, {speedup[workers]:.2f}× "
            f"(CPU busy {measured[workers]['cpu_busy']:.0%}); Ray Data with {m['cores']} one-thread actors "
            f"{rate(ray)}, {speedup[ray]:.2f}× (its start-up counted) ([report]({link})).")


def included_report(name: str) -> str:
    """A report the code wrote under docs/ (e.g. reports/benchmark.md), its title dropped for the page it sits in."""
    text = (REPO / "docs" / name).read_text()
    return re.sub(r"\A# [^\n]*\n+", "", text)


# -- MkDocs entry points --------------------------------------------------------------------------
def on_files(files, config):
    from mkdocs.structure.files import File

    for info, _ in _bundled()[0]:
        if info.card:
            stem = Path(info.card).stem
            files.append(File.generated(config, f"cards/{stem}.md", content=card_page(stem)))
    # One changelog, at the repository's root where packagers look for it; the site shows it as it is.
    files.append(File.generated(config, "changelog.md", content=(REPO / "CHANGELOG.md").read_text()))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "<!-- edgesdk:cli -->" in markdown:
        markdown = markdown.replace("<!-- edgesdk:cli -->", cli_reference())
    if "<!-- edgesdk:models -->" in markdown:
        markdown = markdown.replace("<!-- edgesdk:models -->", models_table(card_links="cards/"))
    if "<!-- edgesdk:measured-on -->" in markdown:
        markdown = markdown.replace("<!-- edgesdk:measured-on -->", measured_on())
    if "<!-- edgesdk:bulk -->" in markdown:
        markdown = markdown.replace("<!-- edgesdk:bulk -->", bulk_summary(link="benchmarks.md#the-last-full-run"))
    if "<!-- edgesdk:teacher-ratios -->" in markdown:
        markdown = markdown.replace("<!-- edgesdk:teacher-ratios -->", teacher_ratios())
    for name in re.findall(r"<!-- edgesdk:include ([\w./-]+\.md) -->", markdown):
        markdown = markdown.replace(f"<!-- edgesdk:include {name} -->", included_report(name))
    return markdown
