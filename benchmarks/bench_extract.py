"""Benchmark: clips per second of each extraction stage (video decode, face crop, audio decode, the
three encoders) and of the whole run, with random stand-ins of the encoders (no download).

    python benchmarks/bench_extract.py                        # tiny models, CPU, the 16 sample clips
    python benchmarks/bench_extract.py --size full --device cuda   # the real architectures, on a GPU
    python benchmarks/bench_extract.py --size full --encoders video audio   # CLIP-L, HuBERT-L on CPU

``--size tiny`` uses a few-thousand-weight CLIP / HuBERT / BLOOM: it times decoding, face crops
and the pipeline's overhead. ``--size full`` builds CLIP ViT-L/14, chinese-hubert-large and
bloom-7b1 with random weights from their published configs (stored float16; bloom-7b1 needs
~14 GB of disk and GPU memory): it times the encoders as a paper run would meet them. Clips are the
MER2023 samples when ../shared/data is there, else generated ones (640x360, 25 fps, AAC).
Each stage runs alone, single-threaded for decoding, so the figures say where time goes; the
end-to-end row uses the pipeline's background decode threads. Subtitle tokens come from a small
BPE tokenizer, not BLOOM's, so text token counts differ a little from a real run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: mer_lib and tests/support

MER2024_CLIPS = 5_030 + 115_595  # labelled + unlabelled clips of MER2024-SEMI


def sample_inputs(args, workdir: Path) -> tuple[Path, Path]:
    """(clips folder, subtitle CSV): the real samples if present, else generated ones."""
    import pandas as pd

    from tests.support.media import write_mp4
    from tests.support.samples import SAMPLE_CLIPS, SAMPLE_SUBTITLES

    if SAMPLE_CLIPS.is_dir() and SAMPLE_SUBTITLES.exists() and not args.generated:
        return SAMPLE_CLIPS, SAMPLE_SUBTITLES
    clips = workdir / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    names = [f"gen_{i:03d}" for i in range(args.generated_clips)]
    for i, name in enumerate(names):  # noise is what a decoder finds hardest: an upper bound on its cost
        write_mp4(clips / f"{name}.mp4", seconds=4.0, fps=25, size=(640, 360), codec="libx264", bit_rate=None,
                  picture="noise", sound="noise", seed=i)
    pd.DataFrame({"name": names, "chinese": ["我真的不知道你在说什么，别再问了"] * len(names),
                  "english": ["I really don't know what you're talking about"] * len(names)}
                 ).to_csv(workdir / "subtitles.csv", index=False)
    return clips, workdir / "subtitles.csv"


def build_models(args, folder: Path, texts: list[str]) -> dict[str, Path]:
    import torch

    from tests.support.random_models import make_bloom, make_clip, make_hubert

    build = {}
    if args.size == "full":  # initialise on the GPU when there is one, store float16
        build = {"device": "cuda" if torch.cuda.is_available() else "cpu", "dtype": torch.float16}
    names = {"tiny": ("clip-tiny", "hubert-tiny", "bloom-tiny"),
             "full": ("clip-vit-large-patch14", "chinese-hubert-large", "bloom-7b1")}[args.size]
    makers = {"video": lambda: make_clip(folder / names[0], size=args.size, **build),
              "audio": lambda: make_hubert(folder / names[1], size=args.size, **build),
              "text": lambda: make_bloom(folder / names[2], texts, size=args.size, **build)}
    t = time.perf_counter()
    models = {m: makers[m]() for m in args.encoders}
    print(f"built {args.size} stand-in models ({', '.join(models)}) in {time.perf_counter() - t:.1f} s")
    return models


def per_second(count: float, seconds: float) -> str:
    """A rate with three significant digits (0.349, 12.3, 389)."""
    return f"{count / seconds:.3g}"


def timed(fn, items):
    """(seconds, outputs) of fn over items, one by one."""
    t = time.perf_counter()
    outputs = [fn(item) for item in items]
    return time.perf_counter() - t, outputs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=["tiny", "full"], default="tiny", help="stand-in model size")
    p.add_argument("--device", default="auto", help="cpu, cuda, auto (default: auto)")
    p.add_argument("--encoders", nargs="+", choices=["video", "audio", "text"],
                   default=["video", "audio", "text"],
                   help="which encoders to time (full-size BLOOM needs a GPU; CLIP and HuBERT run on CPU)")
    p.add_argument("--fps", type=float, default=2.0, help="video frames sampled per second")
    p.add_argument("--max-seconds", type=float, default=None, help="decode at most this much of each clip")
    p.add_argument("--video-batch-size", type=int, default=32)
    p.add_argument("--audio-batch-size", type=int, default=8)
    p.add_argument("--text-batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=None,
                   help="decode threads end to end (default: the pipeline's)")
    p.add_argument("--generated", action="store_true", help="generated clips even where the samples exist")
    p.add_argument("--generated-clips", type=int, default=16)
    p.add_argument("--workdir", type=Path, default=None,
                   help="where models and outputs go (default: a temp dir)")
    args = p.parse_args()

    import pandas as pd
    import torch

    from mer_lib.config import AUDIO_SAMPLE_RATE
    from mer_lib.data import scan_clips
    from mer_lib.extract import extract_features
    from mer_lib.extract.decode import read_audio, read_video_frames
    from mer_lib.extract.encoders import (
        AudioEncoder,
        ImageEncoder,
        TextEncoder,
        resolve_device,
        resolve_dtype,
    )
    from mer_lib.extract.faces import FaceCropper

    device = resolve_device(args.device)
    if args.size == "full" and "text" in args.encoders and device.type != "cuda":
        p.error("--size full with the text encoder builds bloom-7b1 (28 GB in float32 while it is "
                "initialised): run it on a GPU, or pass --encoders video audio")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mer-bench-extract-"))
    clips_dir, subtitle_file = sample_inputs(args, workdir)
    clips = scan_clips(clips_dir).clips
    subtitles = pd.read_csv(subtitle_file, keep_default_na=False).set_index("name")
    texts = [subtitles.at[n, "chinese"] if n in subtitles.index else "" for n in clips]
    models = build_models(args, workdir / "models", list(subtitles["chinese"])[:2000])
    dtype = resolve_dtype(device, None)
    n = len(clips)
    cut = "" if args.max_seconds is None else f", clips cut to {args.max_seconds:g} s"
    print(f"{n} clips from {clips_dir}; fps {args.fps}{cut}; device {device} ({dtype}); torch threads "
          f"{torch.get_num_threads()}; {os.cpu_count()} CPU cores")

    rows = []  # (stage, seconds, clips, extra)
    t, videos = timed(lambda path: read_video_frames(path, fps=args.fps, max_seconds=args.max_seconds),
                      clips.values())
    frames = sum(len(v.frames) for v in videos)
    seconds_of_video = sum(v.duration for v in videos)
    rows.append(("decode video (1 thread)", t, n,
                 f"{per_second(frames, t)} sampled frames/s, {per_second(seconds_of_video, t)} s of video/s"))
    cropper = FaceCropper()
    t, crops = timed(lambda v: [cropper(f) for f in v.frames], videos)
    found = sum(ok for clip in crops for _, ok in clip)
    rows.append(("face crop, Haar (1 thread)", t, n,
                 f"{per_second(frames, t)} frames/s, face in {found}/{frames}"))
    t, waves = timed(lambda path: read_audio(path, max_seconds=args.max_seconds), clips.values())
    audio_seconds = sum(w.size for w in waves) / AUDIO_SAMPLE_RATE
    rows.append(("decode audio (1 thread)", t, n, f"{per_second(audio_seconds, t)} s of audio/s"))

    def run_encoder(encode, inputs, batch):
        encode(inputs[:batch])  # warm-up (kernels, allocator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, len(inputs), batch):
            encode(inputs[i:i + batch])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    if "video" in models:
        images = [img for clip in crops for img, _ in clip]
        encoder = ImageEncoder(models["video"], device, dtype)
        t = run_encoder(encoder.embed_images, images, args.video_batch_size)
        rows.append((f"CLIP {args.size} (batch {args.video_batch_size} frames)", t, n,
                     f"{per_second(len(images), t)} frames/s"))
    if "audio" in models:
        encoder = AudioEncoder(models["audio"], device, dtype)
        t = run_encoder(encoder.encode, waves, args.audio_batch_size)
        rows.append((f"HuBERT {args.size} (batch {args.audio_batch_size} clips)", t, n,
                     f"{per_second(audio_seconds, t)} s of audio/s"))
    if "text" in models:
        encoder = TextEncoder(models["text"], device, dtype)
        t = run_encoder(encoder.encode, texts, args.text_batch_size)
        rows.append((f"BLOOM {args.size} (batch {args.text_batch_size} subtitles)", t, n, ""))
    encoder = None
    if device.type == "cuda":
        torch.cuda.empty_cache()

    out_root = workdir / "out"
    shutil.rmtree(out_root, ignore_errors=True)
    start = time.perf_counter()
    summary = extract_features(clips_dir=clips_dir, out_root=out_root, subtitle_file=subtitle_file,
                               video_model=models.get("video"), audio_model=models.get("audio"),
                               text_model=models.get("text"), fps=args.fps, max_seconds=args.max_seconds,
                               video_batch_size=args.video_batch_size, audio_batch_size=args.audio_batch_size,
                               text_batch_size=args.text_batch_size, device=str(device),
                               num_workers=args.workers, progress=False)
    total = time.perf_counter() - start
    done = {r.modality: r.done for r in summary.results}
    rows.append((f"end to end, {len(models)} modalities ({summary.num_workers} decode threads)", total, n,
                 f"done {done}, model loading included"))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'stage':{width}s} {'seconds':>8s} {'clips/s':>8s} {'MER2024 (120,625 clips)':>24s}  notes")
    for stage, seconds, count, extra in rows:
        rate = count / seconds
        print(f"{stage:{width}s} {seconds:8.2f} {rate:8.3g} {MER2024_CLIPS / rate / 3600:21.1f} h  {extra}")
    stages = {r[0].split(" (")[0]: r[2] / r[1] for r in rows[:-1]}  # single stages, not end to end
    slowest = min(stages, key=stages.get)
    video_side = 1 / (1 / stages["decode video"] + 1 / stages["face crop, Haar"])
    print(f"\nslowest stage: {slowest} ({stages[slowest]:.2f} clips/s); decode video + faces "
          f"together: {video_side:.2f} clips/s per thread")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
