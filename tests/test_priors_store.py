"""The JSONL prior store: append-only, latest success wins, failures never count, a cut last line
is tolerated (and reported), a bad line is never buried, every record fits one schema, one writer
at a time, clear errors."""
from __future__ import annotations

import json

import pytest

from mer_lib.config import MER_CLASSES
from mer_lib.priors import PriorStoreError, latest_status, load_priors, read_records
from mer_lib.priors.schema import build_prior
from mer_lib.priors.store import PriorStore, cache_key
from tests.support.fakeserver import valid_answer


def record(name, status="ok", emotion="happy", key=None):
    prior = None
    if status == "ok":
        prior = build_prior(valid_answer(emotion), name=name, classes=MER_CLASSES, model="m",
                            backend="gemini", prompt_version="v").model_dump(mode="json")
    return {"key": key or f"k-{name}-{emotion}", "name": name, "status": status, "model": "m",
            "prompt_version": "v", "attempts": 1, "prior": prior,
            "error": None if status == "ok" else "HTTP 500", "raw": None}


def test_latest_success_per_name_and_failures_are_never_priors(tmp_path):
    path = tmp_path / "p.jsonl"
    with PriorStore(path) as store:
        store.append(record("a", emotion="sad"))
        store.append(record("a", emotion="happy"))  # a later success replaces the earlier one
        store.append(record("b", status="failed"))
        store.append(record("c"))
        store.append(record("c", status="failed"))  # a later failure does not erase a success
    priors = load_priors(path, classes=MER_CLASSES)
    assert set(priors) == {"a", "c"} and priors["a"].emotion == "happy"
    assert latest_status(path)["b"]["status"] == "failed"
    assert len(list(read_records(path))) == 5


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(record("a")))  # hand-written, no trailing newline
    with PriorStore(path) as store:
        store.append(record("b"))
    assert set(load_priors(path)) == {"a", "b"}


def test_a_broken_line_in_the_middle_is_a_clear_error(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(record("a")) + "\nnot json\n" + json.dumps(record("b")) + "\n")
    with pytest.raises(PriorStoreError, match=r"p\.jsonl:2: .*Fix: delete or correct that line"):
        load_priors(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prior file here.*generate_for_dataset"):
        load_priors(tmp_path / "nope.jsonl")


def test_one_writer_at_a_time(tmp_path):
    path = tmp_path / "p.jsonl"
    with PriorStore(path), pytest.raises(PriorStoreError, match="another run is writing"):
        with PriorStore(path):
            pass
    with PriorStore(path) as store:  # released when the first writer closed
        store.append(record("a"))


def test_load_filters_by_model_and_checks_classes(tmp_path):
    path = tmp_path / "p.jsonl"
    other = record("b") | {"model": "other"}
    with PriorStore(path) as store:
        store.append(record("a"))
        store.append(other)
    assert set(load_priors(path, model="m")) == {"a"}
    assert set(load_priors(path, prompt_version="nope")) == set()
    with pytest.raises(PriorStoreError, match="not valid here"):
        load_priors(path, classes=("positive", "negative"))


def test_cache_key_changes_with_every_part():
    base = dict(backend="gemini", model="m", prompt_version="v1", schema="s", settings={"t": 0},
                name="a", media_sha256="x")
    key = cache_key(**base)
    assert key == cache_key(**dict(reversed(base.items())))  # order does not matter
    for field, value in [("model", "m2"), ("prompt_version", "v2"), ("schema", "s2"),
                         ("settings", {"t": 1}), ("media_sha256", "y"), ("name", "b")]:
        assert cache_key(**(base | {field: value})) != key


# --- one rule for a line that is not a record (reader and writer agree) ------------------------------

def test_a_bad_last_line_with_newline_is_an_error_and_never_buried(tmp_path):
    path = tmp_path / "p.jsonl"
    with PriorStore(path) as store:
        store.append(record("a"))
    with open(path, "a") as f:
        f.write("edited by hand\n")  # a complete (terminated) line that is not a record
    with pytest.raises(PriorStoreError, match=r"p\.jsonl:2: line is not a prior record: not JSON.*Fix: del"):
        load_priors(path)
    before = path.read_bytes()
    with pytest.raises(PriorStoreError, match=r"p\.jsonl:2: .*appending after it would bury it.*Fix: delete"), \
            PriorStore(path) as store:
        store.append(record("b"))
    assert path.read_bytes() == before  # nothing appended after the bad line
    path.write_text(before.decode().replace("edited by hand\n", ""))  # the fix the message names
    with PriorStore(path) as store:
        store.append(record("b"))
    assert set(load_priors(path)) == {"a", "b"}


def test_a_cut_last_line_is_reported_on_read_and_cut_by_the_writer(tmp_path):
    path = tmp_path / "p.jsonl"
    with PriorStore(path) as store:
        store.append(record("a"))
    line = json.dumps(record("b"))
    with open(path, "a") as f:
        f.write(line[: len(line) // 2])  # a killed writer's tail: no newline
    with pytest.warns(UserWarning, match=r"p\.jsonl:2: the last line \(\d+ bytes, no newline\) is cut short"):
        assert set(load_priors(path)) == {"a"}
    with pytest.warns(UserWarning, match=r"p\.jsonl:2: .*cut off before appending"), \
            PriorStore(path) as store:
        store.append(record("c"))
    assert [json.loads(x)["name"] for x in path.read_text().splitlines()] == ["a", "c"]


def test_an_unterminated_last_line_that_is_json_but_no_record_is_an_error(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(record("a")) + "\n" + json.dumps({**record("b"), "name": 7}))
    with pytest.raises(PriorStoreError, match=r"p\.jsonl:2: .*field 'name': Input should be a valid string"):
        list(read_records(path))
    with pytest.raises(PriorStoreError, match=r"p\.jsonl:2: .*bury"), PriorStore(path):
        pass


@pytest.mark.parametrize(("change", "message"), [
    ({"key": 5}, r"field 'key': Input should be a valid string"),
    ({"name": 12}, r"field 'name': Input should be a valid string \(got 12\)"),
    ({"status": "done"}, r"field 'status': Input should be 'ok' or 'failed'"),
    ({"attempts": "2"}, r"field 'attempts': Input should be a valid integer"),
    ({"prior": None}, r"a record with status 'ok' carries a prior"),
    ({"media_path": "/clips/a.mp4", "media_sha256": "abc", "media_mtime_ns": 1}, r"media_sha256, media_size"),
])
def test_every_record_is_checked_against_one_schema(tmp_path, change, message):
    path = tmp_path / "p.jsonl"
    good = record("a")
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, **change}) + "\n")
    with pytest.raises(PriorStoreError, match=r"p\.jsonl:2: line is not a prior record: " + message):
        load_priors(path)


def test_a_record_without_its_key_is_named_not_a_keyerror(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({k: v for k, v in record("a").items() if k != "key"}) + "\n")
    with pytest.raises(PriorStoreError, match=r"p\.jsonl:1: .*field 'key' is missing"):
        latest_status(path)
