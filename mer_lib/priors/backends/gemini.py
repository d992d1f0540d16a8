"""Gemini through the official ``google-genai`` SDK (the paper's prior generator, Gemini-2.0-flash).

- The clip travels as inline bytes when small (``inline_max_bytes``; the API caps a whole request
  near 20 MB) and through the Files API when larger: upload, then poll until the file is ACTIVE
  (a file still PROCESSING after ``file_active_timeout_s`` fails this clip; the next run asks
  again), and delete it afterwards.
- The answer follows a JSON response schema (:func:`~mer_lib.priors.schema.answer_json_schema`),
  at temperature 0, with token usage recorded.
- The key comes from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` only.
- The SDK's own retries are switched off (one attempt): the runner retries with its own policy
  so that every attempt is counted and the back-off is the same for every back-end.

Docs: https://ai.google.dev/gemini-api/docs/video-understanding and .../structured-output
"""
from __future__ import annotations

import time
from pathlib import Path

from ..keys import api_key_from_env
from ..media import mime_type
from ..schema import answer_json_schema
from .base import Backend, BackendAnswer, ClipRequest, PermanentError, TransientError, classify_exception

# USD per 1M (input, output) tokens, Gemini API list prices for text/image/video input (audio input
# costs more) as published in 2025; an estimate only. Pass price_per_million= to override.
GEMINI_PRICES = {"gemini-2.0-flash": (0.10, 0.40), "gemini-2.5-flash": (0.30, 2.50)}
KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


class GeminiBackend(Backend):
    kind = "gemini"
    needs_media = True

    def __init__(self, model: str = "gemini-2.0-flash", *, base_url: str | None = None,
                 api_version: str = "v1beta", timeout_s: float = 120.0, temperature: float = 0.0,
                 max_output_tokens: int = 4096, inline_max_bytes: int = 15_000_000,
                 file_poll_interval_s: float = 2.0, file_active_timeout_s: float = 300.0,
                 delete_uploaded: bool = True, key_variables: tuple[str, ...] = KEY_VARIABLES,
                 price_per_million: tuple[float, float] | None = None):
        from google import genai
        from google.genai import types

        self.model = model
        self.temperature = temperature  # 0: the most reproducible answer
        self.max_output_tokens = max_output_tokens  # a prior is ~500 tokens; room for long rationales
        self.inline_max_bytes = inline_max_bytes  # larger clips go through the Files API
        self.file_poll_interval_s = file_poll_interval_s  # how often to ask whether an upload is ACTIVE
        self.file_active_timeout_s = file_active_timeout_s  # give up on an upload still PROCESSING
        self.delete_uploaded = delete_uploaded  # remove uploads after use (they expire in 48 h anyway)
        self.price_per_million = price_per_million or GEMINI_PRICES.get(model)
        self._types = types
        http_options = types.HttpOptions(
            base_url=base_url, api_version=api_version, timeout=int(timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1))  # the runner owns retries
        # the key goes straight into the client; this object keeps no copy of it
        self._client = genai.Client(api_key=api_key_from_env(key_variables, "The Gemini back-end"),
                                    http_options=http_options)

    def settings(self) -> dict:
        return {"temperature": self.temperature, "max_output_tokens": self.max_output_tokens}

    def generate(self, request: ClipRequest) -> BackendAnswer:
        if request.clip_path is None:
            raise PermanentError(f"no clip file for '{request.name}'")
        types = self._types
        uploaded = None
        try:
            path = Path(request.clip_path)
            if path.stat().st_size <= self.inline_max_bytes:
                media = types.Part.from_bytes(data=path.read_bytes(), mime_type=mime_type(path))
            else:
                uploaded = self._upload(path)
                media = types.Part.from_uri(file_uri=uploaded.uri,
                                            mime_type=uploaded.mime_type or mime_type(path))
            config = types.GenerateContentConfig(
                temperature=self.temperature, max_output_tokens=self.max_output_tokens,
                response_mime_type="application/json",
                response_schema=answer_json_schema(request.classes, dialect="gemini"))
            response = self._client.models.generate_content(
                model=self.model, contents=[media, request.prompt], config=config)
        except (PermanentError, TransientError):
            raise
        except Exception as exc:
            raise classify_exception(exc, f"Gemini ({self.model}) for '{request.name}'") from None
        finally:
            if uploaded is not None and self.delete_uploaded:
                try:
                    self._client.files.delete(name=uploaded.name)
                except Exception:  # best effort: uploads expire on their own
                    pass
        usage = response.usage_metadata
        input_tokens = getattr(usage, "prompt_token_count", None)
        output_tokens = getattr(usage, "candidates_token_count", None)
        finish = response.candidates[0].finish_reason if response.candidates else \
            getattr(response.prompt_feedback, "block_reason", None) or "no candidates"
        return BackendAnswer(answer=response.text or "", input_tokens=input_tokens,
                             output_tokens=output_tokens, finish_reason=getattr(finish, "name", str(finish)))

    def _upload(self, path: Path):
        """Upload through the Files API and wait until the file is ACTIVE."""
        file = self._client.files.upload(file=path, config={"mime_type": mime_type(path)})
        deadline = time.monotonic() + self.file_active_timeout_s
        while _state(file) == "PROCESSING":
            if time.monotonic() >= deadline:
                raise PermanentError(f"{path.name}: the uploaded file {file.name} stayed PROCESSING for "
                                     f"{self.file_active_timeout_s:g} s; giving up on it in this run "
                                     "(raise file_active_timeout_s for long clips)")
            time.sleep(self.file_poll_interval_s)
            file = self._client.files.get(name=file.name)
        if _state(file) != "ACTIVE":
            raise PermanentError(f"{path.name}: the Files API reports state {_state(file)} for "
                                 f"{file.name} ({getattr(file, 'error', None)})")
        return file


def _state(file) -> str:
    state = getattr(file, "state", None)
    return getattr(state, "name", None) or str(state or "ACTIVE")
