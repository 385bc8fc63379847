"""The teacher's curve: BSDS500 test ODS against training time, every RCF lineage trained here (docs/results.md).

The scores are read from training/RESULTS.md (the last single-scale test row of each run; rows of other
tests, such as the multi-scale one, are skipped). Time is counted in 320x320 crops seen, which costs the same
on any device, and drawn as hours of this project's 2-core CPU at its measured rate (3000 crops, one
1500-iteration cycle at batch 2, in 43 minutes on 2 threads): the GPU-trained points are what that CPU would
have needed.

    python docs/scripts/teacher-curve.py --out docs/figures/teacher_curve.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Tuple

REPO = Path(__file__).resolve().parents[2]
CPU_HOURS_PER_CROP = (43 / 60) / 3000  # docs/results.md, *The teacher*: 1500 it x batch 2 in 43 min
# Rows that score another test than the standard single-scale one start their notes with one of these
# (training/__main__.py, scales_note).
OTHER_TESTS = ("multi-scale", "one forward at", "averaged with", "late merging")

# (run, the run it continued from, iterations x batch it added beyond its RESULTS row's iterations, batch).
# A run without a parent ("") starts from the shared HED plus the crops given. Batches: rcf.toml's 2 on the CPU, 8 on the GPUs.
LINEAGES: Dict[str, List[Tuple[str, str, int, int]]] = {
    "from the shared HED: 3 CPU cycles, then H200 cycles (eta 0.5)": [
        ("rcf", "", 0, 2), ("rcf-3000", "rcf", 0, 2), ("rcf-4500", "rcf-3000", 0, 2),
        ("rcf-gpu", "rcf-4500", 0, 8), ("rcf-gpu-bb1.0", "rcf-gpu", 0, 8), ("rcf-gpu3", "rcf-gpu-bb1.0", 0, 8),
    ],
    # rcf-rebuild: 1500 it x batch 8 at the backbone's tenth before the 4950 its row counts.
    "rebuilt from HED on a lent GPU, then one cycle at eta 0.15 (stop 23)": [
        ("rcf-rebuild", "", 1500 * 8, 8), ("rcf-rebuild-eta015", "rcf-rebuild", 0, 8),
    ],
    # The stop-27 parent (1500 + 4155 it x batch 8) was not returned, so it has no row.
    "a fresh lineage from HED, one sibling at eta 0.15 (stop 27)": [
        ("rcf-soup-eta015-s0", "", (1500 + 4155) * 8, 8),
    ],
}
# Weight averages: drawn at the crops of their longest-trained ingredient (no training of their own).
AVERAGES = {"soup-rcf-rebuild-eta015-eta05": "rcf-rebuild-eta015", "soup-rcf-soup-3": "rcf-soup-eta015-s0"}
HED_AS_LOADED = 0.746  # docs/results.md, *The teacher*: the shared HED scored as loaded (its first row)
TARGET, PUBLISHED = 0.79, 0.806  # the target; the RCF paper's single-scale ODS (BSDS500 + PASCAL VOC Context)
PUBLISHED_IMAGES = 400_000  # RCF's schedule: ~40 000 iterations x iter_size 10 (docs/results.md, *The teacher*)


def results_rows(path: Path) -> Dict[str, Tuple[int, float]]:
    """run -> (iterations, test ODS) of its last single-scale test row."""
    rows: Dict[str, Tuple[int, float]] = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 12 or cells[6] != "test" or not cells[4].isdigit():
            continue
        notes = cells[11] or (cells[12] if len(cells) > 12 else "")  # a few rows have an empty cell before the notes
        if notes.startswith(OTHER_TESTS):
            continue
        rows[cells[1]] = (int(cells[4]), float(cells[8]))
    return rows


def curve_points(rows: Dict[str, Tuple[int, float]]) -> Dict[str, List[Tuple[str, float, float]]]:
    """lineage -> [(run, CPU hours, ODS)], the hours cumulative along the lineage."""
    points: Dict[str, List[Tuple[str, float, float]]] = {}
    crops: Dict[str, int] = {}
    for lineage, runs in LINEAGES.items():
        points[lineage] = []
        for run, parent, extra, batch in runs:
            if run not in rows:
                raise SystemExit(f"{run}: no single-scale test row in training/RESULTS.md")
            iterations, ods = rows[run]
            crops[run] = (crops[parent] if parent else 0) + extra + iterations * batch
            points[lineage].append((run, crops[run] * CPU_HOURS_PER_CROP, ods))
    for avg, ingredient in AVERAGES.items():
        for lineage, pts in points.items():
            if any(run == ingredient for run, _, _ in pts):
                pts.append((avg, crops[ingredient] * CPU_HOURS_PER_CROP, rows[avg][1]))
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=REPO / "training" / "RESULTS.md")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "teacher_curve.png")
    args = ap.parse_args()
    points = curve_points(results_rows(args.results))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    for (lineage, pts), marker in zip(points.items(), "osD"):
        trained = [p for p in pts if p[0] not in AVERAGES]
        line, = ax.plot([0] + [h for _, h, _ in trained], [HED_AS_LOADED] + [o for _, _, o in trained],
                        marker=marker, label=lineage)
        for run, h, ods in pts:
            if run in AVERAGES:
                ax.plot([h], [ods], marker="*", markersize=13, color=line.get_color(), linestyle="none")
            print(f"{run:34s} {h:7.2f} h  ODS {ods:.4f}")
    ax.plot([], [], marker="*", markersize=13, color="grey", linestyle="none", label="weight average of siblings")
    ax.axhline(TARGET, color="red", linestyle="--", linewidth=1, label=f"target {TARGET}")
    ax.axhline(PUBLISHED, color="black", linestyle=":", linewidth=1,
               label=f"RCF paper, single scale {PUBLISHED} (+ PASCAL VOC Context)")
    ax.axvline(PUBLISHED_IMAGES * CPU_HOURS_PER_CROP, color="grey", linestyle="-.", linewidth=1,
               label=f"RCF's schedule, ~{PUBLISHED_IMAGES // 1000}k augmented images")
    ax.set_xlabel(f"training time, hours of this 2-core CPU (crops seen x its measured "
                  f"{CPU_HOURS_PER_CROP * 3600:.2f} s per crop)")
    ax.set_ylabel("BSDS500 test ODS (single scale)")
    ax.set_title("RCF teacher: ODS against training time (start: the shared HED, 0.746)")
    ax.set_ylim(0.73, 0.81)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
