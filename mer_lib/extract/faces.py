"""Face crops for the visual encoder: OpenCV's bundled Haar cascade, the whole frame where none is found.

The MER toolkit crops faces with OpenFace (a C++ build with its own models) before CLIP. We use the
frontal-face Haar cascade (Viola & Jones, CVPR 2001) that ships inside the opencv-python wheels
(``cv2.data.haarcascades``): nothing to download or build, and on the 16 MER2023 sample clips it
finds a face in most sampled frames (film close-ups are mostly frontal). It misses profiles and
small faces; those frames fall back to the whole frame, and the report records which frames got a
face. OpenCV 5 dropped the cascade detector, hence ``opencv-python-headless<5`` in the media extra.

Crops are square (the detected box grown by ``margin`` on each side, clamped to the frame) and
resized to ``out_size``; whole frames are resized to ``out_size`` on the short side. CLIP's image
processor then resizes to its own input size and centre-crops, exactly as on OpenFace crops.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

FACE_DETECTORS = ("haar", "none")  # "none": whole frames, no detection (for scenes without faces)


@dataclass(frozen=True)
class FaceCropConfig:
    detector: str = "haar"  # one of FACE_DETECTORS
    # on the 161 frames of the MER2023 samples at 2 fps: 480/5 finds a face in 116, 320/4 in 114 at
    # ~35% less time; the cascade's cost is what bounds a CPU's extraction rate (bench_extract.py)
    detect_side: int = 320  # frames are shrunk to this longer side for detection (speed; faces stay big)
    scale_factor: float = 1.1  # cascade pyramid step; larger is faster and misses more faces
    min_neighbors: int = 4  # overlapping detections needed; higher means fewer false faces
    min_face: float = 0.1  # smallest face, as a fraction of the frame's short side
    margin: float = 0.2  # crop grows the face box by this fraction of its size on each side
    out_size: int = 224  # side of the square face crop / short side of a whole frame, in pixels


class FaceCropper:
    """Call on an RGB frame; returns ``(image, found)`` where ``found`` says a face was cropped."""

    def __init__(self, config: FaceCropConfig = FaceCropConfig()):
        if config.detector not in FACE_DETECTORS:
            raise ValueError(f"face_detector={config.detector!r}; choose one of {FACE_DETECTORS}.")
        self.config = config
        self._per_thread = threading.local()  # a CascadeClassifier must not be shared between threads
        if config.detector == "haar":
            self._per_thread.cascade = load_haar_cascade()  # fail now, not in a worker thread

    @property
    def cascade(self) -> cv2.CascadeClassifier:
        if not hasattr(self._per_thread, "cascade"):
            self._per_thread.cascade = load_haar_cascade()
        return self._per_thread.cascade

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, bool]:
        box = self.detect(frame) if self.config.detector == "haar" else None
        if box is None:
            return resize_short_side(frame, self.config.out_size), False
        return crop_square(frame, box, self.config.margin, self.config.out_size), True

    def detect(self, frame: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face as ``(x, y, w, h)`` in ``frame``'s pixels, or None."""
        cfg = self.config
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, cfg.detect_side / max(gray.shape))
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)  # film scenes are often dark; the cascade wants contrast
        side = max(8, int(cfg.min_face * min(gray.shape)))
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=cfg.scale_factor,
                                              minNeighbors=cfg.min_neighbors, minSize=(side, side))
        if len(boxes) == 0:
            return None
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])  # the main speaker is usually the biggest face
        return tuple(round(v / scale) for v in (x, y, w, h))


def load_haar_cascade() -> cv2.CascadeClassifier:
    fix = ("Fix: pip install 'opencv-python-headless>=4.9,<5' (OpenCV 5 removed the cascade detector), "
           "or pass face_detector='none' to use whole frames.")
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise RuntimeError(f"OpenCV {cv2.__version__} has no bundled Haar face detector. {fix}")
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"{path}: OpenCV {cv2.__version__} could not load its face cascade. {fix}")
    return cascade


def crop_square(frame: np.ndarray, box: tuple[int, int, int, int], margin: float,
                out_size: int) -> np.ndarray:
    """Square crop around ``box`` grown by ``margin`` per side, shifted to stay inside the frame."""
    height, width = frame.shape[:2]
    x, y, w, h = box
    side = round(max(w, h) * (1 + 2 * margin))
    side = min(side, height, width)
    cx, cy = x + w / 2, y + h / 2
    left = round(min(max(cx - side / 2, 0), width - side))
    top = round(min(max(cy - side / 2, 0), height - side))
    crop = frame[top:top + side, left:left + side]
    interpolation = cv2.INTER_AREA if side > out_size else cv2.INTER_CUBIC
    return cv2.resize(crop, (out_size, out_size), interpolation=interpolation)


def resize_short_side(frame: np.ndarray, out_size: int) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = out_size / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(frame, size, interpolation=interpolation)
