"""Gemini and OpenAI-compatible back-ends against a fake server on 127.0.0.1, through the real
``google-genai`` and ``openai`` clients: valid answers, malformed and truncated JSON, 429 storms,
slow answers, a file that stays PROCESSING, and no key in anything a run writes."""
from __future__ import annotations

import base64
import json

import pytest

from mer_lib.config import AUDIO_SAMPLE_RATE
from mer_lib.priors import RetryPolicy, generate_for_dataset, load_priors, make_backend, read_records
from mer_lib.priors.keys import MissingAPIKey
from tests.support.datasets import small_dataset
from tests.support.fakeserver import FakeLLMServer
from tests.support.media import write_clips

FAST = RetryPolicy(max_attempts=6, max_malformed_retries=2, base_delay_s=0.001, max_delay_s=0.01)
KEY = "sk-PLANTED-fake-key-0123456789abcdef"
NAMES = ["sample_a", "sample_b", "sample_c"]
LABELS = ["happy", "sad", "angry"]


@pytest.fixture
def server():
    with FakeLLMServer() as s:
        yield s


@pytest.fixture
def clips(tmp_path):
    return write_clips(tmp_path / "clips", NAMES)


@pytest.fixture(autouse=True)
def planted_key(monkeypatch):
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def b64decode_any(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (the SDK sends URL-safe)."""
    return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))


def gemini(server, **options):
    options.setdefault("timeout_s", 2.0)
    return make_backend("gemini", model="gemini-2.0-flash", base_url=server.base, **options)


def openai_backend(server, **options):
    options.setdefault("timeout_s", 2.0)
    return make_backend("openai", model="qwen2.5-omni-7b", base_url=server.base + "/v1", **options)


def run(ds, backend, tmp_path, clips, **kw):
    kw.setdefault("retry", FAST)
    return generate_for_dataset(ds, backend, tmp_path / "priors.jsonl", clips_dir=clips, show_progress=False, **kw)


@pytest.mark.parametrize("make", [gemini, openai_backend], ids=["gemini", "openai"])
def test_valid_answers_become_priors_with_tokens_and_cost(make, server, clips, tmp_path):
    ds = small_dataset(NAMES, LABELS)
    summary = run(ds, make(server), tmp_path, clips, concurrency=2)
    assert (summary["done"], summary["failed"], summary["calls"]) == (3, 0, 3)
    assert (summary["input_tokens"], summary["output_tokens"]) == (300, 120)
    priors = load_priors(tmp_path / "priors.jsonl", classes=ds.classes)
    # the fake answers with the class named in each subtitle: the prompt carried the right subtitle
    assert {n: p.emotion for n, p in priors.items()} == dict(zip(NAMES, LABELS))
    assert all(p.input_tokens == 100 and p.output_tokens == 40 for p in priors.values())
    assert abs(priors["sample_a"].w_audio - 0.5) < 1e-9
    if make is gemini:
        assert summary["estimated_cost_usd"] == pytest.approx(300 / 1e6 * 0.10 + 120 / 1e6 * 0.40)
    # a second run asks nothing
    again = run(ds, make(server), tmp_path, clips)
    assert (again["skipped"], again["done"], again["calls"]) == (3, 0, 0)
    assert server.counts["generate"] == 3


def test_gemini_request_carries_inline_video_schema_and_temperature_zero(server, clips, tmp_path):
    ds = small_dataset(NAMES[:1], LABELS[:1])
    run(ds, gemini(server), tmp_path, clips)
    body = server.bodies[0]
    parts = body["contents"][0]["parts"]
    inline = parts[0]["inlineData"]
    assert b64decode_any(inline["data"]) == (clips / "sample_a.mp4").read_bytes()
    config = body["generationConfig"]
    assert config["temperature"] == 0.0 and config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["properties"]["emotion"]["enum"] == list(ds.classes)
    assert set(config["responseSchema"]["required"]) >= {"w_visual", "w_audio", "w_text", "visual_aus"}
    assert server.counts["uploads"] == 0


def test_gemini_large_clip_goes_through_files_api_and_waits_for_active(server, clips, tmp_path):
    server.file_polls_until_active = 3  # PROCESSING twice, then ACTIVE
    ds = small_dataset(NAMES[:1], LABELS[:1])
    summary = run(ds, gemini(server, inline_max_bytes=10, file_poll_interval_s=0.001), tmp_path, clips)
    assert summary["done"] == 1
    assert server.counts["uploads"] == 1 and server.counts["file_gets"] == 3 and server.counts["deletes"] == 1
    part = server.bodies[0]["contents"][0]["parts"][0]
    assert part["fileData"]["file_uri"] == server.base + "/v1beta/files/f1"  # the uploaded file, by URI


def test_gemini_file_stuck_in_processing_is_a_recorded_failure_not_a_hang(server, clips, tmp_path):
    server.file_polls_until_active = None  # never ACTIVE
    ds = small_dataset(NAMES[:1], LABELS[:1])
    backend = gemini(server, inline_max_bytes=10, file_poll_interval_s=0.001, file_active_timeout_s=0.05)
    summary = run(ds, backend, tmp_path, clips)
    assert (summary["done"], summary["failed"]) == (0, 1)
    [record] = list(read_records(tmp_path / "priors.jsonl"))
    assert record["status"] == "failed" and "PROCESSING" in record["error"] and record["prior"] is None
    assert server.counts["generate"] == 0  # never asked about a file that was not ready
    # next run (file now processes) asks again and succeeds
    server.file_polls_until_active = 1
    summary = run(ds, gemini(server, inline_max_bytes=10, file_poll_interval_s=0.001), tmp_path, clips)
    assert summary["done"] == 1 and len(load_priors(tmp_path / "priors.jsonl")) == 1


@pytest.mark.parametrize("make", [gemini, openai_backend], ids=["gemini", "openai"])
def test_malformed_and_truncated_answers_are_retried_then_recorded_with_raw_text(make, server, clips, tmp_path):
    ds = small_dataset(NAMES[:2], LABELS[:2])
    # clip a: malformed then truncated then valid -> success on the 3rd call;
    # clip b (asked after a, concurrency 1): truncated three times -> failure with the raw text
    server.script.extend(["malformed", "truncated", "ok", "truncated", "truncated", "truncated"])
    summary = run(ds, make(server), tmp_path, clips, concurrency=1)
    assert (summary["done"], summary["failed"], summary["calls"]) == (1, 1, 6)
    assert summary["input_tokens"] == 600  # every attempt was paid for, and counted
    records = {r["name"]: r for r in read_records(tmp_path / "priors.jsonl")}
    assert records["sample_a"]["status"] == "ok" and records["sample_a"]["attempts"] == 3
    failed = records["sample_b"]
    assert failed["status"] == "failed" and failed["error_kind"] == "malformed" and failed["prior"] is None
    assert "not valid JSON" in failed["error"] and failed["raw"].startswith('{"visual_aus"')
    assert "MAX_TOKENS" in failed["error"] or "length" in failed["error"]
    assert set(load_priors(tmp_path / "priors.jsonl")) == {"sample_a"}
    # the failure is not cached: the next run asks about sample_b only
    summary = run(ds, make(server), tmp_path, clips)
    assert (summary["skipped"], summary["done"], summary["calls"]) == (1, 1, 1)


@pytest.mark.parametrize("make", [gemini, openai_backend], ids=["gemini", "openai"])
def test_429_storm_is_survived_with_backoff_and_every_call_counted(make, server, clips, tmp_path):
    ds = small_dataset(NAMES, LABELS)
    server.script.extend(["429"] * 7 + ["500"])
    # 9 attempts per clip: even if one clip drew all 8 errors it would still get through
    summary = run(ds, make(server), tmp_path, clips, concurrency=3,
                  retry=RetryPolicy(max_attempts=9, base_delay_s=0.001, max_delay_s=0.01))
    assert (summary["done"], summary["failed"]) == (3, 0)
    assert summary["calls"] == 3 + 8 == server.counts["generate"]
    assert summary["input_tokens"] == 300  # error answers bill nothing
    assert len(list(read_records(tmp_path / "priors.jsonl"))) == 3


def test_a_storm_longer_than_the_retry_budget_fails_the_clip_and_the_next_run_recovers(server, clips, tmp_path):
    ds = small_dataset(NAMES[:1], LABELS[:1])
    server.script.extend(["429"] * 3)
    summary = run(ds, openai_backend(server), tmp_path, clips, retry=RetryPolicy(
        max_attempts=3, base_delay_s=0.001, max_delay_s=0.01))
    assert (summary["done"], summary["failed"], summary["calls"]) == (0, 1, 3)
    assert summary["failure_kinds"] == {"transient": 1}
    [record] = list(read_records(tmp_path / "priors.jsonl"))
    assert "HTTP 429" in record["error"] and "gave up after 3 attempts" in record["error"]
    summary = run(ds, openai_backend(server), tmp_path, clips)
    assert summary["done"] == 1


@pytest.mark.parametrize("make", [gemini, openai_backend], ids=["gemini", "openai"])
def test_slow_answers_time_out_and_are_retried(make, server, clips, tmp_path):
    ds = small_dataset(NAMES[:1], LABELS[:1])
    server.script.append(("slow", 0.6))  # longer than the per-call timeout below
    summary = run(ds, make(server, timeout_s=0.2), tmp_path, clips)
    assert (summary["done"], summary["calls"]) == (1, 2)
    assert server.counts["generate"] == 2


def test_openai_request_sends_video_data_url_and_separate_audio_track(server, clips, tmp_path):
    ds = small_dataset(NAMES[:1], LABELS[:1])
    run(ds, openai_backend(server), tmp_path, clips)
    body = server.bodies[0]
    content = body["messages"][0]["content"]
    kinds = [part["type"] for part in content]
    assert kinds == ["video_url", "input_audio", "text"]
    url = content[0]["video_url"]["url"]
    assert url.startswith("data:video/mp4;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == (clips / "sample_a.mp4").read_bytes()
    wav = base64.b64decode(content[1]["input_audio"]["data"])
    assert wav[:4] == b"RIFF" and int.from_bytes(wav[24:28], "little") == AUDIO_SAMPLE_RATE  # 16 kHz WAV
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and schema["properties"]["emotion"]["enum"] == list(ds.classes)
    assert body["temperature"] == 0.0


def test_clips_without_media_are_recorded_failures_without_a_call(server, tmp_path):
    ds = small_dataset(NAMES, LABELS)
    summary = run(ds, gemini(server), tmp_path, clips=tmp_path / "nowhere")
    assert (summary["done"], summary["failed"], summary["calls"]) == (0, 3, 0)
    assert summary["failure_kinds"] == {"no_media": 3}
    records = list(read_records(tmp_path / "priors.jsonl"))
    assert all(r["status"] == "failed" and "clips_dir" in r["error"] for r in records)
    assert server.counts["generate"] == 0
    # a clip whose file is a dangling link: its failure says so, and so does the summary
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "sample_a.mp4").symlink_to(tmp_path / "moved-away.mp4")
    summary = run(ds, gemini(server), tmp_path, clips=tmp_path / "clips")
    assert "sample_a.mp4: a symbolic link" in summary["unusable_clips"]
    latest = {r["name"]: r for r in read_records(tmp_path / "priors.jsonl")}
    assert "sample_a.mp4 is a symbolic link to" in latest["sample_a"]["error"]
    assert "symbolic link" not in latest["sample_b"]["error"] and server.counts["generate"] == 0


def test_keys_come_from_the_environment_only(monkeypatch, server):
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(MissingAPIKey, match="GEMINI_API_KEY"):
        make_backend("gemini", base_url=server.base)
    with pytest.raises(ValueError, match="never pass a key"):
        make_backend("gemini", api_key="x")
    assert KEY not in repr(openai_backend(server))


def test_no_key_in_any_file_the_run_writes(server, clips, tmp_path, capsys, caplog):
    """Plant a key, make the server echo it in an error (as real servers do), scan every output."""
    from mer_lib import io

    ds = small_dataset(NAMES, LABELS)
    server.script.extend(["400", "malformed", "malformed", "malformed", "429"])
    summaries = [run(ds, gemini(server), tmp_path, clips, concurrency=1),
                 run(ds, openai_backend(server), tmp_path, clips, concurrency=1)]
    io.write_json(tmp_path / "summary.json", summaries)
    assert summaries[0]["failure_kinds"] == {"permanent": 1, "malformed": 1}  # a 400 is not retried
    assert summaries[0]["calls"] == 1 + 3 + 2 and summaries[1]["done"] == 3
    errors = [r["error"] for r in read_records(tmp_path / "priors.jsonl") if r["error"]]
    assert any("[redacted]" in e for e in errors)  # the echoed key was there, and scrubbed
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 5
    for path in written:
        assert KEY.encode() not in path.read_bytes(), f"the key leaked into {path}"
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err + caplog.text + json.dumps(summaries)
