"""Precision-recall curves in the style of the BSDS benchmark plots."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping

import numpy as np

from edgesdk import io as fileio
from edgesdk.errors import EdgeSDKError
from edgesdk.eval.metrics import Result


def plot_pr(results: Mapping[str, Result], path: str | Path, title: str = "BSDS500 boundaries") -> Path:
    """Plot the PR curves of one or more results, with iso-F contours, to an image file.

    Parameters
    ----------
    results : mapping of label to Result
        Curves to draw; each is labelled with its ODS F-measure and marked at
        its ODS point.
    path : str or Path
        Output file (PNG, SVG or PDF by extension).
    title : str
        Plot title.

    Returns
    -------
    Path
        The written file.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the install
        raise EdgeSDKError("plotting needs matplotlib: pip install 'edgesdk[eval]'") from None
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=120)
    # Iso-F contours, as in the BSDS plots.
    grid = np.linspace(0.01, 1, 200)
    rr, pp = np.meshgrid(grid, grid)
    ff = 2 * pp * rr / (pp + rr)
    contours = ax.contour(rr, pp, ff, levels=np.arange(0.1, 1.0, 0.1), colors="0.85", linewidths=0.8)
    ax.clabel(contours, fmt="%.1f", fontsize=7)
    for label, res in results.items():
        keep = (res.recall > 0) | (res.precision > 0)
        (line,) = ax.plot(res.recall[keep], res.precision[keep], lw=2, label=f"[F={res.ods_f:.3f}] {label}")
        ax.plot([res.ods_r], [res.ods_p], "o", color=line.get_color())
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title(title)
    ax.grid(False)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return fileio.write_bytes(path, buf.getvalue())
