"""The benchmark report: ratios between contenders measured in one run, as rows, Markdown and JSON.

In every suite the contenders marked ``baseline`` are what the others are compared
with: the speed-up is the fastest baseline's median time over the contender's, the
memory fraction the contender's peak RSS over the smallest baseline's (where peak
RSS was measured). So each ratio is the hardest one the run offers: a student against
the teacher form that is fastest, and against the one that is leanest.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional

BASELINE = "baseline"


def ratio_rows(measurements) -> List[Dict]:
    rows: List[Dict] = []
    suites: Dict[str, list] = {}
    for m in measurements:
        suites.setdefault(m.suite, []).append(m)
    for suite, ms in suites.items():
        base = [m for m in ms if m.role == BASELINE]
        fastest = min(base, key=lambda m: m.median_ms) if base else None
        with_rss = [m for m in base if "peak_rss_mb" in m.extra]
        leanest = min(with_rss, key=lambda m: m.extra["peak_rss_mb"]) if with_rss else None
        for m in ms:
            row = {"suite": suite, "contender": m.name, "role": m.role, "median_ms": m.median_ms,
                   "rounds": m.rounds, "speedup": None, "peak_rss_mb": m.extra.get("peak_rss_mb"),
                   "memory_fraction": None, "vs_speed": fastest.name if fastest else None,
                   "vs_memory": leanest.name if leanest else None}
            if fastest is not None and m.median_ms > 0:
                row["speedup"] = round(fastest.median_ms / m.median_ms, 2)
            if leanest is not None and row["peak_rss_mb"]:
                row["memory_fraction"] = round(row["peak_rss_mb"] / leanest.extra["peak_rss_mb"], 3)
            row["notes"] = _notes(m.extra)
            rows.append(row)
    return rows


# Extras worth a word in the table, in this order, with how to say them.
NOTES = (("images_per_s", "{:.1f} img/s"), ("cpu_busy", "CPU busy {:.0%}"), ("params_M", "{:.2f} M params"),
         ("gflops", "{:.1f} GFLOPs"), ("ods", "ODS {:.4f}"), ("file_mb", "{:.2f} MB file"))


def _notes(extra: Dict) -> str:
    return ", ".join(fmt.format(extra[k]) for k, fmt in NOTES if extra.get(k) is not None)


def _fmt(v: Optional[float], spec: str) -> str:
    return "—" if v is None else format(v, spec)


def markdown(rows: List[Dict]) -> str:
    out: List[str] = []
    suites: Dict[str, List[Dict]] = {}
    for r in rows:
        suites.setdefault(r["suite"], []).append(r)
    for suite, rs in suites.items():
        first = rs[0]
        against = (f" (speed-up against {first['vs_speed']}" + (f", memory against {first['vs_memory']}"
                                                                if first["vs_memory"] else "") + ")") if first["vs_speed"] else ""
        out += ["", f"**{suite}**{against}", "",
                "| contender | role | median ms | speed-up | peak RSS MB | memory fraction | notes |",
                "|---|---|---|---|---|---|---|"]
        for r in sorted(rs, key=lambda r: (r["role"] != BASELINE, r["median_ms"])):
            speedup = "—" if r["speedup"] is None else f"{r['speedup']:.2f}×"
            out.append(f"| {r['contender']} | {r['role']} | {r['median_ms']:.1f} | {speedup} | "
                       f"{_fmt(r['peak_rss_mb'], '.0f')} | {_fmt(r['memory_fraction'], '.3f')} | {r['notes']} |")
    return "\n".join(out).strip() + "\n"


def report_document(rows: List[Dict], tables: str, measurements: List[Dict], settings: Dict, machine: Dict) -> Dict:
    """The report as written to benchmark.json; ``markdown`` (a head, then ``tables``: :func:`markdown` of
    ``rows``) is what benchmark.md holds."""
    kind = "full run (pytest benchmarks -m bench)" if settings["full"] else \
        "smoke run (small inputs, one round: the numbers mean nothing)"
    head = (f"# Benchmark report\n\n{kind}, {time.strftime('%Y-%m-%d')}, on {machine['cpu']} ({machine['arch']}, "
            f"{machine['cores']} cores, Python {machine['python']}), {settings['threads']} threads. Ratios are "
            "between contenders measured side by side in this run; absolute times are this machine's. Time: "
            "the median of the rounds timed by pytest-benchmark; memory: the peak RSS of a fresh process.\n")
    weights = sorted({m["extra"]["teacher_weights"] for m in measurements if m["extra"].get("teacher_weights")})
    if weights:
        head += (f"\nThe teacher files were exported from the training code with {', '.join(weights)} weights: "
                 "latency and memory depend on the architecture and the file format, not on the weight values.\n")
    return {"date": time.strftime("%Y-%m-%d"), "machine": machine, "settings": settings, "ratios": rows,
            "measurements": measurements, "markdown": head + "\n" + tables}
