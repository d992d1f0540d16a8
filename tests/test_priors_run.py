"""The runner's retry policy and rate limiter (on a fake clock: no real waiting, no timed asserts)."""
from __future__ import annotations

import random

import pytest

from mer_lib.priors import RetryPolicy, generate_for_dataset
from mer_lib.priors import run as run_module
from mer_lib.priors.backends.base import Backend, BackendAnswer, PermanentError, TransientError
from mer_lib.priors.run import RateLimiter
from tests.support.datasets import small_dataset
from tests.support.fakeserver import valid_answer


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(run_module.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(run_module.time, "sleep", fake.sleep)
    return fake


def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0, jitter=0.5)
    rng = random.Random(0)
    for retry, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(cap * 0.5 <= d <= cap for d in delays)
        assert max(delays) - min(delays) > cap * 0.3  # spread: clients do not retry in lockstep
    assert policy.delay(1, rng, retry_after_s=7.0) == 7.0  # a server's Retry-After is honoured
    assert policy.delay(1, rng, retry_after_s=500.0) == 10.0  # within our cap


def test_rate_limiter_spaces_call_starts(clock):
    limiter = RateLimiter(per_minute=120)  # one start every 0.5 s
    starts = []
    for _ in range(5):
        limiter.wait()
        starts.append(clock.now)
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:])] == [0.5] * 4
    unlimited = RateLimiter(None)
    before = len(clock.sleeps)
    unlimited.wait()
    assert len(clock.sleeps) == before


class ScriptedBackend(Backend):
    """Raises or answers from a script, and counts calls: the runner's contract without a network."""
    kind, inline, model = "scripted", True, "scripted-1"

    def __init__(self, script):
        self.script, self.calls = list(script), 0

    def generate(self, request):
        self.calls += 1
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, Exception):
            raise step
        return BackendAnswer(answer=valid_answer("happy"), input_tokens=10, output_tokens=5)


def test_transient_errors_back_off_permanent_errors_do_not_retry(clock, tmp_path):
    ds = small_dataset(["a", "b"], ["happy", "sad"])
    backend = ScriptedBackend([TransientError("HTTP 429", retry_after_s=3.0), TransientError("HTTP 503"),
                               PermanentError("HTTP 400 bad request")])
    summary = generate_for_dataset(ds, backend, tmp_path / "p.jsonl", show_progress=False,
                                   retry=RetryPolicy(base_delay_s=1.0, max_delay_s=60.0, jitter=0.0))
    assert backend.calls == 4  # a: 429, 503, ok; b: 400 once, no retry
    assert clock.sleeps == [3.0, 2.0]  # Retry-After, then the doubled back-off
    assert (summary["done"], summary["failed"], summary["calls"]) == (1, 1, 4)
    assert summary["failure_kinds"] == {"permanent": 1}


def test_a_bug_in_a_backend_stops_the_run_but_keeps_what_was_stored(tmp_path):
    ds = small_dataset(["a", "b", "c"], ["happy", "sad", "angry"])
    backend = ScriptedBackend(["ok", RuntimeError("a bug")])
    with pytest.raises(RuntimeError, match="a bug"):
        generate_for_dataset(ds, backend, tmp_path / "p.jsonl", show_progress=False)
    from mer_lib.priors import load_priors
    assert set(load_priors(tmp_path / "p.jsonl")) == {"a"}
