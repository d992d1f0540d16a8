"""A read-only file system for the tests that need one (they run as root, where chmod stops no write)."""
from __future__ import annotations

import errno
import os
from pathlib import Path


def simulate_read_only(monkeypatch, folder: Path) -> None:
    """Creating a file or folder under ``folder`` fails as on a read-only mount (``os.open`` with a
    write flag, ``os.mkdir``); tests run as root, where ``chmod`` stops no write."""
    top = os.path.abspath(folder).rstrip(os.sep) + os.sep  # "/" for the whole file system

    def inside(path) -> bool:
        return (os.path.abspath(os.fspath(path)) + os.sep).startswith(top)

    real_open, real_mkdir = os.open, os.mkdir

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path):
            if os.path.exists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)
