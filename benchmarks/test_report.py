"""The report's arithmetic, on hand-made measurements (no timing)."""

from suite import Measurement
from report import markdown, ratio_rows


def test_ratios_are_against_the_fastest_and_the_leanest_baseline():
    ms = [
        Measurement("models 1000x1000", "rcf-fp32", "baseline", 4000.0, 3900.0, 10, {"peak_rss_mb": 2000.0}),
        Measurement("models 1000x1000", "rcf-torchscript", "baseline", 4600.0, 4500.0, 10, {"peak_rss_mb": 1100.0}),
        Measurement("models 1000x1000", "model-int8", "student", 80.0, 78.0, 10, {"peak_rss_mb": 440.0, "ods": 0.7814}),
        Measurement("kernels", "numpy", "baseline", 400.0, 390.0, 3, {}),
        Measurement("kernels", "edgesdk", "contender", 16.0, 15.0, 10, {}),
    ]
    rows = {(r["suite"], r["contender"]): r for r in ratio_rows(ms)}
    student = rows[("models 1000x1000", "model-int8")]
    # Speed against the fastest teacher form (4000 ms), memory against the leanest (1100 MB).
    assert student["speedup"] == 50.0 and student["memory_fraction"] == 0.4
    assert student["vs_speed"] == "rcf-fp32" and student["vs_memory"] == "rcf-torchscript"
    assert rows[("models 1000x1000", "rcf-torchscript")]["speedup"] == round(4000 / 4600, 2)
    assert rows[("kernels", "edgesdk")]["speedup"] == 25.0 and rows[("kernels", "edgesdk")]["memory_fraction"] is None
    text = markdown(list(rows.values()))
    assert "| model-int8 | student | 80.0 | 50.00× | 440 | 0.400 | ODS 0.7814 |" in text
    assert "**kernels** (speed-up against numpy)" in text
