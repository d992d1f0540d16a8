"""The one error type of the data layer."""
from __future__ import annotations


class DataError(ValueError):
    """Bad input data. The message names the file, the sample and the fix."""


def listing(items, limit: int = 5) -> str:
    """``'a', 'b', 'c' and 12 more`` for error messages that must stay readable at 120k samples."""
    items = list(items)
    shown = ", ".join(repr(str(x)) for x in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
