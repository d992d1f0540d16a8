"""A real subprocess generating priors is killed with SIGKILL mid-way and restarted: nothing is
lost and nothing is double-counted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from mer_lib.priors import RetryPolicy, generate_for_dataset, load_priors, make_backend, read_records
from tests.support.datasets import small_dataset
from tests.support.fakeserver import FakeLLMServer
from tests.support.media import write_clips

N_CLIPS, CONCURRENCY = 40, 4
CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
from tests.support.datasets import small_dataset
from mer_lib.priors import RetryPolicy, generate_for_dataset, make_backend
spec = json.loads(open({spec!r}).read())
ds = small_dataset(spec["names"], spec["labels"])
backend = make_backend("openai", model="qwen2.5-omni-7b", base_url=spec["base_url"], timeout_s=5.0,
                       send_audio=False)
generate_for_dataset(ds, backend, spec["prior_file"], clips_dir=spec["clips"], concurrency={concurrency},
                     retry=RetryPolicy(base_delay_s=0.001, max_delay_s=0.01), show_progress=False)
print("finished")
"""


def ok_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b'"status":"ok"')
    except FileNotFoundError:
        return 0


def test_sigkill_mid_run_then_restart_loses_nothing_and_counts_nothing_twice(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-kill-test-key-000000000")
    names = [f"sample_{i:04d}" for i in range(N_CLIPS)]
    labels = ["happy", "sad", "angry", "neutral"] * (N_CLIPS // 4)
    clips = write_clips(tmp_path / "clips", names)
    prior_file = tmp_path / "priors.jsonl"
    with FakeLLMServer() as server:
        server.default = ("ok_after", 0.05)  # each answer takes 50 ms: the run lasts ~0.5 s
        spec = {"names": names, "labels": labels, "base_url": server.base + "/v1",
                "prior_file": str(prior_file), "clips": str(clips)}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        code = CHILD.format(root=str(Path(__file__).resolve().parents[1]), spec=str(tmp_path / "spec.json"),
                            concurrency=CONCURRENCY)
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env={**os.environ, "MER_LIB_PROGRESS": "off"})
        deadline = time.monotonic() + 60
        while ok_lines(prior_file) < 10 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        _, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"the child ended on its own first: {err.decode()[-2000:]}"

        server.wait_idle()  # the killed child's calls in flight are still being answered
        before = list(read_records(prior_file))
        done_before = {r["name"] for r in before if r["status"] == "ok"}
        answered_before = server.counts["ok_answers"]
        assert 10 <= len(done_before) < N_CLIPS  # killed mid-way
        # at most the calls in flight were lost: answered by the server but never stored
        assert answered_before - len(done_before) <= CONCURRENCY

        # simulate a kill that also cut the last line in half (the store must cope)
        with open(prior_file, "ab") as f:
            f.write(b'{"key":"abc","name":"sample_0039","status":"ok","prior":{"na')
        assert len(load_priors(prior_file)) == len(done_before)

        backend = make_backend("openai", model="qwen2.5-omni-7b", base_url=server.base + "/v1",
                               timeout_s=5.0, send_audio=False)
        summary = generate_for_dataset(small_dataset(names, labels), backend, prior_file, clips_dir=clips,
                                       concurrency=CONCURRENCY, show_progress=False,
                                       retry=RetryPolicy(base_delay_s=0.001, max_delay_s=0.01))
        assert summary["skipped"] == len(done_before)
        assert summary["done"] == N_CLIPS - len(done_before)
        assert summary["calls"] == server.counts["ok_answers"] - answered_before  # one call per missing clip

    records = list(read_records(prior_file))
    per_name = Counter(r["name"] for r in records if r["status"] == "ok")
    assert set(per_name) == set(names) and set(per_name.values()) == {1}  # each clip exactly once
    priors = load_priors(prior_file)
    assert len(priors) == N_CLIPS
    assert {n: p.emotion for n, p in priors.items()} == dict(zip(names, labels))
