"""Feature extraction: a folder of clips plus a subtitle CSV -> features in the MER layout.

Decoding with PyAV (:mod:`.decode`), face crops with OpenCV (:mod:`.faces`), the MER toolkit's
encoders through ``transformers`` (:mod:`.encoders`: CLIP ViT-L/14, chinese-hubert-large,
bloom-7b1, or a sentence encoder), and the resumable, reported run (:mod:`.pipeline`).
``extract_features`` is what a notebook calls; ``python -m mer_lib.extract`` calls it too.
"""
from .decode import ClipError
from .encoders import ModelLoadError
from .pipeline import (
           ExtractConfig,
           ExtractError,
           ExtractSummary,
           ModalityResult,
           extract_features,
           list_clips,
)

__all__ = ["ClipError", "ExtractConfig", "ExtractError", "ExtractSummary", "ModalityResult", "ModelLoadError",
           "extract_features", "list_clips"]
