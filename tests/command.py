"""Running the ``edgesdk`` command as a user would: a fresh interpreter, its output captured."""

import subprocess
import sys


def run_edgesdk(*args, cwd, stdin=None) -> subprocess.CompletedProcess:
    """``python -m edgesdk ARGS`` in ``cwd`` (paths and numbers given as they are), text in and out."""
    return subprocess.run([sys.executable, "-m", "edgesdk", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, input=stdin)
