"""Feature extraction: a folder of clips plus a subtitle CSV -> features in the MER layout.

Decoding with PyAV (:mod:`.decode`), face crops with OpenCV (:mod:`.faces`), the MER toolkit's
encoders through ``transformers`` (:mod:`.encoders`: CLIP ViT-L/14, chinese-hubert-large,
bloom-7b1, or a sentence encoder), and the resumable, reported run (:mod:`.pipeline`).
``extract_features`` is what a notebook calls; ``python -m mer_lib.extract`` calls it too.
"""
import importlib

# Exports are imported on first use (PEP 562), so `mer_lib.extract.decode` alone (the inspector's
# frame and audio reader) does not pull in torch and transformers.
_EXPORTS = {"ClipError": "decode", "ModelLoadError": "encoders", "ExtractConfig": "pipeline",
            "ExtractError": "pipeline", "ExtractSummary": "pipeline", "ModalityResult": "pipeline",
            "extract_features": "pipeline"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
