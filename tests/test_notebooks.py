"""The notebook sequence: conventions, strict parameters, and headless runs with papermill."""
from __future__ import annotations

import ast
import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest
import yaml

from mer_lib import notebook
from mer_lib.config import NOTEBOOKS_DIR, PROJ_ROOT
from mer_lib.reproduce import SEQUENCE
from tests.support.datasets import write_layout

SHARED = ("profile", "data_root", "label_file", "audio_feature", "video_feature", "text_feature", "train_split",
          "test_split", "prior_file", "device", "run_dir", "seed", "seeds")
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_carry_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_holds_only_typed_literals_with_a_comment(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    source = cells[0].source
    for node in ast.parse(source).body:
        assert isinstance(node, ast.AnnAssign), f"{path.name}: only `name: type = literal` in the parameters cell"
        ast.literal_eval(node.value)  # nothing derived: a literal
        line = source.splitlines()[node.lineno - 1]
        assert "  # " in line, f"{path.name}: parameter '{node.target.id}' needs a comment"
    declared = papermill.inspect_notebook(str(path))
    assert set(SHARED) <= set(declared), f"{path.name} lacks {set(SHARED) - set(declared)}"


def _parameter_sections(path: Path) -> dict[str, str]:
    """The parameters cell cut at its ``# --- <section> ---`` lines: {section header: its lines}."""
    nb = nbformat.read(path, as_version=4)
    source = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    sections, current = {}, None
    for line in source.splitlines():
        if line.startswith("# ---"):
            current = line.split("(")[0].strip(" -#")  # "stage 1", "dataset: left empty, ..." -> name
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


SHARED_SECTIONS = {"dataset: left empty, each is taken from `profile`": [p.stem for p in NOTEBOOKS], "run": [p.stem for p in NOTEBOOKS],
                   "stage 1": ["02_pretraining", "03_pseudo_labeling", "04_prior_tuning", "05_ablations", "06_tsne_plots"],
                   "stage 2": ["04_prior_tuning", "05_ablations"]}


@pytest.mark.parametrize("section", SHARED_SECTIONS)
def test_shared_parameter_blocks_are_identical_across_notebooks(section):
    """A block that several notebooks declare must not drift: 04 and 05 must train the same stage 2,
    and a notebook reuses another's stage 1 only when every stage-1 setting matches."""
    blocks = {p.stem: _parameter_sections(p) for p in NOTEBOOKS}
    holders = [nb for nb, sections in blocks.items() if section in sections]
    assert holders == SHARED_SECTIONS[section], f"'{section}' is declared by {holders}"
    reference = blocks[holders[0]][section]
    for nb in holders[1:]:
        assert blocks[nb][section] == reference, f"{nb}'s '{section}' block differs from {holders[0]}'s"


def test_check_parameters_rejects_unknown_and_mistyped_names():
    ns = {"__annotations__": {"seed": int, "tau": float, "name": str}, "seed": 1, "tau": 1, "name": "x"}
    assert notebook.check_parameters(ns) == {"seed": 1, "tau": 1.0, "name": "x"}
    with pytest.raises(notebook.ParameterError, match=r"unknown parameter\(s\) 'sed' \(did you mean 'seed'\?\)"):
        notebook.check_parameters({**ns, "sed": 3})
    with pytest.raises(notebook.ParameterError, match=r"'seed' must be int, got '3'"):
        notebook.check_parameters({**ns, "seed": "3"})
    with pytest.raises(notebook.ParameterError, match=r"'seed' must be int, got True"):
        notebook.check_parameters({**ns, "seed": True})
    # modules, functions and IPython's own names are not parameters
    notebook.check_parameters({**ns, "np": np, "f": len, "In": [], "Out": {}, "_": 1})


def test_start_writes_the_resolved_values_back_into_the_notebook(tmp_path):
    declared = {"profile": str, "data_root": str, "train_split": str, "test_split": str, "run_dir": str,
                "seed": int, "seeds": int}
    ns = {"__annotations__": declared, "profile": "demo", "data_root": "", "train_split": "", "test_split": "",
          "run_dir": str(tmp_path / "run"), "seed": 0, "seeds": 2}
    ctx = notebook.start("xx_test", ns)
    assert ns["data_root"] == ctx["data_root"] == str(PROJ_ROOT / "data" / "demo")
    assert ns["train_split"] == "train_corpus" and ns["test_split"] == "test_corpus"
    assert ctx.seeds == [0, 1]


def _reproduce(*args, cwd=PROJ_ROOT):
    return subprocess.run([sys.executable, "-m", "mer_lib.reproduce", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=1500)


def test_unknown_config_parameter_fails_before_anything_runs(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"notebooks": {"02_pretraining": {"epoch": 3}}}))
    out = _reproduce("--profile", "demo", "--config", config, "--run-dir", tmp_path / "run", "--only", "02")
    assert out.returncode == 2
    assert "notebooks.02_pretraining: 'epoch' (did you mean 'epochs'?) is not a parameter" in out.stderr
    assert not (tmp_path / "run" / "notebooks").exists()


