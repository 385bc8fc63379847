"""The training and conversion commands' view of the library's log: INFO lines on stdout."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator


@contextlib.contextmanager
def log_on_stdout(*names: str) -> Iterator[None]:
    """While the block runs, the INFO lines of the loggers ``names`` are printed on stdout.

    Library modules report through ``logging`` and never print; a command that wants
    their progress lines shown (as ``print`` showed them before) wraps its work in this.
    The handler is removed afterwards, so calling a command's ``main`` twice in one
    process (the tests do) does not print each line twice.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [logging.getLogger(name) for name in names]
    for log in loggers:
        log.setLevel(logging.INFO)
        log.addHandler(handler)
    try:
        yield
    finally:
        for log in loggers:
            log.removeHandler(handler)
