"""``python -m mer_lib.extract --clips DIR --out ROOT --video-model ... --audio-model ... --text-model ...``

The command line of :func:`mer_lib.extract.extract_features` (same function, same defaults). Exits
with 0 when every clip was extracted or skipped, 1 when some clips failed (listed, with the fix),
2 on a bad setting.
"""
from __future__ import annotations

import argparse
import sys

from ..config import MODALITIES
from ..data import DataError
from .encoders import ModelLoadError
from .pipeline import ExtractConfig, ExtractError, extract_features


def _optional_float(text: str) -> float | None:
    return None if text.lower() in ("none", "all", "0") else float(text)


def build_parser() -> argparse.ArgumentParser:
    d = ExtractConfig()
    p = argparse.ArgumentParser(prog="python -m mer_lib.extract", description=(
        "Extract MER-layout features (<out>/features/<model>-UTT/<name>.npy) from a folder of clips "
        "and a subtitle CSV. Re-running skips clips whose files exist."))
    p.add_argument("--clips", dest="clips_dir", help="folder of clips (<name>.mp4, ...)")
    p.add_argument("--out", dest="out_root", default=str(d.out_root),
                   help="output root (default: %(default)s)")
    p.add_argument("--subtitles", dest="subtitle_file", help="CSV with columns name,chinese,english")
    p.add_argument("--video-model", help="CLIP folder or hub id, e.g. openai/clip-vit-large-patch14")
    p.add_argument("--audio-model",
                   help="speech model folder or hub id, e.g. TencentGameMate/chinese-hubert-large")
    p.add_argument("--text-model", help="language model or sentence encoder, e.g. bigscience/bloom-7b1")
    for m in MODALITIES:
        p.add_argument(f"--{m}-folder", help=f"{m} feature folder name (default: the model's basename)")
    p.add_argument("--levels", nargs="+", default=list(d.levels), choices=["UTT", "FRA"],
                   help="UTT (utterance vectors), FRA (frame-level [T, D]) or both (default: UTT)")
    p.add_argument("--names", nargs="+", help="only these clips")
    p.add_argument("--fps", type=_optional_float, default=d.fps,
                   help="video frames per second to sample; 'all' for every frame (default: %(default)s)")
    p.add_argument("--max-seconds", type=_optional_float, default=d.max_seconds,
                   help="decode at most this many seconds of each clip (default: all)")
    p.add_argument("--face-detector", choices=["haar", "none"], default=d.face_detector)
    p.add_argument("--text-language", choices=["chinese", "english"], default=d.text_language)
    p.add_argument("--text-pooling", choices=["auto", "layers", "sentence"], default=d.text_pooling)
    p.add_argument("--video-batch-size", type=int, default=d.video_batch_size, help="frames per forward")
    p.add_argument("--audio-batch-size", type=int, default=d.audio_batch_size, help="clips per forward")
    p.add_argument("--text-batch-size", type=int, default=d.text_batch_size, help="subtitles per forward")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1, ... (default: auto)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--half", dest="half", action="store_true", default=None,
                           help="float16 (default: on a GPU only)")
    precision.add_argument("--no-half", dest="half", action="store_false", help="float32 everywhere")
    p.add_argument("--workers", dest="num_workers", type=int, default=d.num_workers,
                   help="decode threads (default: one per CPU core, up to 8)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    args["levels"] = tuple(dict.fromkeys(args["levels"]))
    try:
        summary = extract_features(ExtractConfig(**args))
    except (ExtractError, ModelLoadError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