# --- end to end ---------------------------------------------------------------------------------------

def _fast_config(tmp_path: Path, data_root: Path, **dataset) -> dict:
    return {
        "dataset": {"data_root": str(data_root), "prior_file": str(tmp_path / "priors.jsonl"), **dataset},
        "seeds": 2,
        "notebooks": {
            "all": {"epochs": 3, "batch_size": 32, "hidden_dim": 16, "latent_dim": 8, "tune_epochs": 2,
                    "tune_batch_size": 32, "heads": 2, "cold_start_epochs": 1, "pseudo_threshold": 0.5},
            "03_pseudo_labeling": {"extension_size": 40, "extension_threshold": 0.5},
            "06_tsne_plots": {"tsne_samples": 150, "perplexity": 10.0},
        },
    }


def _numbers_in_csv(path: Path) -> list[float]:
    values = []
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for v in row.values():
                try:
                    values.append(float(v))
                except (TypeError, ValueError):
                    pass
    return values


@pytest.mark.slow
def test_demo_profile_end_to_end_on_a_reduced_size(tmp_path):
    config = _fast_config(tmp_path, tmp_path / "demo")
    config["demo_data"] = {"scale": "tiny", "seed": 0}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "run"
    out = _reproduce("--profile", "demo", "--config", tmp_path / "c.yaml", "--run-dir", run_dir, "--no-publish")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok" and [n["name"] for n in manifest["notebooks"]] == list(SEQUENCE)
    assert manifest["published"] is False  # scratch data: figures/ is left alone
    assert manifest["git"]["commit"] and manifest["versions"]["torch"] and manifest["device"]["type"]
    assert all(n["seconds"] > 0 for n in manifest["notebooks"])
    figures = run_dir / "figures"
    for stem in ("table1", "table2", "table3"):
        for ext in ("csv", "md", "tex"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
        numbers = _numbers_in_csv(figures / f"{stem}.csv")
        assert numbers and all(np.isfinite(numbers)), stem
        assert manifest["artifacts"][f"figures/{stem}.csv"] in SEQUENCE
    for stem in ("fig4_tsne", "fig1_au_map", "fig_confusion", "fig_per_class"):
        assert (figures / f"{stem}.pdf").read_bytes().startswith(b"%PDF"), stem
        assert (figures / f"{stem}.png").stat().st_size > 1000, stem
    for nb in SEQUENCE:
        executed = nbformat.read(run_dir / "notebooks" / f"{nb}.ipynb", as_version=4)
        assert executed.metadata["papermill"]["parameters"]["run_dir"] == str(run_dir)
        assert (run_dir / "results" / f"{nb}.json").exists()
    pretraining = json.loads((run_dir / "results" / "02_pretraining.json").read_text())
    assert 0 < pretraining["test"]["accuracy"] <= 100 and 0 < pretraining["test"]["weighted_f1"] <= 100
    ours = json.loads((run_dir / "results" / "04_prior_tuning.json").read_text())["methods"]["ours"]
    assert ours["test"]["n_seeds"] == 2 and ours["coverage"]["test"] > 0
    assert (run_dir / "results" / "predictions.csv").exists()


@pytest.mark.slow
def test_binary_labels_two_modalities_without_pool_or_priors_run_and_skip_what_they_cannot_do(tmp_path):
    rng = np.random.default_rng(0)
    labels = lambda n, off: {f"{off}{i}": ("positive" if rng.random() < 0.5 else "negative") for i in range(n)}
    write_layout(tmp_path / "data", {"train_corpus": labels(80, "a"), "test_corpus": labels(30, "b")},
                 dims={"audio": 6, "video": 5, "text": 4}, modalities=("audio", "text"))
    # audio and text only: the empty video feature leaves the modality out
    config = _fast_config(tmp_path, tmp_path / "data", audio_feature="toy-audio-UTT", video_feature="",
                          text_feature="toy-text-UTT", train_split="train_corpus", test_split="test_corpus")
    config["notebooks"]["01_prior_generation"] = {"backend": ""}  # no priors, none generated
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    # a config alone, no profile; scratch data, so figures/ is left alone
    out = _reproduce("--config", tmp_path / "c.yaml", "--run-dir", tmp_path / "run", "--no-publish")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = {nb: json.loads((tmp_path / "run" / "results" / f"{nb}.json").read_text()) for nb in SEQUENCE}
    assert results["02_pretraining"]["classes"] == ["negative", "positive"]
    assert results["03_pseudo_labeling"]["skipped"] == "no unlabelled pool and no external labelled set"
    assert "no priors" in results["04_prior_tuning"]["skipped"]
    table1 = (tmp_path / "run" / "figures" / "table1.csv").read_text()
    assert "negative" in table1 and "Attention" in table1 and "Ours" not in table1
    table2 = (tmp_path / "run" / "figures" / "table2.md").read_text()
    assert "| AT " in table2 and "| A " in table2 and "| T " in table2 and "| V " not in table2
    assert "V: not in 05_ablations results; row left out." in table2
    assert json.loads((tmp_path / "run" / "results" / "06_tsne_plots.json").read_text())["separation"]


@pytest.mark.slow
def test_a_failing_notebook_stops_the_run_with_its_name_and_error(tmp_path):
    config = _fast_config(tmp_path, tmp_path / "demo", test_split="no_such_split")
    config["demo_data"] = {"scale": "tiny", "seed": 0}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    out = _reproduce("--profile", "demo", "--config", tmp_path / "c.yaml", "--run-dir", tmp_path / "run",
                     "--only", "02", "03")
    assert out.returncode == 1
    assert "FAILED: 02_pretraining, cell" in out.stderr and "DataError" in out.stderr and "no_such_split" in out.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and [n["name"] for n in manifest["notebooks"]] == ["02_pretraining"]


def test_the_stage1_config_takes_the_searched_settings_when_a_search_ran(tmp_path):
    from mer_lib.notebook import SEARCH_FILE, Context, ParameterError

    params = {"hidden_dim": 64, "latent_dim": 64, "dropout": 0.3, "attention_softmax": False, "architecture": "projected",
              "projector": "shared", "epochs": 5, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5, "tau": 0.1,
              "lambda_inter": 0.2, "lambda_intra": 0.2, "bdcl_symmetric": False, "bdcl_include_self": True,
              "standardize": True, "selection": "average", "folds": 1, "cold_start_epochs": 2,
              "pseudo_threshold": 0.0, "pseudo_class_cap": 0, "search_draws": 4, "device": "cpu"}
    ctx = Context("02_pretraining", params, tmp_path)
    with pytest.raises(ParameterError, match="02_pretraining runs the search"):
        ctx.stage1_config()
    assert ctx.stage1_config(searched=False).model.hidden_dim == 64
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / SEARCH_FILE).write_text(json.dumps({"chosen": {"hidden_dim": 256, "dropout": 0.5, "lr": 1e-4}}))
    cfg = ctx.stage1_config(bdcl=False)
    assert (cfg.model.hidden_dim, cfg.model.latent_dim, cfg.model.dropout, cfg.lr, cfg.bdcl) == (256, 256, 0.5, 1e-4, False)
