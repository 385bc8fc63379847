"""edgesdk (runtime, eval, CLI) must import and run without torch."""

import subprocess
import sys

from datasets import REPO

BLOCK_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name in ("training", "convert"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, _Block())
"""


def test_package_and_cli_work_without_torch():
    code = BLOCK_TORCH + f"""
import numpy as np
import edgesdk, edgesdk.postprocess as pp, edgesdk.eval, edgesdk.cli
assert pp.thin(pp.nms(np.ones((8, 8), np.float32)) > 0).any()
sys.exit(edgesdk.cli.main(["eval", "--pred", r"{REPO}/examples/bsds500-sample/hed",
    "--gt", r"{REPO}/examples/bsds500-sample/groundTruth", "--thresholds", "5", "--no-plot",
    "--out", sys.argv[1], "--quiet"]))
"""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-c", code, out], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "ODS" in proc.stdout
    assert "torch" not in proc.stderr
