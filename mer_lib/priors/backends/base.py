"""The one interface every prior back-end implements, and how call errors are classified.

A back-end turns one :class:`ClipRequest` into one :class:`BackendAnswer` (a model's JSON text,
or a ready dict from a local back-end). It does not retry, validate or store: the runner
(:mod:`mer_lib.priors.run`) does that the same way for all of them. A back-end raises
:class:`TransientError` for what a retry may fix (HTTP 408/429/5xx, timeouts, dropped
connections) and :class:`PermanentError` for what it will not (no media file, a bad request,
a refused key); :class:`~mer_lib.priors.schema.MalformedAnswer` for an answer that is not JSON.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class ClipRequest:
    name: str  # sample name
    classes: tuple[str, ...]  # the dataset's class names: the emotions a prior may give
    subtitle_english: str  # "" when there is none
    subtitle_chinese: str
    prompt: str  # the full text prompt (mer_lib.priors.prompt.build_prompt)
    clip_path: Path | None  # the clip's video file, None when the dataset has none


@dataclass
class BackendAnswer:
    answer: str | dict  # a model's JSON text, or the answer dict of a local back-end
    input_tokens: int | None = None  # tokens billed for this call (None: not reported)
    output_tokens: int | None = None
    model: str | None = None  # the model that made the answer, when not the back-end's own (replay)
    finish_reason: str | None = None  # why generation stopped ("length"/"MAX_TOKENS": truncated)


class CallError(Exception):
    """A call that did not produce an answer."""
    retryable: bool = False
    retry_after_s: float | None = None


class TransientError(CallError):
    """Worth retrying after a back-off: rate limits, server errors, timeouts, lost connections."""
    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(CallError):
    """Not worth retrying in this run (it is still asked again in the next run)."""
    retryable = False


class Backend:
    """Base class of prior back-ends."""
    kind: ClassVar[str] = ""  # the name make_backend knows it by
    needs_media: ClassVar[bool] = False  # True: a clip without a video file fails without a call
    inline: ClassVar[bool] = False  # True: cheap local work, run in the calling thread
    model: str = ""  # model id recorded in every prior
    price_per_million: tuple[float, float] | None = None  # USD per 1M (input, output) tokens

    def settings(self) -> dict[str, Any]:
        """Generation settings that change the answers (part of every store key). Never a key."""
        return {}

    def fingerprint(self, request: ClipRequest) -> str | None:
        """Extra input that changes this clip's answer beyond the prompt and the media (e.g. the
        simulated back-end's truth); part of the store key."""
        return None

    def generate(self, request: ClipRequest) -> BackendAnswer:
        raise NotImplementedError

    def close(self) -> None:
        """Release clients and temporary files."""

    def __repr__(self) -> str:  # never show attributes: a client object may hold a key
        return f"<{type(self).__name__} model={self.model!r}>"


_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_TRANSIENT_NAMES = ("Timeout", "ConnectError", "ConnectionError", "RemoteProtocolError",
                    "ReadError", "WriteError", "PoolTimeout", "APIConnectionError", "APITimeoutError",
                    "ServerDisconnected", "IncompleteRead")


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK exception (openai: ``status_code``; google-genai: ``code``)."""
    for attr in ("status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def retry_after_of(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def classify_exception(exc: BaseException, what: str) -> CallError:
    """Map an SDK or network exception to :class:`TransientError` / :class:`PermanentError`."""
    if isinstance(exc, CallError):
        return exc
    status = status_code_of(exc)
    message = f"{what}: {type(exc).__name__}: {str(exc)[:500]}"
    if status is not None:
        if status in _TRANSIENT_STATUS or status >= 500:
            return TransientError(f"HTTP {status} from {message}", retry_after_of(exc))
        return PermanentError(f"HTTP {status} from {message}")
    names = [cls.__name__ for cls in type(exc).__mro__]
    if isinstance(exc, (TimeoutError, ConnectionError)) or any(
            key in name for name in names for key in _TRANSIENT_NAMES):
        return TransientError(message)
    return PermanentError(message)
