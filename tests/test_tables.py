"""Tables 1-3: numbers in the files equal the results JSON, LaTeX in booktabs form, skipped notebooks."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from mer_lib import tables
from mer_lib.config import MER_CLASSES
from mer_lib.metrics import aggregate_scores, classification_scores

CLASSES = list(MER_CLASSES)


def aggregate(accuracies: list[float], classes=CLASSES, n: int = 60, seed: int = 0) -> dict:
    """An AGGREGATE over one run per entry of ``accuracies`` (share of predictions left correct)."""
    rng = np.random.default_rng(seed)
    runs = []
    for acc in accuracies:
        y_true = np.arange(n) % len(classes)
        wrong = rng.random(n) > acc
        y_pred = np.where(wrong, (y_true + 1 + rng.integers(0, len(classes) - 1, n)) % len(classes), y_true)
        runs.append(classification_scores(y_true, y_pred, classes))
    return aggregate_scores(runs)


def entry(label: str, accuracies: list[float], seed: int = 0, classes=CLASSES, **extra) -> dict:
    return {"label": label, "test": aggregate(accuracies, classes, seed=seed), "runs": [], **extra}


def notebook(name: str, classes=CLASSES, **content) -> dict:
    return {"notebook": name, "parameters": {}, "seeds": [0, 1, 2], "classes": list(classes), **content}


@pytest.fixture
def results() -> dict[str, dict]:
    return {
        "01_prior_generation": notebook("01_prior_generation", methods={
            "simulated": entry("Simulated MLLM (zero-shot)", [0.5], seed=1, coverage={"test": 96.25},
                               paper_row="Gemini-2.0-flash")}),
        "02_pretraining": notebook("02_pretraining", methods={
            "bdcl": entry("+ BDCL", [0.7, 0.75, 0.8], seed=3),  # file order differs from the paper's
            "attention": entry("Attention (CE)", [0.6, 0.65, 0.7], seed=2, paper_row="Attention")}),
        "03_pseudo_labeling": notebook("03_pseudo_labeling", methods={
            "bdcl_pl": entry("+ BDCL + pseudo-labels", [0.8, 0.8, 0.85], seed=4)},
            extension={"base": entry("base", [0.6, 0.7], seed=5, added=0, size=2698),
                       "random": entry("+670 random", [0.65, 0.7], seed=6, added=670, size=3368),
                       "matched": entry("+670 matched", [0.7, 0.72], seed=7, added=670, size=3368),
                       "balanced": entry("+670 balanced", [0.75, 0.8], seed=8, added=670, size=3368),
                       "all": entry("+all", [0.7, 0.8], seed=9, added=3000, size=5698)}),
        "04_prior_tuning": notebook("04_prior_tuning", methods={
            "ours": entry("Ours (prior-guided)", [0.85, 0.9, 0.88], seed=10),
            "ours_shuffled": entry("Ours, shuffled priors", [0.6, 0.62, 0.58], seed=11)}),
        "05_ablations": notebook("05_ablations", modalities={
            key: entry(key, [0.4 + 0.1 * i, 0.45 + 0.1 * i], seed=20 + i)
            for i, key in enumerate(["A", "V", "T", "AVT", "AVT+Prior"])}),
    }


def read_csv(path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0)


def test_format_mean_std():
    assert tables.format_mean_std({"mean": 84.123, "std": 0.56, "values": [1, 2, 3]}) == "84.1 ± 0.6"
    assert tables.format_mean_std({"mean": 84.123, "std": 0.0, "values": [84.123]}) == "84.1"
    assert tables.format_mean_std({"mean": 84.0, "std": 0.0, "values": [84, 84]}) == "84.0 ± 0.0"
    assert tables.format_mean_std({"mean": None, "std": None, "values": [None]}) == "–"
    assert tables.format_mean_std(None) == "–"
    assert tables.format_mean_std({"mean": 84.15, "std": 1.25, "values": [1, 2]}, digits=2) == "84.15 ± 1.25"


def test_table1_rows_in_paper_order_and_numbers_equal_inputs(results, tmp_path):
    df = tables.table1(results)
    assert list(df.index) == ["Simulated MLLM (zero-shot)", "Attention (CE)", "+ BDCL", "+ BDCL + pseudo-labels",
                              "Ours (prior-guided)", "Ours, shuffled priors (control)"]
    shown = tables.format_table(df)
    assert list(shown.columns) == [*CLASSES, "Acc", "WF1", tables.UAR, "Avg (reported in the paper)"]

    paths = tables.write_table(df, "table1", tmp_path, caption="Zero-shot LLMs vs fusion models")
    assert [p.name for p in paths] == ["table1.csv", "table1.md", "table1.tex"]
    csv = read_csv(paths[0])
    sources = {"Attention (CE)": results["02_pretraining"]["methods"]["attention"],
               "Ours, shuffled priors (control)": results["04_prior_tuning"]["methods"]["ours_shuffled"],
               "Simulated MLLM (zero-shot)": results["01_prior_generation"]["methods"]["simulated"]}
    for row, source in sources.items():
        test = source["test"]
        assert csv.loc[row, "Acc mean"] == pytest.approx(test["accuracy"]["mean"], abs=1e-8)
        assert csv.loc[row, "Acc std"] == pytest.approx(test["accuracy"]["std"], abs=1e-8)
        assert csv.loc[row, "WF1 mean"] == pytest.approx(test["weighted_f1"]["mean"], abs=1e-8)
        assert csv.loc[row, "WF1 std"] == pytest.approx(test["weighted_f1"]["std"], abs=1e-8)
        assert csv.loc[row, "Seeds"] == test["n_seeds"]
        for c in CLASSES:
            assert csv.loc[row, f"{c} mean"] == pytest.approx(test["per_class_accuracy"][c]["mean"], abs=1e-8)
            assert csv.loc[row, f"{c} std"] == pytest.approx(test["per_class_accuracy"][c]["std"], abs=1e-8)

    # UAR, the paper's "Avg" for its LLM rows: the mean of the row's per-class cells
    for row in csv.index:
        assert csv.loc[row, f"{tables.UAR} mean"] == pytest.approx(np.mean([csv.loc[row, f"{c} mean"] for c in CLASSES]))
    # the paper's own numbers only where the row is one of the paper's methods, never in our columns
    paper = csv["Avg (reported in the paper)"]
    assert paper["Simulated MLLM (zero-shot)"] == 71.81 and paper["Attention (CE)"] == 77.53
    assert paper.drop(["Simulated MLLM (zero-shot)", "Attention (CE)"]).isna().all()
    assert 71.81 not in csv.drop(columns="Avg (reported in the paper)").to_numpy()

    md = paths[1].read_text(encoding="utf-8")
    attention = results["02_pretraining"]["methods"]["attention"]["test"]["accuracy"]
    assert tables.format_mean_std(attention) in md
    assert "over 3 seeds" in md and "single-run rows" in md  # the LLM row is one run
    assert "priors cover 96.2% of the test split" in md or "priors cover 96.3% of the test split" in md


def test_hand_written_aggregate_prints_as_given(tmp_path):
    """A results dict written by hand (no metrics code): the strings and the CSV show exactly its numbers."""
    stat = lambda m, s, n=3: {"mean": m, "std": s, "values": [m] * n}
    test = {"n_seeds": 3, "accuracy": stat(84.1, 0.6), "weighted_f1": stat(83.72, 0.41), "macro_f1": stat(80, 1),
            "per_class_accuracy": {"neutral": stat(90.0, 1.0), "angry": stat(None, None), "happy": stat(70.25, 2.5)},
            "confusion": []}
    results = {"04_prior_tuning": notebook("04_prior_tuning", classes=["neutral", "angry", "happy"],
                                           methods={"ours": {"label": "Ours", "test": test, "runs": []}})}
    df = tables.table1(results)
    shown = tables.format_table(df)
    assert shown.loc["Ours"].tolist() == ["90.0 ± 1.0", "–", "70.2 ± 2.5", "84.1 ± 0.6", "83.7 ± 0.4", "80.1 ± 0.0"]
    csv = read_csv(tables.write_table(df, "t", tmp_path, caption="c")[0])
    assert csv.loc["Ours", "Acc mean"] == 84.1 and csv.loc["Ours", "WF1 mean"] == 83.72
    assert np.isnan(csv.loc["Ours", "angry mean"])


def test_latex_is_booktabs_with_escaped_characters(results, tmp_path):
    df = tables.table1(results)
    tex_path = tables.write_table(df, "table1", tmp_path, caption="Accuracy in % on MER2024_test & more",
                                  note="Data: demo_dataset (synthetic); 100% of rows.")[2]
    tex = tex_path.read_text(encoding="utf-8")
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))  # drop the comment line
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{tabular}",
                 r"\caption{", r"\label{tab:table1}"):
        assert rule in body
    assert body.index(r"\toprule") < body.index(r"\midrule") < body.index(r"\bottomrule")
    assert "±" not in body and r"$\pm$" in body
    text = body.replace(" & ", " ").replace("{%\n", "{\n")  # column separators, \resizebox's line end
    assert not re.search(r"(?<!\\)[%_&#]", text), "unescaped LaTeX special character"
    assert r"MER2024\_test \& more" in body and r"100\% of rows" in body
    assert body.count("{") - body.count(r"\{") == body.count("}") - body.count(r"\}")
    # every body row has as many cells as the header
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 1 + len(df) and len({line.count(" & ") for line in rows}) == 1

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: LaTeX checked in form only")
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs,graphicx}\\begin{document}\n"
                   "\\input{table1.tex}\n\\end{document}\n", encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout[-2000:]


def test_markdown_is_a_pipe_table_with_caption_and_note(results, tmp_path):
    df = tables.table2(results)
    md = tables.write_table(df, "table2", tmp_path, caption="Modality ablation",
                            note="Data: the synthetic demo dataset.")[1].read_text(encoding="utf-8")
    lines = md.splitlines()
    assert lines[0] == "**Modality ablation**"
    table_lines = [line for line in lines if line.startswith("|")]
    assert len(table_lines) == 2 + len(df)  # header, alignment rule, one per row
    assert re.fullmatch(r"\| :-+ (\| -+: )+\|", table_lines[1])
    assert "Data: the synthetic demo dataset." in md


def test_table2_paper_column_holds_only_the_papers_numbers(results, tmp_path):
    results["05_ablations"]["modalities"]["AVT_bdcl"] = entry("AVT + BDCL", [0.8, 0.82], seed=30)
    df = tables.table2(results)
    assert list(df.index) == ["A", "V", "T", "AVT", "AVT+Prior", "AVT + BDCL"]  # extra rows after the paper's
    csv = read_csv(tables.write_table(df, "table2", tmp_path, caption="c")[0])
    paper = csv["Acc (reported in the paper)"]
    assert paper.loc[["A", "V", "T", "AVT"]].tolist() == [74.16, 66.30, 51.89, 77.53]  # exact, not rounded
    assert paper.loc[["AVT+Prior", "AVT + BDCL"]].isna().all()
    for key, row in zip(["A", "V", "T", "AVT", "AVT+Prior", "AVT_bdcl"], df.index):  # ours hold ours
        test = results["05_ablations"]["modalities"][key]["test"]
        assert csv.loc[row, "Acc mean"] == pytest.approx(test["accuracy"]["mean"], abs=1e-8)
        assert csv.loc[row, "F1 mean"] == pytest.approx(test["weighted_f1"]["mean"], abs=1e-8)
    shown = tables.format_table(df, digits=2)
    assert shown["Acc (reported in the paper)"].tolist() == ["74.16", "66.30", "51.89", "77.53", "", ""]

    # without the A row, 74.16 appears nowhere
    del results["05_ablations"]["modalities"]["A"]
    df = tables.table2(results)
    assert "A" not in df.index and 74.16 not in df[(tables.PAPER_TABLE2_COLUMN, "value")].tolist()
    assert any("A: not in 05_ablations" in n for n in df.attrs["notes"])


def test_table3_rows_size_and_the_papers_sizes(results, tmp_path):
    df = tables.table3(results)
    assert list(df.index) == ["base", "+670 random", "+670 matched", "+670 balanced", "+all"]
    csv = read_csv(tables.write_table(df, "table3", tmp_path, caption="c")[0])
    assert csv["Size"].tolist() == [2698, 3368, 3368, 3368, 5698]  # the training-set size, as the paper's
    assert csv["Added"].tolist() == [0, 670, 670, 670, 3000]
    assert csv["Size (reported in the paper)"].tolist() == [4024, 5024, 5022, 5024, 8341]
    balanced = results["03_pseudo_labeling"]["extension"]["balanced"]["test"]
    assert csv.loc["+670 balanced", "WF1 mean"] == pytest.approx(balanced["weighted_f1"]["mean"], abs=1e-8)
    assert csv.loc["+670 balanced", "Acc std"] == pytest.approx(balanced["accuracy"]["std"], abs=1e-8)
    # the pseudo-label variant (beyond the paper) has no paper column
    results["03_pseudo_labeling"]["pseudo_extension"] = results["03_pseudo_labeling"]["extension"]
    assert ("Size (reported in the paper)", "value") not in tables.table3(results, part="pseudo_extension").columns


def test_skipped_and_missing_notebooks_leave_rows_out_with_a_note(results, tmp_path):
    results["03_pseudo_labeling"] = notebook("03_pseudo_labeling", skipped="dataset has no unlabelled pool")
    del results["01_prior_generation"]
    results["05_ablations"] = notebook("05_ablations", skipped="no priors for this dataset")
    results["04_prior_tuning"]["methods"]["ours_shuffled"] = {"label": "shuffled", "skipped": "no priors"}

    t1, t2, t3 = tables.table1(results), tables.table2(results), tables.table3(results)
    assert list(t1.index) == ["Attention (CE)", "+ BDCL", "Ours (prior-guided)"]
    assert len(t2) == 0 and len(t3) == 0
    notes = " ".join(t1.attrs["notes"])
    assert "03_pseudo_labeling: skipped (dataset has no unlabelled pool)" in notes
    assert "01_prior_generation: no results" in notes
    assert "04_prior_tuning: ours_shuffled: skipped (no priors)" in notes

    for stem, df in {"table1": t1, "table2": t2, "table3": t3}.items():
        csv_path, _, tex_path = tables.write_table(df, stem, tmp_path, caption="c", note="Demo data.")
        assert len(read_csv(csv_path)) == len(df)
        assert r"\bottomrule" in tex_path.read_text(encoding="utf-8")
    assert "no priors for this dataset" in (tmp_path / "table2.md").read_text(encoding="utf-8")

    assert len(tables.table1({})) == 0  # nothing run at all: an empty table, no crash


def test_other_label_sets_binary_sentiment(tmp_path):
    classes = ["negative", "positive"]
    results = {"02_pretraining": notebook("02_pretraining", classes=classes, methods={
        "attention": entry("Attention (CE)", [0.7, 0.8], classes=classes)})}
    df = tables.table1(results)
    assert list(tables.format_table(df).columns) == ["negative", "positive", "Acc", "WF1", tables.UAR]
    csv = read_csv(tables.write_table(df, "table1", tmp_path, caption="Sentiment")[0])
    test = results["02_pretraining"]["methods"]["attention"]["test"]
    assert csv.loc["Attention (CE)", "positive mean"] == pytest.approx(
        test["per_class_accuracy"]["positive"]["mean"], abs=1e-8)


def test_disagreeing_class_lists_and_malformed_rows_raise_clear_errors(results):
    results["02_pretraining"]["classes"] = ["negative", "positive"]
    with pytest.raises(ValueError, match="02_pretraining.*different class lists|different class lists.*02_pretraining"):
        tables.table1(results)
    broken = {"04_prior_tuning": notebook("04_prior_tuning", methods={"ours": {"label": "Ours", "runs": []}})}
    with pytest.raises(ValueError, match="'Ours' has no test AGGREGATE"):
        tables.table1(broken)


def test_load_results_reads_a_run_folder_and_writes_leave_no_temp_files(results, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for name, data in results.items():
        (folder / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    loaded = tables.load_results(folder)
    assert set(loaded) == set(results)
    out = tmp_path / "figures"
    tables.write_table(tables.table1(loaded), "table1", out, caption="c")
    assert sorted(p.name for p in out.iterdir()) == ["table1.csv", "table1.md", "table1.tex"]

    (folder / "06_broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="06_broken.json.*re-run notebook 06_broken"):
        tables.load_results(folder)


def test_classical_baselines_close_table1_and_stay_out_of_the_per_class_figure(results):
    results["02_pretraining"]["methods"]["logreg"] = entry("LR (classical baseline)", [0.66], seed=40)
    assert list(tables.table1(results).index)[-1] == "LR (classical baseline)"
    fusion, _ = tables.table1_methods(results, fusion_only=True)
    assert list(fusion) == ["Attention (CE)", "+ BDCL", "+ BDCL + pseudo-labels", "Ours (prior-guided)"]
