"""The runner's integrity: a strict config, one-line config errors, positive seeds, one run per run
folder, a manifest that says how a run ended, and figures/ published only by a full run.

The notebooks do not run here: papermill's execute_notebook is replaced by a fake that writes what a
notebook writes (an executed copy and an artifact), so each test takes seconds.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import papermill
import pytest
import yaml
from papermill.exceptions import PapermillExecutionError

from mer_lib import notebook, reproduce
from mer_lib.config import PROJ_ROOT

from .support.datasets import write_layout

PROG = "python -m mer_lib.reproduce: error: "


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A config on a toy dataset, a fake papermill, and a stand-in for the project's figures/."""
    features = write_layout(tmp_path / "data", {"train_corpus": {"a1": "happy", "a2": "sad"},
                                                "test_corpus": {"b1": "happy"}})
    config = {"dataset": {"data_root": str(tmp_path / "data"), "audio_feature": features["audio"],
                          "video_feature": features["video"], "text_feature": features["text"],
                          "train_split": "train_corpus", "test_split": "test_corpus"}, "seeds": 1}
    calls, during = [], {}

    def execute_notebook(input_path, output_path, parameters, **_):
        name = Path(input_path).stem
        calls.append((name, parameters))
        figures = Path(parameters["run_dir"]) / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        (figures / f"table-{name}.csv").write_text("a,b\n1,2\n")
        Path(output_path).write_text("{}")
        if name in during:
            during.pop(name)()  # once: what happens while this notebook runs

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    monkeypatch.setattr(reproduce, "ensure_kernel", lambda: "python3")
    monkeypatch.setattr(reproduce, "FIGURES_DIR", tmp_path / "project-figures")
    for var in ("PYTHONPATH", "MER_LIB_PROGRESS"):  # the runner sets them for its kernels
        monkeypatch.setenv(var, os.environ.get(var, ""))

    def main(*args, **changes):
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({**config, **changes}))
        return reproduce.main(["--config", str(path), "--run-dir", str(tmp_path / "run"), *map(str, args)])

    return SimpleNamespace(main=main, calls=calls, during=during, run_dir=tmp_path / "run",
                           figures=tmp_path / "project-figures", config=config)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(PROG) and "\n" not in err and "Traceback" not in err, err
    return err


# --- 2. a strict config ---------------------------------------------------------------------------------

def test_mistyped_keys_under_all_are_errors_that_suggest_the_name(fake, capsys):
    assert fake.main("--only", "02", notebooks={"all": {"epoch": 3, "hiden_dim": 8}}) == 2
    err = _one_line_error(capsys)
    assert "notebooks.all: 'epoch' (did you mean 'epochs'?), 'hiden_dim' (did you mean 'hidden_dim'?)" in err
    assert fake.calls == [] and not fake.run_dir.exists()


def test_keys_of_notebooks_outside_only_are_checked_too(fake, capsys):
    assert fake.main("--only", "02", notebooks={"06_tsne_plots": {"tsne_sample": 10}}) == 2
    assert "notebooks.06_tsne_plots: 'tsne_sample' (did you mean 'tsne_samples'?)" in _one_line_error(capsys)
    assert fake.main("--only", "02", notebooks={"06_tsne_plot": {}}) == 2
    assert "unknown notebook(s) '06_tsne_plot' (did you mean '06_tsne_plots'?)" in _one_line_error(capsys)
    assert fake.main("--only", "02", notebooks={"all": {"epochs": 2.5}}) == 2
    assert "notebooks.all.epochs: must be int" in _one_line_error(capsys)
    assert fake.calls == []


def test_unknown_demo_data_keys_and_sections_are_errors(fake, capsys):
    assert fake.main("--only", "02", demo_data={"scael": "tiny"}) == 2
    assert "unknown key of 'demo_data' 'scael' (did you mean 'scale'?)" in _one_line_error(capsys)
    assert fake.main("--only", "02", notebook={"all": {}}) == 2
    assert "unknown section 'notebook' (did you mean 'notebooks'?)" in _one_line_error(capsys)
    assert fake.calls == []


# --- 9. seeds and config errors -------------------------------------------------------------------------

@pytest.mark.parametrize("seeds", ["0", "-3", "two"])
def test_seeds_on_the_command_line_must_be_positive(fake, capsys, seeds):
    with pytest.raises(SystemExit) as exit_:
        fake.main("--only", "02", "--seeds", seeds)
    assert exit_.value.code == 2 and "--seeds: must be a whole number >= 1" in capsys.readouterr().err
    assert fake.calls == []


@pytest.mark.parametrize("seeds", [2.7, 0, True, "3"])
def test_seeds_in_a_config_must_be_a_positive_integer(fake, capsys, seeds):
    assert fake.main("--only", "02", seeds=seeds) == 2
    assert f"seeds must be an integer >= 1, not {seeds!r}" in _one_line_error(capsys)
    assert fake.calls == []


def test_the_notebook_refuses_zero_seeds(tmp_path):
    declared = {"profile": str, "run_dir": str, "seed": int, "seeds": int}
    values = {"profile": "", "run_dir": str(tmp_path), "seed": 0}
    assert notebook.start("nb", {"__annotations__": declared, **values, "seeds": 2}).seeds == [0, 1]
    for seeds in (0, -3):
        with pytest.raises(notebook.ParameterError, match=f"'seeds' is the number of seeds.*got {seeds}"):
            notebook.start("nb", {"__annotations__": declared, **values, "seeds": seeds})


