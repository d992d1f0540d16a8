"""The clip files of a folder: one scan for extraction, priors, the inspector and the notebooks.

A clip is ``<folder>/<name><suffix>`` with a suffix of :data:`mer_lib.config.VIDEO_SUFFIXES` (any
case); files starting with a dot (``._x.mp4`` from macOS, editors' temp files) are not clips. An
entry that looks like a clip but cannot be read is not skipped in silence: it is listed in
:attr:`ClipScan.unusable` with the reason, and every caller shows that list (extraction in its
summary, the inspector in its notes, the others as a warning).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..config import VIDEO_SUFFIXES


@dataclass
class ClipScan:
    folder: Path
    clips: dict[str, Path]  # clip name -> its file, in name order
    unusable: list[tuple[Path, str]] = field(default_factory=list)  # (entry, why it is not a clip), by path
    duplicates: dict[str, list[Path]] = field(default_factory=dict)  # name -> its files when it has several

    def note(self, limit: int = 5) -> str:
        """A sentence on the unusable entries ("" when there are none), naming the first ``limit``."""
        if not self.unusable:
            return ""
        shown = "; ".join(f"{path.name}: {why}" for path, why in self.unusable[:limit])
        more = f"; and {len(self.unusable) - limit} more" if len(self.unusable) > limit else ""
        return f"{len(self.unusable)} entr{'y' if len(self.unusable) == 1 else 'ies'} of {self.folder} " \
               f"cannot be used as clips ({shown}{more})"

    def warn(self) -> None:
        """Warn about the unusable entries, for callers that print no summary of their own."""
        if self.unusable:
            warnings.warn(self.note(), stacklevel=2)


def scan_clips(folder: str | os.PathLike) -> ClipScan:
    """The clips of ``folder`` (not recursive; one directory listing, so 120k clips take a moment).

    A name with several files (``a.mp4`` and ``a.avi``) keeps the one whose suffix comes first in
    ``VIDEO_SUFFIXES`` (mp4 first); the others are unusable and ``duplicates`` lists them all.
    """
    folder = Path(folder)
    found: dict[str, list[Path]] = {}
    unusable: list[tuple[Path, str]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if entry.name.startswith(".") or suffix.lower() not in VIDEO_SUFFIXES:
                continue
            why = _why_unusable(entry)
            if why:
                unusable.append((Path(entry.path), why))
            else:
                found.setdefault(stem, []).append(Path(entry.path))
    clips, duplicates = {}, {}
    for name in sorted(found):
        paths = sorted(found[name], key=lambda p: (VIDEO_SUFFIXES.index(p.suffix.lower()), p.name))
        clips[name] = paths[0]
        if len(paths) > 1:
            duplicates[name] = paths
            unusable += [(p, f"another file of clip '{name}' ({paths[0].name} is used)") for p in paths[1:]]
    return ClipScan(folder, clips, sorted(unusable), duplicates)


def _why_unusable(entry: os.DirEntry) -> str:
    """Why a directory entry with a video suffix cannot be read as a clip ("" when it can)."""
    if entry.is_symlink() and not os.path.exists(entry.path):
        return f"a symbolic link to {os.readlink(entry.path)}, which does not exist"
    if entry.is_dir():
        return "a directory, not a video file"
    if not entry.is_file():
        return "not a regular file (a socket, pipe or device)"
    if not os.access(entry.path, os.R_OK):
        return "not readable (check its permissions)"
    return ""
