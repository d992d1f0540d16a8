"""A fake Gemini + OpenAI-compatible server on 127.0.0.1, driven through the real SDKs.

The server speaks just enough of both wire protocols for ``google-genai`` (generateContent,
resumable Files API upload, files.get/delete) and ``openai`` (chat.completions). What it answers is
scripted per request: ``server.script`` is a queue of behaviours consumed in order, then
``server.default`` applies. Behaviours: ``"ok"``, ``"malformed"``, ``"truncated"``, ``"empty"``,
``"429"``, ``"500"``, ``"400"`` (echoes the caller's key in its message, as some servers do),
``("slow", seconds)`` and ``("ok_after", seconds)`` (a slow but valid answer).
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mer_lib.config import MER_CLASSES


def valid_answer(emotion: str = "happy") -> dict:
    return {
        "visual_aus": [{"au": 6, "intensity": 2.5, "evidence": "cheeks raised"},
                       {"au": 12, "intensity": 3.0, "evidence": "lip corners pulled up"}],
        "visual_description": "A broad smile.",
        "audio": {"pitch_level": "high", "pitch_variation": "wide", "loudness": "loud",
                  "speech_rate": "fast", "voice_quality": "bright", "description": "laughter"},
        "text_semantics": "The words celebrate good news.",
        "w_visual": 0.3, "w_audio": 0.5, "w_text": 0.2,
        "emotion": emotion,
        "rationale": "Smile and laughter.",
    }


def emotion_in_prompt(prompt: str) -> str:
    """The first MER class named in the prompt's subtitle block (the fake's way to vary answers)."""
    block = prompt.split("<<<SUBTITLE", 1)[-1]
    for word in re.findall(r"[a-z]+", block.lower()):
        if word in MER_CLASSES:
            return word
    return "neutral"


class FakeLLMServer:
    def __init__(self):
        self.script: deque = deque()
        self.default = "ok"
        self.file_polls_until_active: int | None = 1  # None: files stay PROCESSING forever
        self.lock = threading.Lock()
        self.counts = {"generate": 0, "ok_answers": 0, "uploads": 0, "file_gets": 0, "deletes": 0}
        self.bodies: list[dict] = []  # JSON bodies of generate / chat requests
        self._file_polls: dict[str, int] = {}
        self.active = 0  # requests being handled now
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                outer._handle(self, "GET")

            def do_POST(self):
                outer._handle(self, "POST")

            def do_DELETE(self):
                outer._handle(self, "DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    # ------------------------------------------------------------------ control
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def __enter__(self) -> FakeLLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_behaviour(self):
        with self.lock:
            self.counts["generate"] += 1
            return self.script.popleft() if self.script else self.default

    # ------------------------------------------------------------------ protocol
    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Block until no request is being handled (e.g. those a killed client left behind)."""
        deadline = time.monotonic() + timeout_s
        while self.active and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not self.active, "the fake server is still busy"

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        with self.lock:
            self.active += 1
        try:
            self._route(h, method)
        finally:
            with self.lock:
                self.active -= 1

    def _route(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path.split("?")[0]
        try:
            if method == "POST" and path.startswith("/upload/") and \
                    h.headers.get("x-goog-upload-command") == "start":
                with self.lock:
                    self.counts["uploads"] += 1
                    file_id = f"f{self.counts['uploads']}"
                return self._send(h, 200, {}, {"x-goog-upload-url": f"{self.base}/upload-session/{file_id}"})
            if method == "POST" and path.startswith("/upload-session/"):
                file_id = path.rsplit("/", 1)[1]
                return self._send(h, 200, {"file": self._file(file_id, "PROCESSING")},
                                  {"x-goog-upload-status": "final"})
            if path.startswith("/v1beta/files/"):
                file_id = path.rsplit("/", 1)[1]
                if method == "DELETE":
                    with self.lock:
                        self.counts["deletes"] += 1
                    return self._send(h, 200, {})
                with self.lock:
                    self.counts["file_gets"] += 1
                    polls = self._file_polls[file_id] = self._file_polls.get(file_id, 0) + 1
                active = self.file_polls_until_active is not None and polls >= self.file_polls_until_active
                return self._send(h, 200, self._file(file_id, "ACTIVE" if active else "PROCESSING"))
            if method == "POST" and ":generateContent" in path:
                request = json.loads(body)
                prompt = next(p["text"] for p in request["contents"][0]["parts"] if "text" in p)
                return self._answer(h, request, prompt, gemini=True)
            if method == "POST" and path.endswith("/chat/completions"):
                request = json.loads(body)
                content = request["messages"][-1]["content"]
                prompt = next(p["text"] for p in content if p.get("type") == "text")
                return self._answer(h, request, prompt, gemini=False)
            return self._send(h, 404, {"error": {"code": 404, "message": f"no route {method} {path}"}})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left

    def _file(self, file_id: str, state: str) -> dict:
        return {"name": f"files/{file_id}", "uri": f"{self.base}/v1beta/files/{file_id}",
                "mimeType": "video/mp4", "state": state}

    def _answer(self, h, request: dict, prompt: str, gemini: bool) -> None:
        with self.lock:
            self.bodies.append(request)
        behaviour = self.next_behaviour()
        if isinstance(behaviour, tuple):
            kind, seconds = behaviour
            time.sleep(seconds)
            behaviour = "ok" if kind == "ok_after" else "slow-done"
        if behaviour in ("429", "500", "400"):
            status = int(behaviour)
            key = h.headers.get("x-goog-api-key") or h.headers.get("authorization", "")
            message = {"429": "Resource has been exhausted (e.g. check quota).",
                       "500": "Internal error encountered.",
                       "400": f"API key not valid. Please pass a valid API key. Got: {key}"}[behaviour]
            return self._send(h, status, {"error": {"code": status, "message": message,
                                                    "status": "RESOURCE_EXHAUSTED" if status == 429 else "ERR"}})
        answer = json.dumps(valid_answer(emotion_in_prompt(prompt)))
        text = {"ok": answer, "slow-done": answer, "malformed": "Sure! Here is the prior: {emotion: happy",
                "truncated": answer[: len(answer) // 2], "empty": ""}[behaviour]
        if behaviour in ("ok", "slow-done"):
            with self.lock:
                self.counts["ok_answers"] += 1
        if gemini:
            payload = {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                                       "finishReason": "MAX_TOKENS" if behaviour == "truncated" else "STOP"}],
                       "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 40,
                                         "totalTokenCount": 140}}
        else:
            payload = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                       "model": request.get("model", "m"),
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "length" if behaviour == "truncated" else "stop"}],
                       "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140}}
        return self._send(h, 200, payload)

    @staticmethod
    def _send(h, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
