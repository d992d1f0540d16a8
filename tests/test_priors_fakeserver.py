"""The fake Gemini + OpenAI-compatible server of ``tests/support/fakeserver.py``, checked through the
real SDKs before the back-end tests rely on it."""
from __future__ import annotations

import json

import pytest

from tests.support.fakeserver import FakeLLMServer


def test_fake_server_speaks_both_protocols_through_the_real_sdks(monkeypatch):
    import openai
    from google import genai
    from google.genai import types

    with FakeLLMServer() as server:
        client = genai.Client(api_key="test-key-123456", http_options=types.HttpOptions(
            base_url=server.base, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)))
        reply = client.models.generate_content(model="m", contents=["<<<SUBTITLE\n{\"english\": \"so sad\"}"])
        assert json.loads(reply.text)["emotion"] == "sad"
        assert reply.usage_metadata.prompt_token_count == 100
        oai = openai.OpenAI(api_key="k", base_url=server.base + "/v1", max_retries=0)
        server.script.append("429")
        with pytest.raises(openai.RateLimitError):
            oai.chat.completions.create(model="m", messages=[{"role": "user", "content": [
                {"type": "text", "text": "x"}]}])
        assert server.counts["generate"] == 2
