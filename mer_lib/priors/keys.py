"""API keys: read from the environment only, and scrubbed from everything a run writes.

A key is never a function argument (papermill records every parameter into the executed
notebook), never an attribute a ``repr`` shows, and never written: the store passes every error
message and raw answer through :func:`redact` before it reaches the disk.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence

_seen_keys: set[str] = set()
_lock = threading.Lock()


class MissingAPIKey(RuntimeError):
    """No key in the environment for a back-end that needs one."""


def api_key_from_env(names: Sequence[str], what: str) -> str:
    """The first non-empty environment variable among ``names``; a clear error when none is set."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            with _lock:
                _seen_keys.add(value)
            return value
    raise MissingAPIKey(f"{what} needs an API key, and none of the environment variables "
                        f"{', '.join(names)} is set. Fix: export {names[0]}=... in the shell that "
                        "starts Jupyter or papermill (never put the key in a notebook or a file "
                        "the project tracks).")


def redact(text: str | None) -> str | None:
    """``text`` with every key this process has read (and any set in the usual variables) replaced."""
    if not text:
        return text
    with _lock:
        secrets = set(_seen_keys)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        value = os.environ.get(name, "").strip()
        if value:
            secrets.add(value)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 8:  # a 1-3 character "key" would mangle ordinary text
            text = text.replace(secret, "[redacted]")
    return text
