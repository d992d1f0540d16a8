"""The fonts of a PDF as poppler's ``pdffonts`` lists them (Debian: ``apt-get install poppler-utils``)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def pdf_fonts(path: Path) -> list[dict[str, str]]:
    """One dict per font (``name``, ``type``, ``emb``: "yes"/"no"); skips the test, saying why, where
    pdffonts is not installed."""
    if not shutil.which("pdffonts"):
        pytest.skip("pdffonts not found: install poppler-utils (apt-get install poppler-utils) to check the "
                    "fonts embedded in PDFs")
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    header, _, *rows = listing.splitlines()  # fixed-width columns: name, type, encoding, emb, sub, uni, ...
    kind, encoding, emb = header.index("type"), header.index("encoding"), header.index("emb")
    return [{"name": row[:kind].strip(), "type": row[kind:encoding].strip(), "emb": row[emb:emb + 3].strip()}
            for row in rows]
