"""The compiled C++ kernels (``edgesdk._native``), or an ImportError that says how to get them.

Every module that calls the kernels imports them from here, so that a package
without them fails with the one message that helps: in a source checkout (where
``./edgesdk`` shadows an installed package when Python starts in the repository
root) they are built by ``pip install .``, which also places a copy beside the
sources; an installed package without them is broken and must be reinstalled.
"""

from __future__ import annotations

from pathlib import Path

try:
    from edgesdk import _native
except ImportError as exc:  # pragma: no cover - exercised in a child process by tests/test_packaging.py
    _here = Path(__file__).resolve().parent
    if (_here.parent / "pyproject.toml").is_file() and (_here.parent / "csrc").is_dir():
        _what = (f"the source checkout {_here.parent} has no built kernels (edgesdk/_native). "
                 f"Run `pip install .` (or `pip install -e .`) in it, which builds them and places a copy in "
                 f"{_here}; or start Python outside the checkout to use an installed edgesdk")
    else:
        _what = (f"the edgesdk package in {_here} has no compiled kernels (edgesdk/_native): "
                 f"reinstall it (pip install --force-reinstall edgesdk)")
    raise ImportError(f"{_what} ({exc})") from exc

__all__ = ["_native"]