def test_config_mistakes_are_one_line_messages_with_exit_status_2(fake, capsys, tmp_path):
    fake.run_dir.write_text("a file, not a folder")
    assert fake.main("--only", "02") == 2
    assert "this is a file, not a folder. Fix:" in _one_line_error(capsys)
    fake.run_dir.unlink()
    dataset = {**fake.config["dataset"], "data_root": ["data", "demo"]}
    assert fake.main("--only", "02", dataset=dataset) == 2
    assert "dataset.data_root: must be str" in _one_line_error(capsys)
    assert reproduce.main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: config file not found. Fix: check the path" in _one_line_error(capsys)
    (tmp_path / "broken.yaml").write_text("dataset: {data_root: [unclosed\n")
    assert reproduce.main(["--config", str(tmp_path / "broken.yaml")]) == 2
    assert "broken.yaml: not valid YAML at line" in _one_line_error(capsys)
    assert fake.calls == []


def test_a_config_error_prints_no_traceback_from_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mer_lib.reproduce", "--config", str(tmp_path / "nope.yaml")],
                         cwd=PROJ_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [(f"{PROG}{tmp_path / 'nope.yaml'}: config file not found. Fix: "
                                                f"check the path (a relative one is taken from {PROJ_ROOT}).")]


# --- 5. the run folder ----------------------------------------------------------------------------------

def test_a_second_run_on_the_same_folder_is_refused(fake, capsys):
    second = []
    fake.during["02_pretraining"] = lambda: second.append(fake.main("--only", "02"))
    assert fake.main("--only", "02") == 0
    assert second == [2]
    assert f"another run is using this run folder (pid {os.getpid()}). Fix:" in capsys.readouterr().err
    assert [c[0] for c in fake.calls] == ["02_pretraining"]  # the second one trained nothing
    assert json.loads((fake.run_dir / "manifest.json").read_text())["status"] == "ok"
    assert fake.main("--only", "02") == 0  # the lock went with the first run


_KILLABLE_RUN = """
import sys, time
import papermill
from mer_lib import reproduce

def execute_notebook(input_path, output_path, parameters, **_):
    print("notebook started", flush=True)
    time.sleep(120)

papermill.execute_notebook = execute_notebook
reproduce.ensure_kernel = lambda: "python3"
sys.exit(reproduce.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_records_killed_in_its_manifest(fake, tmp_path, signum):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(fake.config))
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE_RUN, "--config", str(tmp_path / "config.yaml"),
                             "--run-dir", str(fake.run_dir), "--only", "02"], cwd=PROJ_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "notebook started" in line:
                break
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    manifest = json.loads((fake.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "killed" and manifest["killed_by"] == signal.Signals(signum).name
    assert manifest["notebooks"][0]["status"] == "killed" and manifest["finished"]
    assert f"KILLED: 02_pretraining, stopped by {signal.Signals(signum).name}" in err


def test_a_stale_running_manifest_is_marked_killed_on_the_next_start(fake, capsys):
    fake.run_dir.mkdir()
    stale = {"status": "running", "started": "2026-01-02T03:04:05", "notebooks": []}
    (fake.run_dir / "manifest.json").write_text(json.dumps(stale))  # what a SIGKILL leaves
    assert fake.main("--only", "02") == 0
    out = capsys.readouterr().out
    kept = fake.run_dir / "manifests" / "manifest-2026-01-02T030405.json"
    assert "the previous run in this folder (started 2026-01-02T03:04:05) left its manifest 'running'" in out
    assert f"marked 'killed' and kept as {kept}" in out
    assert json.loads(kept.read_text())["status"] == "killed"
    assert json.loads((fake.run_dir / "manifest.json").read_text())["status"] == "ok"


def test_failures_are_recorded_in_the_manifest(fake, capsys):
    def cell_error():
        raise PapermillExecutionError(3, 7, "ds.indices(split)", "DataError", "no split 'x'", [])
    fake.during["02_pretraining"] = cell_error
    assert fake.main("--only", "02") == 1
    manifest = json.loads((fake.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["failed_notebook"] == "02_pretraining"
    assert "FAILED: 02_pretraining, cell 7: DataError: no split 'x'" in capsys.readouterr().err

    def crash():
        raise RuntimeError("kernel died")
    fake.during["02_pretraining"] = crash
    with pytest.raises(RuntimeError, match="kernel died"):  # a bug keeps its traceback...
        fake.main("--only", "02")
    manifest = json.loads((fake.run_dir / "manifest.json").read_text())  # ...and the manifest says so
    assert manifest["status"] == "failed" and manifest["error"] == "RuntimeError: kernel died"


def test_only_a_full_run_or_publish_updates_the_project_figures(fake, capsys):
    assert fake.main("--only", "02") == 0
    assert not fake.figures.exists()
    out = capsys.readouterr().out
    assert f"artifacts in {fake.run_dir / 'figures'} only" in out and "pass --publish" in out
    assert json.loads((fake.run_dir / "manifest.json").read_text())["published"] is False

    assert fake.main("--only", "02", "--publish") == 0
    assert sorted(p.name for p in fake.figures.iterdir()) == ["table-02_pretraining.csv"]

    assert fake.main() == 0  # the whole sequence publishes by itself
    published = sorted(p.name for p in fake.figures.iterdir())
    assert published == sorted(f"table-{nb}.csv" for nb in reproduce.SEQUENCE)
    assert fake.main("--no-publish") == 0
