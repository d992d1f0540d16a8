"""Clips + subtitles -> features in the MER layout, one pass per modality; resumable and reported.

    <out_root>/features/<model>-UTT/<name>.npy     (D,) float32 utterance vector per clip
    <out_root>/features/<model>-FRA/<name>.npy     (T, D) float32 frames / audio frames / tokens
    <out_root>/extract-reports/<model>.json        per clip: done or the error; sampled frames and
                                                   which got a face crop; seconds of audio; ...

exactly what :func:`mer_lib.data.load_dataset` reads. Each modality loads one model at a time (so
bloom-7b1 and CLIP never share a GPU), decodes clips in background threads while the model runs,
and writes every file atomically. A clip whose files exist is skipped, so an interrupted run picks
up where it stopped; a clip that fails (no such track, zero length, corrupt container) is reported
with the reason and gets no file, so the next run tries it again.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..config import DATA_DIR, MODALITIES, VIDEO_SUFFIXES
from ..data import ClipScan, read_subtitles, scan_clips
from ..progress import progress
from .decode import ClipError, read_audio, read_video_frames
from .encoders import (
    TEXT_POOLINGS,
    AudioEncoder,
    ImageEncoder,
    TextEncoder,
    model_basename,
    resolve_device,
    resolve_dtype,
)
from .faces import FACE_DETECTORS, FaceCropConfig, FaceCropper

LEVELS = ("UTT", "FRA")  # MERTools' suffixes: utterance vectors, frame-level arrays
REPORTS_DIR = "extract-reports"
REPORT_SAVE_INTERVAL = 60.0  # seconds between report checkpoints during a long run


class ExtractError(ValueError):
    """A setting or input that stops the whole run (per-clip problems are reported instead)."""


@dataclass
class ExtractConfig:
    out_root: str | Path = DATA_DIR / "extracted"  # features go to <out_root>/features/<folder>/<name>.npy
    clips_dir: str | Path | None = None  # folder of clips; a clip's name is its file name without extension
    subtitle_file: str | Path | None = None  # CSV name,chinese,english (transcription-engchi-polish.csv)
    video_model: str | None = None  # CLIP folder or hub id, e.g. openai/clip-vit-large-patch14; None: skip
    audio_model: str | None = None  # wav2vec2-family model, e.g. TencentGameMate/chinese-hubert-large
    text_model: str | None = None  # LM or sentence-encoder folder or hub id, e.g. bigscience/bloom-7b1
    video_folder: str | None = None  # feature folder name without -UTT/-FRA; None: the model's basename
    audio_folder: str | None = None  # likewise for audio
    text_folder: str | None = None  # likewise for text
    levels: tuple[str, ...] = ("UTT",)  # "UTT" utterance vectors, "FRA" frame-level [T, D], or both
    names: list[str] | None = None  # extract only these clips (default: every clip / subtitle row)
    fps: float | None = 2.0  # video frames sampled per second; None: every frame (MERTools' OpenFace run)
    max_seconds: float | None = None  # decode at most this much of each clip (tests, quick looks); None: all
    max_frame_side: int = 1280  # frames larger than this are scaled down while decoding (memory)
    face_detector: str = "haar"  # "haar": OpenCV's bundled frontal-face cascade; "none": whole frames
    face_size: int = 224  # face crops are resized to this square side (CLIP's input size)
    text_language: str = "chinese"  # subtitle column to encode; MERTools' bloom-7b1 features use Chinese
    text_pooling: str = "auto"  # "layers": MER's last-4-sum over tokens; "sentence": masked mean
    # (+ normalize) of a sentence encoder; "auto": "sentence" for a sentence-transformers folder
    max_text_tokens: int = 512  # longer subtitles are truncated (MER subtitles are far shorter)
    video_batch_size: int = 32  # frames per CLIP forward pass (clips are packed together)
    audio_batch_size: int = 8  # clips per speech-model forward pass (padded and masked)
    text_batch_size: int = 32  # subtitles per language-model forward pass (padded and masked)
    device: str = "auto"  # "auto" (a GPU when torch sees one), "cpu", "cuda", "cuda:1", ...
    half: bool | None = None  # float16 weights; None: on a GPU only (as MERTools' model.half())
    num_workers: int | None = None  # threads decoding clips and cropping faces while the model runs;
    # None: one per CPU core up to 8 (decoding and the face cascade are the CPU-bound part)
    progress: bool = True  # progress bars (mer_lib.progress; plain log lines under papermill)

    def check(self) -> None:
        """Raise :class:`ExtractError` naming the setting and the fix for anything inconsistent."""
        models = {m: getattr(self, f"{m}_model") for m in MODALITIES}
        if not any(models.values()):
            raise ExtractError("no encoder chosen. Fix: set video_model, audio_model and/or text_model "
                               "(local folders or hub ids).")
        if (models["video"] or models["audio"]) and self.clips_dir is None:
            raise ExtractError("video_model/audio_model need clips_dir. Fix: pass the folder of clips.")
        if self.clips_dir is not None and not Path(self.clips_dir).is_dir():
            raise ExtractError(f"{self.clips_dir}: clips folder not found. Fix: pass the folder that holds "
                               "the clips (<name>.mp4, ...).")
        if models["text"]:
            if self.subtitle_file is None:
                raise ExtractError("text_model needs subtitle_file. Fix: pass the subtitle CSV "
                                   "(columns name,chinese,english).")
            if not Path(self.subtitle_file).is_file():
                raise ExtractError(f"{self.subtitle_file}: subtitle file not found. Fix: pass the CSV with "
                                   "columns name,chinese,english.")
        if self.text_language not in ("chinese", "english"):
            raise ExtractError(f"text_language={self.text_language!r}. Fix: 'chinese' or 'english' "
                               "(the subtitle CSV's columns).")
        if self.text_pooling not in TEXT_POOLINGS:
            raise ExtractError(f"text_pooling={self.text_pooling!r}. Fix: one of {TEXT_POOLINGS}.")
        if self.face_detector not in FACE_DETECTORS:
            raise ExtractError(f"face_detector={self.face_detector!r}. Fix: one of {FACE_DETECTORS}.")
        if not self.levels or set(self.levels) - set(LEVELS):
            raise ExtractError(f"levels={self.levels!r}. Fix: 'UTT', 'FRA' or both.")
        if self.fps is not None and self.fps <= 0:
            raise ExtractError(f"fps={self.fps}. Fix: a positive rate, or None for every frame.")
        sizes = ("video_batch_size", "audio_batch_size", "text_batch_size", "face_size", "max_frame_side")
        for name in sizes:
            if getattr(self, name) < 1:
                raise ExtractError(f"{name}={getattr(self, name)}. Fix: a positive number.")


@dataclass
class ModalityResult:
    modality: str  # "video", "audio" or "text"
    model: str  # the model path or hub id
    folders: list[str]  # feature folders written, e.g. ["clip-vit-large-patch14-UTT"]
    done: int = 0  # clips extracted in this run
    skipped: int = 0  # clips whose files already existed
    failed: dict[str, str] = field(default_factory=dict)  # clip name -> error message
    counts: dict[str, int] = field(default_factory=dict)  # frames, frames_with_face, empty_subtitles, ...
    seconds: float = 0.0  # wall time of this modality

    def notes(self) -> str:
        c = self.counts
        if self.modality == "video" and c.get("frames"):
            return f"face in {c['frames_with_face']}/{c['frames']} frames"
        if self.modality == "audio" and c.get("audio_ms"):
            return f"{c['audio_ms'] / 1000:.1f} s of audio"
        if self.modality == "text" and c.get("empty_subtitles"):
            return f"{c['empty_subtitles']} empty subtitle(s) -> zero vectors"
        return ""


@dataclass
class ExtractSummary:
    out_root: Path
    results: list[ModalityResult]
    report_files: list[Path]  # extract-reports/<folder>.json of each modality
    num_workers: int  # decode threads used
    clips_note: str = ""  # entries of clips_dir that look like clips but cannot be read (ClipScan.note)

    @property
    def failures(self) -> dict[tuple[str, str], str]:
        """``{(modality, clip name): error}`` of this run."""
        return {(r.modality, n): e for r in self.results for n, e in r.failed.items()}

    def result(self, modality: str) -> ModalityResult:
        return next(r for r in self.results if r.modality == modality)

    def __str__(self) -> str:
        rows = [("modality", "feature folder", "done", "skipped", "failed", "seconds", "notes")]
        for r in self.results:
            rows.append((r.modality, ", ".join(r.folders), str(r.done), str(r.skipped), str(len(r.failed)),
                         f"{r.seconds:.1f}", r.notes()))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [f"features in {self.out_root / 'features'}"]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        if self.failures:
            lines.append(f"{len(self.failures)} failure(s) (no file written; a re-run tries them again):")
            lines += [f"  {m} {n}: {e}" for (m, n), e in self.failures.items()]
        if self.clips_note:
            lines.append(f"not extracted: {self.clips_note}")
        return "\n".join(lines)

    __repr__ = __str__


def extract_features(config: ExtractConfig | None = None, /, **settings: Any) -> ExtractSummary:
    """Extract features of a folder of clips (and their subtitles) into the MER layout.

    Call with an :class:`ExtractConfig`, with its fields as keywords, or both (keywords override)::

        extract_features(clips_dir="data/raw/clips", out_root="data/mer2024",
                         subtitle_file="data/raw/transcription-engchi-polish.csv",
                         video_model="openai/clip-vit-large-patch14",
                         audio_model="TencentGameMate/chinese-hubert-large",
                         text_model="bigscience/bloom-7b1")

    Returns the summary of clips done, skipped and failed per modality; the per-clip details are
    in ``<out_root>/extract-reports/``. ``python -m mer_lib.extract`` calls this same function.
    """
    cfg = replace(config or ExtractConfig(), **settings)
    cfg.check()
    if cfg.num_workers is None:
        cfg = replace(cfg, num_workers=min(8, os.cpu_count() or 1))
    out_root = Path(cfg.out_root).expanduser()
    scan = clips_to_extract(Path(cfg.clips_dir)) if cfg.clips_dir is not None else None
    clip_paths = scan.clips if scan else {}
    subtitles = read_subtitles(Path(cfg.subtitle_file)) if cfg.text_model else None
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(device, cfg.half)

    tasks = {"video": _video_task, "audio": _audio_task, "text": _text_task}
    plans = []
    for modality in MODALITIES:  # check every folder's settings before spending hours on the first
        model = getattr(cfg, f"{modality}_model")
        if model:
            if modality == "text":
                names = cfg.names if cfg.names is not None else (
                    list(clip_paths) if cfg.clips_dir is not None else list(subtitles.index))
            else:
                names = cfg.names if cfg.names is not None else list(clip_paths)
            plan = _Plan(modality, str(model), out_root, _folder_base(cfg, modality), cfg, sorted(set(names)))
            plan.check_resume()
            plans.append(plan)
    bases = [p.base for p in plans]
    if len(set(bases)) < len(bases):
        raise ExtractError(f"two modalities would write to the same feature folder ({bases}). Fix: give "
                           "them different video_folder / audio_folder / text_folder names.")
    results = []
    for plan in plans:
        task = tasks[plan.modality](cfg, clip_paths, subtitles, device, dtype)
        results.append(_run(plan, task, cfg))
    return ExtractSummary(out_root, results, [p.report_path for p in plans], cfg.num_workers,
                          scan.note() if scan else "")


def clips_to_extract(clips_dir: Path) -> ClipScan:
    """The clips of ``clips_dir`` (:func:`mer_lib.data.scan_clips`), refusing a name with two files:
    features of the wrong one would pass unnoticed into every table."""
    scan = scan_clips(clips_dir)
    if scan.duplicates:
        twice = "; ".join(f"'{name}' exists twice ({', '.join(p.name for p in paths)})"
                          for name, paths in scan.duplicates.items())
        raise ExtractError(f"{clips_dir}: clip {twice}. Fix: keep one file per clip name.")
    if not scan.clips:
        raise ExtractError(f"{clips_dir}: no video files ({', '.join(VIDEO_SUFFIXES)})"
                           + (f"; {scan.note()}" if scan.unusable else "") + ". Fix: pass the folder that "
                           "holds the clips.")
    return scan


# --- one modality: plan (folders, what is done), task (decode + encode), run loop ------------------

def _folder_base(cfg: ExtractConfig, modality: str) -> str:
    base = getattr(cfg, f"{modality}_folder") or model_basename(getattr(cfg, f"{modality}_model"))
    for level in LEVELS:  # "my-clip-UTT" given as a folder name means "my-clip"
        base = base.removesuffix(f"-{level}")
    return base


def _recipe(cfg: ExtractConfig, modality: str) -> dict[str, Any]:
    """Settings that change the numbers: a folder must not mix features made with different ones."""
    if modality == "video":
        return {"fps": cfg.fps, "max_seconds": cfg.max_seconds, "face_detector": cfg.face_detector,
                "face_size": cfg.face_size}
    if modality == "audio":
        return {"max_seconds": cfg.max_seconds}
    return {"text_language": cfg.text_language, "text_pooling": cfg.text_pooling,
            "max_text_tokens": cfg.max_text_tokens}


@dataclass
class _Plan:
    modality: str
    model: str
    out_root: Path
    base: str
    cfg: ExtractConfig
    names: list[str]

    def __post_init__(self):
        features = self.out_root / "features"
        self.folders = {level: features / f"{self.base}-{level}" for level in self.cfg.levels}
        self.report_path = self.out_root / REPORTS_DIR / f"{self.base}.json"
        # the model by its basename: the same checkpoint may sit at another path on another machine
        self.recipe = {"model": model_basename(self.model), **_recipe(self.cfg, self.modality)}

    def outputs(self, name: str) -> dict[str, Path]:
        return {level: folder / f"{name}.npy" for level, folder in self.folders.items()}

    def is_done(self, name: str) -> bool:
        return all(p.exists() for p in self.outputs(name).values())

    def check_resume(self) -> None:
        """Refuse to add to a folder whose existing files were made with other settings."""
        if not self.report_path.exists():
            return
        old = _read_report(self.report_path).get("recipe")
        has_files = any(f.is_dir() and any(f.glob("*.npy")) for f in self.folders.values())
        if old and has_files and old != self.recipe:
            changed = ", ".join(f"{k}: {old.get(k)!r} then, {v!r} now"
                                for k, v in self.recipe.items() if old.get(k) != v)
            folders = ", ".join(str(f) for f in self.folders.values())
            raise ExtractError(
                f"{self.report_path}: the features in {folders} were made with other settings ({changed}); "
                f"adding to them would mix two recipes. Fix: pass {self.modality}_folder='<new name>', or "
                f"delete those folders and the report to start over, or go back to the old settings.")


@dataclass
class _Task:
    """How one modality turns a clip name into encoder input, and a batch of inputs into features."""
    load: Callable[[], Any]  # -> encoder; called only when some clip needs extracting
    prepare: Callable[[str], tuple[Any, int, dict]]  # name -> (input, batch units, report details)
    encode: Callable[[Any, list[Any]], list[tuple[np.ndarray, np.ndarray]]]  # (encoder, inputs) -> features
    batch_units: int  # flush a batch once this many units (frames, clips, subtitles) are pending
    workers: int  # background threads for `prepare` (0: inline)


def _video_task(cfg, clip_paths, subtitles, device, dtype) -> _Task:
    cropper = FaceCropper(FaceCropConfig(detector=cfg.face_detector, out_size=cfg.face_size))

    def prepare(name):
        video = read_video_frames(_clip_path(clip_paths, name, cfg), fps=cfg.fps,
                                  max_seconds=cfg.max_seconds, max_side=cfg.max_frame_side)
        crops, found = zip(*(cropper(frame) for frame in video.frames))
        details = {"frames": len(crops), "frames_with_face": int(sum(found)),
                   "face_frames": "".join("1" if f else "0" for f in found),  # per sampled frame
                   "frame_times": [round(float(t), 3) for t in video.times]}
        return list(crops), len(crops), details

    def encode(encoder: ImageEncoder, clips):
        images = [img for crops in clips for img in crops]
        step = cfg.video_batch_size
        embeddings = np.concatenate([encoder.embed_images(images[i:i + step])
                                     for i in range(0, len(images), step)])  # (sum T, D)
        bounds = np.cumsum([0] + [len(c) for c in clips])
        return [(embeddings[a:b], embeddings[a:b].mean(axis=0)) for a, b in pairwise(bounds)]

    return _Task(lambda: ImageEncoder(cfg.video_model, device, dtype), prepare, encode,
                 cfg.video_batch_size, cfg.num_workers)


def _audio_task(cfg, clip_paths, subtitles, device, dtype) -> _Task:
    def prepare(name):
        wave = read_audio(_clip_path(clip_paths, name, cfg), max_seconds=cfg.max_seconds)
        return wave, 1, {"audio_ms": round(wave.size / 16)}

    return _Task(lambda: AudioEncoder(cfg.audio_model, device, dtype), prepare,
                 lambda encoder, waves: encoder.encode(waves), cfg.audio_batch_size, cfg.num_workers)


def _text_task(cfg, clip_paths, subtitles, device, dtype) -> _Task:
    def prepare(name):
        if name not in subtitles.index:
            raise ClipError(cfg.subtitle_file, f"no subtitle row for clip '{name}'. Fix: add the row "
                                               f"'{name},<chinese>,<english>' (empty text is allowed).")
        text = str(subtitles.at[name, cfg.text_language])
        return text, 1, {"chars": len(text), "empty_subtitles": int(not text.strip())}

    return _Task(lambda: TextEncoder(cfg.text_model, device, dtype, pooling=cfg.text_pooling,
                                     max_tokens=cfg.max_text_tokens),
                 prepare, lambda encoder, texts: encoder.encode(texts), cfg.text_batch_size, 0)


def _clip_path(clip_paths: dict[str, Path], name: str, cfg: ExtractConfig) -> Path:
    if name not in clip_paths:
        raise ClipError(Path(cfg.clips_dir) / name, f"no clip named '{name}' in {cfg.clips_dir}. Fix: add "
                                                    "the clip or remove the name from `names`.")
    return clip_paths[name]


def _run(plan: _Plan, task: _Task, cfg: ExtractConfig) -> ModalityResult:
    start = time.perf_counter()
    result = ModalityResult(plan.modality, plan.model, [f.name for f in plan.folders.values()])
    todo = [n for n in plan.names if not plan.is_done(n)]
    result.skipped = len(plan.names) - len(todo)
    if not todo:  # nothing to do
        result.seconds = time.perf_counter() - start
        return result
    report = _Report(plan)
    encoder = None  # loaded on the first clip that decodes: a re-run over only broken clips loads nothing
    bar = progress(total=len(todo), desc=f"{plan.modality}: {plan.base}", disable=not cfg.progress)

    def fail(name: str, error: BaseException) -> None:
        message = str(error) if isinstance(error, ClipError) else f"{type(error).__name__}: {error}"
        result.failed[name] = message
        report.entries[name] = {"status": "failed", "error": result.failed[name]}
        bar.update(1)

    def flush(pending: list[tuple[str, Any, int, dict]]) -> None:
        nonlocal encoder
        if encoder is None:
            encoder = task.load()
        outcomes = _encode_isolating_failures(task, encoder, pending)
        for (name, _, _, details), outcome in zip(pending, outcomes):
            if isinstance(outcome, BaseException):
                fail(name, outcome)
                continue
            frames, utterance = outcome
            if not (np.isfinite(frames).all() and np.isfinite(utterance).all()):
                fail(name, ValueError("the encoder returned NaN/inf (float16 overflow?). Fix: re-run with "
                                      "half=False."))
                continue
            for level, path in plan.outputs(name).items():
                io.save_npy(path, (utterance if level == "UTT" else frames).astype(np.float32))
            for key, value in details.items():
                if isinstance(value, int):
                    result.counts[key] = result.counts.get(key, 0) + value
            report.entries[name] = {"status": "done", "dim": int(utterance.shape[0]),
                                    "length": int(frames.shape[0]), **details}
            result.done += 1
            bar.update(1)
        pending.clear()
        report.checkpoint()

    pending: list[tuple[str, Any, int, dict]] = []
    try:
        for name, prepared in _prefetch(todo, task.prepare, task.workers):
            if isinstance(prepared, BaseException):
                fail(name, prepared)
                continue
            pending.append((name, *prepared))
            if sum(units for _, _, units, _ in pending) >= task.batch_units:
                flush(pending)
        if pending:
            flush(pending)
    finally:
        bar.close()
        report.save()
        encoder = None  # free the GPU before the next modality's model
        _empty_cuda_cache()
    result.seconds = time.perf_counter() - start
    return result


def _encode_isolating_failures(task: _Task, encoder, pending) -> list[Any]:
    """Encode a batch; if it fails, encode its clips one by one so one bad clip fails alone."""
    inputs = [payload for _, payload, _, _ in pending]
    try:
        return task.encode(encoder, inputs)
    except Exception as exc:  # noqa: BLE001 - reported per clip, never swallowed
        if len(inputs) == 1:
            return [exc]
    _empty_cuda_cache()  # a batch that ran out of GPU memory may fit clip by clip
    outcomes = []
    for payload in inputs:
        try:
            outcomes.append(task.encode(encoder, [payload])[0])
        except Exception as exc:  # noqa: BLE001
            outcomes.append(exc)
    return outcomes


def _prefetch(names: Iterable[str], prepare: Callable[[str], Any], workers: int) -> Iterator[tuple[str, Any]]:
    """``(name, prepare(name) or the exception it raised)`` in order, with up to 2 x workers clips
    decoded ahead in threads (PyAV and OpenCV release the GIL while they work)."""
    def call(name):
        try:
            return prepare(name)
        except Exception as exc:  # noqa: BLE001 - handed back and reported per clip
            return exc

    if workers <= 0:
        for name in names:
            yield name, call(name)
        return
    names = iter(names)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mer-extract") as pool:
        queue = deque((n, pool.submit(call, n)) for n in islice(names, 2 * workers))
        while queue:
            name, future = queue.popleft()
            following = next(names, None)
            if following is not None:
                queue.append((following, pool.submit(call, following)))
            yield name, future.result()


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- the per-folder report ------------------------------------------------------------------------

def _read_report(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class _Report:
    """``extract-reports/<folder>.json``: the recipe and one entry per clip, kept across runs."""

    def __init__(self, plan: _Plan):
        self.plan = plan
        old = _read_report(plan.report_path)
        self.entries: dict[str, dict] = old.get("clips", {}) if old.get("recipe") == plan.recipe else {}
        self.last_save = time.monotonic()

    def checkpoint(self) -> None:
        if time.monotonic() - self.last_save >= REPORT_SAVE_INTERVAL:
            self.save()

    def save(self) -> None:
        plan = self.plan
        doc = {"modality": plan.modality, "model": plan.model, "recipe": plan.recipe,
               "folders": [str(f) for f in plan.folders.values()],
               "settings": {k: v for k, v in asdict(plan.cfg).items() if k in _REPORTED_SETTINGS},
               "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "counts": {s: sum(e.get("status") == s for e in self.entries.values())
                          for s in ("done", "failed")},
               "clips": dict(sorted(self.entries.items()))}
        io.write_json(plan.report_path, doc, indent=1)
        self.last_save = time.monotonic()


_REPORTED_SETTINGS = {f.name for f in fields(ExtractConfig)} - {"names", "progress"}
