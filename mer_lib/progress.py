"""Progress bars that behave in JupyterLab, in a terminal and in papermill logs.

In JupyterLab a widget bar is right. Under papermill a widget bar leaves nothing readable in the
log and a carriage-return bar floods it, so ``mer_lib.reproduce`` sets ``MER_LIB_PROGRESS=log``
and bars then print a plain line at most every ``MER_LIB_PROGRESS_INTERVAL`` seconds (default 30).
``MER_LIB_PROGRESS=off`` silences them.
"""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _std_tqdm


def progress(iterable=None, *, desc: str = "", total: int | None = None, disable: bool = False,
             leave: bool = False, **kwargs):
    mode = os.environ.get("MER_LIB_PROGRESS", "auto")
    if disable or mode == "off":
        return _std_tqdm(iterable, total=total, disable=True)
    if mode == "log":
        interval = float(os.environ.get("MER_LIB_PROGRESS_INTERVAL", "30"))
        # ascii bar, no carriage returns: each refresh is its own log line
        return _std_tqdm(iterable, desc=desc, total=total, file=_LineWriter(), mininterval=interval,
                         maxinterval=interval, ascii=True, leave=True, dynamic_ncols=False, ncols=80,
                         **kwargs)
    return _auto_tqdm(iterable, desc=desc, total=total, leave=leave, mininterval=0.5, **kwargs)


class _LineWriter:
    """A file for tqdm that turns each carriage-return refresh into a newline-terminated line."""

    def write(self, s: str) -> None:
        s = s.replace("\r", "").strip()
        if s:
            sys.stderr.write(s + "\n")

    def flush(self) -> None:
        sys.stderr.flush()
