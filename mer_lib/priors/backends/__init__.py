"""Prior back-ends behind one interface (:class:`~.base.Backend`), built by :func:`make_backend`."""
from __future__ import annotations

from .base import (
    Backend,
    BackendAnswer,
    CallError,
    ClipRequest,
    PermanentError,
    TransientError,
    classify_exception,
)
from .simulated import PAPER_GEMINI_FLASH_CLASS_ACCURACY, SimulatedBackend

BACKEND_KINDS = ("simulated", "gemini", "openai", "offline", "replay")


def make_backend(kind: str, **options) -> Backend:
    """A back-end by name, with its options (all plain literals, so papermill can pass them).

    - ``"simulated"``: ``dataset=`` generated demo data (reads its ``perception.npz``, never a
      label) or ``shown={name: class}`` (planted clips that plainly show that class); ``seed``,
      ``accuracy``, ``error_sharing``, ``r_informativeness``, ``modality_weights``, ``concentration``.
    - ``"gemini"``: ``model="gemini-2.0-flash"``, ``timeout_s``, ``temperature``,
      ``inline_max_bytes``, ``file_active_timeout_s``, ``base_url`` (tests); key from
      GEMINI_API_KEY / GOOGLE_API_KEY.
    - ``"openai"``: ``model=`` (required), ``base_url=`` (e.g. ``"http://localhost:8000/v1"`` for
      vLLM), ``send_audio``, ``timeout_s``, ``temperature``; key from OPENAI_API_KEY.
    - ``"offline"``: ``openface_dir=`` (optional), ``au_presence_rate``, ``arousal_threshold``.
    - ``"replay"``: ``path=`` a prior .jsonl of ours or a MERR-style .json.

    Keys are never options: they come from the environment only.
    """
    for forbidden in ("api_key", "key", "token"):
        if forbidden in options:
            raise ValueError(f"make_backend('{kind}'): never pass a key as an argument (papermill would "
                             "record it in the notebook). Fix: export it as an environment variable "
                             "(GEMINI_API_KEY / GOOGLE_API_KEY / OPENAI_API_KEY).")
    if kind == "simulated":
        dataset = options.pop("dataset", None)
        shown = options.pop("shown", None)
        if (dataset is None) == (shown is None):
            raise ValueError("make_backend('simulated') needs exactly one of dataset= (generated demo data) "
                             "or shown={name: class} (planted clips).")
        return SimulatedBackend.from_dataset(dataset, **options) if dataset is not None else \
            SimulatedBackend(shown, **options)
    if kind == "gemini":
        from .gemini import GeminiBackend
        return GeminiBackend(**options)
    if kind == "openai":
        from .openai_compat import OpenAICompatBackend
        return OpenAICompatBackend(**options)
    if kind == "offline":
        from .offline import OfflineCuesBackend
        return OfflineCuesBackend(**options)
    if kind == "replay":
        from .replay import ReplayBackend
        return ReplayBackend(**options)
    raise ValueError(f"unknown prior back-end '{kind}'; choose one of {list(BACKEND_KINDS)}")


def backend_from_parameters(kind: str, *, dataset, seed: int = 0, model: str = "", base_url: str = "",
                            replay_path: str = "", simulation: dict | None = None) -> Backend:
    """The back-end notebook 01 names, from its flat parameters (empty strings mean "not given"):
    each kind takes the options it needs and ignores the rest; ``simulation``: the simulated
    back-end's knobs (``accuracy``, ``error_sharing``, ``r_informativeness``)."""
    options = {
        "simulated": dict(dataset=dataset, seed=seed, **(simulation or {})),
        "gemini": dict(model=model or "gemini-2.0-flash"),
        "openai": dict(model=model, base_url=base_url or None),
        "offline": {},
        "replay": dict(path=replay_path),
    }
    if kind not in options:
        raise ValueError(f"unknown prior back-end '{kind}'; choose one of {list(BACKEND_KINDS)}")
    return make_backend(kind, **options[kind])


__all__ = ["BACKEND_KINDS", "PAPER_GEMINI_FLASH_CLASS_ACCURACY", "Backend", "BackendAnswer", "CallError",
           "ClipRequest", "PermanentError", "SimulatedBackend", "TransientError", "backend_from_parameters",
           "classify_exception", "make_backend"]
