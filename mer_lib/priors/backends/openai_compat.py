"""OpenAI-compatible chat servers through the ``openai`` client: vLLM serving Qwen2.5-Omni or
Qwen2.5-VL, and the like.

- The video travels as a ``video_url`` part holding a ``data:`` URL; the audio track is decoded
  with PyAV and sent separately as an ``input_audio`` WAV part, because servers may silently
  drop a video's soundtrack (vLLM ignores it unless told ``use_audio_in_video``; a VL model
  never hears it). Send ``send_audio=False`` to a server without audio input.
- The answer is constrained with ``response_format`` = the JSON schema of a prior.
- The key comes from ``OPENAI_API_KEY`` (or the variable named in ``key_variables``); a local
  server that needs none gets the placeholder vLLM expects when no variable is set.
- The client's own retries are off (``max_retries=0``): the runner retries and counts.

Docs: https://docs.vllm.ai/en/latest/features/multimodal_inputs.html and
https://platform.openai.com/docs/guides/structured-outputs
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

from ...config import AUDIO_SAMPLE_RATE  # 16 kHz: what Qwen2.5-Omni's audio encoder (Whisper-style) expects
from ..keys import api_key_from_env
from ..media import MediaError, decode_audio, mime_type, wav_bytes
from ..schema import answer_json_schema
from .base import Backend, BackendAnswer, ClipRequest, PermanentError, TransientError, classify_exception

KEY_VARIABLES = ("OPENAI_API_KEY",)


class OpenAICompatBackend(Backend):
    kind = "openai"
    needs_media = True

    def __init__(self, model: str, *, base_url: str | None = None, timeout_s: float = 120.0,
                 temperature: float = 0.0, max_tokens: int = 4096, send_video: bool = True,
                 send_audio: bool = True, strict_schema: bool = True,
                 key_variables: tuple[str, ...] = KEY_VARIABLES,
                 price_per_million: tuple[float, float] | None = None, extra_body: dict | None = None):
        import openai

        self.model = model
        self.temperature = temperature  # 0: the most reproducible answer
        self.max_tokens = max_tokens  # a prior is ~500 tokens; room for long rationales
        self.send_video = send_video  # the clip as a video_url data URL
        self.send_audio = send_audio  # the audio track as a separate input_audio part
        self.strict_schema = strict_schema  # response_format strict mode (guided decoding on vLLM)
        self.price_per_million = price_per_million  # self-hosted servers: unknown unless given
        self.extra_body = dict(extra_body or {})  # server-specific request fields (e.g. mm_processor_kwargs)
        if any(os.environ.get(v, "").strip() for v in key_variables) or base_url is None:
            key = api_key_from_env(key_variables, "The OpenAI-compatible back-end")
        else:
            key = "EMPTY"  # a local vLLM server without --api-key accepts any token
        # the key goes straight into the client; this object keeps no copy of it
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout_s, max_retries=0)

    def settings(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens,
                "send_video": self.send_video, "send_audio": self.send_audio,
                "strict_schema": self.strict_schema, "extra_body": self.extra_body}

    def content_parts(self, request: ClipRequest) -> list[dict]:
        """The user message: video, audio track, then the prompt."""
        parts = []
        path = Path(request.clip_path)
        if self.send_video:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append({"type": "video_url", "video_url": {"url": f"data:{mime_type(path)};base64,{data}"}})
        if self.send_audio:
            try:
                signal = decode_audio(path, AUDIO_SAMPLE_RATE)
            except MediaError as exc:
                raise PermanentError(str(exc)) from None
            if signal is not None and len(signal):
                wav = base64.b64encode(wav_bytes(signal, AUDIO_SAMPLE_RATE)).decode("ascii")
                parts.append({"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}})
        parts.append({"type": "text", "text": request.prompt})
        return parts

    def generate(self, request: ClipRequest) -> BackendAnswer:
        if request.clip_path is None:
            raise PermanentError(f"no clip file for '{request.name}'")
        schema = answer_json_schema(request.classes, dialect="json_schema")
        try:
            response = self._client.chat.completions.create(
                model=self.model, temperature=self.temperature, max_tokens=self.max_tokens,
                messages=[{"role": "user", "content": self.content_parts(request)}],
                response_format={"type": "json_schema", "json_schema": {
                    "name": "reasoning_prior", "schema": schema, "strict": self.strict_schema}},
                extra_body=self.extra_body or None)
        except (PermanentError, TransientError):
            raise
        except Exception as exc:
            raise classify_exception(exc, f"{self.model} for '{request.name}'") from None
        usage = response.usage
        input_tokens = getattr(usage, "prompt_tokens", None)
        output_tokens = getattr(usage, "completion_tokens", None)
        if not response.choices:  # tokens may still have been billed: keep them
            return BackendAnswer(answer="", input_tokens=input_tokens, output_tokens=output_tokens,
                                 finish_reason="no choices")
        choice = response.choices[0]
        return BackendAnswer(answer=choice.message.content or "", input_tokens=input_tokens,
                             output_tokens=output_tokens, finish_reason=choice.finish_reason)
