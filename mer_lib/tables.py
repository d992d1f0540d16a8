"""The paper's tables (MER2024 reasoning-priors paper, Tables 1-3) built from the notebooks' results JSON.

Each notebook writes ``<run_dir>/results/<notebook>.json`` (:meth:`mer_lib.notebook.Context.write_results`);
a METHOD ENTRY in it is ``{"label", "test": AGGREGATE, "runs", optional "coverage", optional "added"}``
where AGGREGATE is :func:`mer_lib.metrics.aggregate_scores`' output. The functions here turn those
into one DataFrame per paper table:

- :func:`table1`: LLM zero-shot vs fusion models, per-class accuracy, Acc, WF1 (paper Table 1);
- :func:`table2`: modality ablation A / V / T / AVT / AVT+Prior, Acc and F1 (paper Table 2);
- :func:`table3`: extending the labelled set with random / matched / balanced pseudo-labels (paper Table 3).

A table DataFrame keeps numbers, not strings: its columns are a two-level index ``(column, stat)``
where ``stat`` is ``"mean"`` / ``"std"`` for a measured value over seeds and ``"value"`` for a plain
one (``Seeds``, ``Added``, the paper's reported accuracies). Rows that could not be filled (a
notebook that has not run or was skipped) are left out and explained in ``df.attrs["notes"]``.
:func:`format_table` gives the "84.1 ± 0.6" strings to show, :func:`write_table` writes CSV
(numbers), Markdown and LaTeX (booktabs) files named after the paper artifact.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import io
from .metrics import aggregate_scores, method_entry  # noqa: F401  (method_entry: the notebooks' name for it)

# Numbers the paper reports on MER2024-SEMI. They are the paper's, not ours, and only ever appear in
# their own columns, labelled as such; a cell stays empty where the paper has no value or this project
# has not transcribed it (the values below are the ones quoted in this project's issues).
# Table 1's "Avg": the mean of the per-class accuracies for the LLM rows (Gemini's 71.81 and GPT-4o's
# 58.43 reproduce exactly from their rows), the overall accuracy for the fusion rows.
PAPER_TABLE1_AVG = {"Gemini-2.0-flash": 71.81, "GPT-4o": 58.43, "Attention": 77.53}
PAPER_TABLE2_ACC = {"A": 74.16, "V": 66.30, "T": 51.89, "AVT": 77.53}  # AVT is the Attention baseline
PAPER_TABLE3_SIZE = {"base": 4024, "random": 5024, "matched": 5022, "balanced": 5024, "all": 8341}
PAPER_NOTE = ("Columns marked 'reported in the paper' hold the paper's MER2024-SEMI numbers, for comparison "
              "only; empty where the paper has no value or it is not transcribed here.")
UAR = "UAR (mean per-class acc.)"  # the paper's "Avg" for its LLM rows


def paper_llm_row(model: str) -> str | None:
    """The paper's Table 1 LLM row that priors of ``model`` compare with (the simulated back-end is
    calibrated to Gemini-2.0-flash's row, so it compares with it too); None for other models."""
    name = model.lower()
    return next((row for row in PAPER_TABLE1_AVG if row != "Attention" and row.lower() in name), None)

# Which notebook contributes which rows of Table 1, in the paper's order (listed keys first; any
# other key a notebook adds follows in the file's order). None: every method the notebook has.
TABLE1_SOURCES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("01_prior_generation", None),  # one row per LLM back-end, zero-shot
    ("02_pretraining", ("attention", "bdcl")),
    ("03_pseudo_labeling", ("bdcl_pl",)),
    ("04_prior_tuning", ("ours", "ours_shuffled")),
)
LLM_NOTEBOOKS = {"01_prior_generation"}  # its rows are zero-shot MLLM answers, not trained models
CONTROL_KEYS = {"ours_shuffled"}
BASELINE_KEYS = {"logreg", "svm"}  # classical baselines (beyond the paper): the last rows of Table 1  # rows that are controls, not methods; their label says so
TABLE2_ROWS = ("A", "V", "T", "AVT", "AVT+Prior")
TABLE3_ROWS = ("base", "random", "matched", "balanced", "all")
HIDDEN_IN_DISPLAY = {"Seeds"}  # kept in the CSV, summarised in the footnote instead of a column


def load_results(results_dir: str | os.PathLike) -> dict[str, dict]:
    """Every ``<notebook>.json`` in a run's ``results/`` folder, keyed by notebook name (file stem)."""
    results = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            results[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); re-run notebook {path.stem} to rewrite it.") from err
    return results


def format_mean_std(stat: Mapping | None, digits: int = 1) -> str:
    """``"84.1 ± 0.6"`` for a stat ``{"mean", "std", "values"}``; a single run prints ``"84.1"``; None -> ``"–"``."""
    if stat is None or _number(stat.get("mean")) is None:
        return "–"
    mean, std = _number(stat["mean"]), _number(stat.get("std"))
    values = stat.get("values")
    single_run = len(values) <= 1 if values is not None else not std
    if single_run or std is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_frame(methods: Mapping[str, dict]) -> pd.DataFrame:
    """Method entries as a small table of mean ± std (accuracy, weighted F1, macro F1), for display."""
    rows = {e["label"]: {"Acc": format_mean_std(e["test"]["accuracy"]), "WF1": format_mean_std(e["test"]["weighted_f1"]),
                         "macro F1": format_mean_std(e["test"]["macro_f1"]), "seeds": e["test"]["n_seeds"]}
            for e in methods.values()}
    return pd.DataFrame.from_dict(rows, orient="index")


# ---------------------------------------------------------------------------------------------
# The three tables
# ---------------------------------------------------------------------------------------------

def table1_methods(results: Mapping[str, dict], *, fusion_only: bool = False) -> tuple[dict[str, dict], list[str]]:
    """Table 1's rows as ``{row label: METHOD ENTRY}`` in the paper's order, and notes on absent rows.

    The shuffled-priors control gets "(control)" in its label if its label does not say so already.
    ``fusion_only``: only the trained fusion models, chosen by notebook and key (no LLM zero-shot row,
    no control), e.g. for :func:`mer_lib.figures.fig_per_class` (``{label: entry["test"]}``).
    """
    rows: dict[str, dict] = {}
    notes: list[str] = []
    baselines: dict[str, dict] = {}
    for notebook, preferred in TABLE1_SOURCES:
        if fusion_only and notebook in LLM_NOTEBOOKS:
            continue
        methods = _notebook_part(results, notebook, "methods", notes)
        if methods is None:
            continue
        keys = list(methods) if preferred is None else (
            [k for k in preferred if k in methods] + [k for k in methods if k not in preferred])
        for key in keys:
            entry = methods[key]
            if key in BASELINE_KEYS:  # the classical baselines close the table, after every method
                baselines[key] = entry
                continue
            if (fusion_only and key in CONTROL_KEYS) or _skipped(entry, f"{notebook}: {key}", notes):
                continue
            label = str(entry.get("label") or key)
            if key in CONTROL_KEYS and "control" not in label.lower():
                label += " (control)"
            rows[_unique(label, rows)] = entry
    for key, entry in baselines.items():
        if not (fusion_only or _skipped(entry, f"02_pretraining: {key}", notes)):
            rows[_unique(str(entry.get("label") or key), rows)] = entry
    return rows, notes


def table1(results: Mapping[str, dict]) -> pd.DataFrame:
    """Paper Table 1: LLM zero-shot rows (01), Attention and + BDCL (02), + pseudo-labels (03), Ours and
    the shuffled-priors control (04); columns: per-class accuracy in class order, then Acc, WF1, the
    unweighted mean of the per-class accuracies (UAR, the paper's "Avg" for its LLM rows) and the
    paper's own "Avg" where the row is one of its methods (an entry's ``paper_row``).

    ``results`` maps notebook name -> parsed results JSON; missing notebooks are simply absent.
    """
    rows, notes = table1_methods(results)
    classes = _classes(results, [nb for nb, _ in TABLE1_SOURCES])
    records = {}
    for label, entry in rows.items():
        test = _aggregate(entry, label)
        per_class = test.get("per_class_accuracy") or {}
        record = {(c, s): v for c in classes for s, v in _stat(per_class.get(c)).items()}
        record |= _measured(test)
        record |= {(UAR, s): v for s, v in _stat(_uar(per_class, classes)).items()}
        record[(PAPER_AVG_COLUMN, "value")] = PAPER_TABLE1_AVG.get(entry.get("paper_row"), math.nan)
        record[("Seeds", "value")] = test.get("n_seeds")
        records[label] = record
        notes += _coverage_note(label, entry)
    columns = [(c, s) for c in [*classes, "Acc", "WF1", UAR] for s in ("mean", "std")]
    if _mer_classes(classes):
        notes.append(PAPER_NOTE)
        columns.append((PAPER_AVG_COLUMN, "value"))
    return _frame(records, columns + [("Seeds", "value")], "Method", notes)


PAPER_AVG_COLUMN = "Avg (reported in the paper)"


def _uar(per_class: Mapping, classes: list[str]) -> dict | None:
    """Mean ± std over seeds of each seed's mean per-class accuracy (classes present in the test split)."""
    per_seed = [per_class[c]["values"] for c in classes if per_class.get(c) and per_class[c].get("values")]
    per_seed = [[v for v in seed if v is not None] for seed in zip(*per_seed)]
    values = [float(np.mean(v)) for v in per_seed if v]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "values": values}


def table2(results: Mapping[str, dict]) -> pd.DataFrame:
    """Paper Table 2: modality ablation. Rows A, V, T and AVT: the Attention model trained with
    cross-entropy (as the paper's, whose AVT row is the Attention baseline), AVT+Prior: Ours; then any
    other row 05 adds (the BDCL variants, the classical baselines), named as such. Columns Acc, F1
    (weighted F1) and the paper's accuracies on its rows, in a column labelled as the paper's."""
    notes: list[str] = []
    records = {}
    modalities = _notebook_part(results, "05_ablations", "modalities", notes)
    keys = [] if modalities is None else [*[k for k in TABLE2_ROWS if k in modalities],
                                          *[k for k in modalities if k not in TABLE2_ROWS]]
    for row in TABLE2_ROWS if modalities is not None else ():
        if row not in modalities:
            notes.append(f"{row}: not in 05_ablations results; row left out.")
    for key in keys:
        entry = modalities[key]
        if _skipped(entry, f"05_ablations: {key}", notes):
            continue
        label = _unique(str(entry.get("label") or key), records)
        test = _aggregate(entry, label)
        records[label] = {**_measured(test, f1_name="F1"), (PAPER_TABLE2_COLUMN, "value"): PAPER_TABLE2_ACC.get(key, math.nan),
                          ("Seeds", "value"): test.get("n_seeds")}
    columns = [("Acc", "mean"), ("Acc", "std"), ("F1", "mean"), ("F1", "std")]
    if _mer_classes(_classes(results, ["05_ablations"])):
        notes.append(PAPER_NOTE)
        columns.append((PAPER_TABLE2_COLUMN, "value"))
    return _frame(records, columns + [("Seeds", "value")], "Modalities", notes)


PAPER_TABLE2_COLUMN = "Acc (reported in the paper)"


def table3(results: Mapping[str, dict], part: str = "extension") -> pd.DataFrame:
    """Paper Table 3: extending the training set with external labelled clips (rows: the training set
    only, +N random, +N matched to its label ratio, +N balanced, +all; columns Size = training-set
    size, Acc, WF1, and the paper's sizes). ``part="pseudo_extension"``: the same with pool clips the
    base model pseudo-labelled (beyond the paper; no paper column)."""
    notes: list[str] = []
    records = {}
    extension = _notebook_part(results, "03_pseudo_labeling", part, notes)
    for row in TABLE3_ROWS if extension is not None else ():
        if row not in extension:
            notes.append(f"{row}: not in 03_pseudo_labeling's {part} results; row left out.")
    keys = [] if extension is None else [*[k for k in TABLE3_ROWS if k in extension],
                                         *[k for k in extension if k not in TABLE3_ROWS]]
    for key in keys:
        entry = extension[key]
        if _skipped(entry, f"03_pseudo_labeling: {part} {key}", notes):
            continue
        label = _unique(str(entry.get("label") or key), records)
        test = _aggregate(entry, label)
        records[label] = {("Size", "value"): entry.get("size", math.nan), ("Added", "value"): entry.get("added", math.nan),
                          **_measured(test), ("Seeds", "value"): test.get("n_seeds")}
        if part == "extension":
            records[label][("Size (reported in the paper)", "value")] = PAPER_TABLE3_SIZE.get(key, math.nan)
    columns = [("Size", "value"), ("Added", "value"), ("Acc", "mean"), ("Acc", "std"), ("WF1", "mean"), ("WF1", "std")]
    if part == "extension" and _mer_classes(_classes(results, ["03_pseudo_labeling"])):
        notes.append(PAPER_NOTE)
        columns.append(("Size (reported in the paper)", "value"))
    return _frame(records, columns + [("Seeds", "value")], "Training set", notes)


def table4(results: Mapping[str, dict]) -> pd.DataFrame:
    """Table 4 (beyond the paper): for each place the paper leaves open, its literal reading and the
    alternative on the same data and seeds (``05_ablations``' ``readings``); the reading the run uses
    is marked with *. Columns Acc, WF1 and, on the alternative's row, its WF1 minus the literal one's."""
    from .readings import READINGS

    notes: list[str] = []
    records = {}
    readings = _notebook_part(results, "05_ablations", "readings", notes)
    for reading in READINGS if readings is not None else ():
        if reading.key not in readings:
            notes.append(f"{reading.question}: not measured in this run (see 05_ablations); row left out.")
            continue
        pair = readings[reading.key]
        literal_wf1 = _stat(pair["literal"]["test"].get("weighted_f1"))["mean"]
        for side, suffix in (("literal", " (paper, literal)"), ("alternative", "")):
            entry = pair[side]
            label = f"{reading.question}: {entry['label']}{suffix}" + (" *" if entry.get("default") else "")
            test = _aggregate(entry, label)
            delta = _stat(test.get("weighted_f1"))["mean"] - literal_wf1 if side == "alternative" else math.nan
            records[label] = {**_measured(test), ("ΔWF1 vs literal", "value"): delta,
                              ("Seeds", "value"): test.get("n_seeds")}
    if records:
        notes.insert(0, "* the reading this run's other tables use.")
    columns = [("Acc", "mean"), ("Acc", "std"), ("WF1", "mean"), ("WF1", "std"), ("ΔWF1 vs literal", "value"),
               ("Seeds", "value")]
    return _frame(records, columns, "Reading", notes)


# ---------------------------------------------------------------------------------------------
# Display and files
# ---------------------------------------------------------------------------------------------

def format_table(df: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """The table as strings to show: each (mean, std) pair as ``"84.1 ± 0.6"``, plain values as they are
    (blank when absent), the ``Seeds`` column left out (see :func:`seeds_footnote`)."""
    n_seeds = df[("Seeds", "value")] if ("Seeds", "value") in df.columns else pd.Series(np.nan, df.index)
    shown = {}
    for name in dict.fromkeys(df.columns.get_level_values(0)):
        if name in HIDDEN_IN_DISPLAY:
            continue
        part = df[name]
        if "mean" in part.columns:
            shown[name] = [format_mean_std(_row_stat(part, i, n_seeds.iloc[i]), digits) for i in range(len(df))]
        else:
            shown[name] = [_format_value(v, digits) for v in part["value"]]
    out = pd.DataFrame(shown, index=df.index, columns=list(shown), dtype=object)
    out.index.name = df.index.name
    return out


def seeds_footnote(df: pd.DataFrame) -> str:
    """What the numbers are: "Mean ± std over 3 seeds …", from the table's own ``Seeds`` column."""
    seeds = sorted({int(s) for s in df.get(("Seeds", "value"), pd.Series(dtype=float)).dropna()})
    if not seeds:
        return "Values are percentages on the test split."
    if seeds == [1]:
        return "Values are percentages on the test split, from a single run (1 seed)."
    most = max(seeds)
    text = f"Values are mean ± std over {most} seeds, in percent on the test split"
    if 1 in seeds:
        text += "; single-run rows (1 seed) show the value alone"
    if [s for s in seeds if 1 < s < most]:
        text += f"; some rows have fewer seeds ({', '.join(str(s) for s in seeds if 1 < s < most)})"
    return text + "."


def write_table(df: pd.DataFrame, stem: str, out_dir: str | os.PathLike, caption: str,
                note: str = "", digits: int = 1) -> list[Path]:
    """Write ``<stem>.csv`` (numbers: a mean and a std column per measure), ``<stem>.md`` and ``<stem>.tex``
    (LaTeX booktabs, needs ``\\usepackage{booktabs,graphicx}``), atomically; returns the three paths.

    ``caption`` goes above the table; under it come the seeds footnote, ``note`` (e.g. whether the data
    is the demo or MER2024) and the table's own notes (rows left out and why).
    """
    out_dir = Path(out_dir)
    shown = format_table(df, digits)
    footnotes = [seeds_footnote(df), *([note] if note else []), *df.attrs.get("notes", [])]
    paths = [out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "tex")]
    io.write_text(paths[0], _flat_numbers(df).to_csv(float_format="%.10g"))
    io.write_text(paths[1], _markdown(shown, caption, footnotes))
    io.write_text(paths[2], _latex(shown, caption, footnotes, label=f"tab:{stem}"))
    return paths


def _markdown(shown: pd.DataFrame, caption: str, footnotes: list[str]) -> str:
    header = [shown.index.name or "", *map(str, shown.columns)]
    body = [[str(i), *map(str, row)] for i, row in zip(shown.index, shown.itertuples(index=False))]
    cells = [[c.replace("|", "\\|") for c in row] for row in [header, *body]]
    widths = [max(len(row[j]) for row in cells) for j in range(len(header))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                 for j, (c, w) in enumerate(zip(row, widths))) + " |"

    rule = "| " + " | ".join(":" + "-" * (w - 1) if j == 0 else "-" * (w - 1) + ":"
                             for j, w in enumerate(widths)) + " |"
    table = [line(cells[0]), rule, *map(line, cells[1:])]
    return "\n".join([f"**{caption}**", "", *table, "", *(f"{f}  " for f in footnotes)]).rstrip() + "\n"


LATEX_SPECIALS = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                  "±": r"$\pm$", "–": "--", "—": "---"}


def latex_escape(text: str) -> str:
    """Text safe inside a LaTeX document: special characters escaped, ± as ``$\\pm$``, – as ``--``."""
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def _latex(shown: pd.DataFrame, caption: str, footnotes: list[str], label: str) -> str:
    n_cols = 1 + len(shown.columns)
    header = " & ".join(latex_escape(c) for c in [shown.index.name or "", *shown.columns]) + r" \\"
    body = [" & ".join([latex_escape(i), *map(_latex_cell, row)]) + r" \\"
            for i, row in zip(shown.index, shown.itertuples(index=False))]
    tabular = [rf"\begin{{tabular}}{{l{'r' * (n_cols - 1)}}}", r"\toprule", header, r"\midrule", *body,
               r"\bottomrule", r"\end{tabular}"]
    notes = [rf"\par\smallskip{{\footnotesize {latex_escape(f)}\par}}" for f in footnotes]
    return "\n".join([
        r"% Needs \usepackage{booktabs} and \usepackage{graphicx}. Written by mer_lib.tables.write_table.",
        r"\begin{table}[t]", r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{4pt}",
        rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{label}}}",
        # shrink only a table wider than the text (Table 1's eight columns in LNCS's 122 mm), never enlarge
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        *tabular, "}", *notes, r"\end{table}", ""])


def _latex_cell(text: str) -> str:
    """``"84.1 ± 0.6"`` as ``84.1`` with a smaller ``±0.6``: the mean reads first and wide tables stay narrow."""
    if " ± " not in text:
        return latex_escape(text)
    mean, std = text.split(" ± ", 1)
    return rf"{latex_escape(mean)}\,{{\scriptsize$\pm${latex_escape(std)}}}"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def _notebook_part(results: Mapping[str, dict], notebook: str, key: str, notes: list[str]) -> dict | None:
    """``results[notebook][key]``, or None with a note when the notebook is missing or skipped."""
    data = results.get(notebook)
    if data is None:
        notes.append(f"{notebook}: no results (notebook not run); its rows are left out.")
        return None
    if data.get("skipped"):
        notes.append(f"{notebook}: skipped ({data['skipped']}); its rows are left out.")
        return None
    if key not in data:
        notes.append(f"{notebook}: results have no '{key}'; its rows are left out.")
        return None
    return data[key]


def _skipped(entry: Mapping, where: str, notes: list[str]) -> bool:
    if entry.get("skipped"):
        notes.append(f"{where}: skipped ({entry['skipped']}); row left out.")
        return True
    return False


def _aggregate(entry: Mapping, label: str) -> dict:
    test = entry.get("test")
    if not isinstance(test, Mapping) or "accuracy" not in test:
        raise ValueError(f"results row '{label}' has no test AGGREGATE (mer_lib.metrics.aggregate_scores "
                         f"output under 'test'); got keys {sorted(entry)}. Re-run the notebook that wrote it.")
    return dict(test)


def _classes(results: Mapping[str, dict], notebooks: list[str]) -> list[str]:
    """The class list shared by the given notebooks (they must agree; rows compare per class)."""
    seen = {nb: list(results[nb]["classes"]) for nb in notebooks
            if nb in results and not results[nb].get("skipped") and results[nb].get("classes")}
    distinct = {tuple(c) for c in seen.values()}
    if len(distinct) > 1:
        listing = "; ".join(f"{nb}: {c}" for nb, c in seen.items())
        raise ValueError(f"the notebooks' results use different class lists ({listing}); re-run them "
                         "with the same label file so Table 1's per-class columns line up.")
    return list(next(iter(distinct))) if distinct else []


def _mer_classes(classes: list[str]) -> bool:
    """The paper's numbers compare only with tables over MER's six classes."""
    from .config import MER_CLASSES
    return sorted(classes) == sorted(MER_CLASSES)


def _number(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _stat(stat: Mapping | None) -> dict[str, float]:
    stat = stat or {}
    mean, std = _number(stat.get("mean")), _number(stat.get("std"))
    return {"mean": math.nan if mean is None else mean, "std": math.nan if std is None else std}


def _measured(test: Mapping, f1_name: str = "WF1") -> dict:
    return {**{("Acc", s): v for s, v in _stat(test.get("accuracy")).items()},
            **{(f1_name, s): v for s, v in _stat(test.get("weighted_f1")).items()}}


def _row_stat(part: pd.DataFrame, i: int, n_seeds) -> dict | None:
    """Row ``i`` of a (mean, std) column pair as a stat for :func:`format_mean_std`."""
    mean, std = part["mean"].iloc[i], part["std"].iloc[i]
    if pd.isna(mean):
        return None
    values = [float(mean)] * int(n_seeds) if pd.notna(n_seeds) else None  # only the count matters
    return {"mean": float(mean), "std": None if pd.isna(std) else float(std), "values": values}


def _format_value(value, digits: int) -> str:
    if value is None or pd.isna(value):
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.{digits}f}"


def _coverage_note(label: str, entry: Mapping) -> list[str]:
    test_coverage = (entry.get("coverage") or {}).get("test")
    if test_coverage is None or float(test_coverage) >= 100.0:
        return []
    return [f"{label}: priors cover {float(test_coverage):.1f}% of the test split."]


def _unique(label: str, taken: Mapping) -> str:
    candidate, n = label, 2
    while candidate in taken:
        candidate, n = f"{label} ({n})", n + 1
    return candidate


def _frame(records: dict[str, dict], columns: list[tuple[str, str]], index_name: str,
           notes: list[str]) -> pd.DataFrame:
    rows = [[record.get(c, math.nan) for c in columns] for record in records.values()]
    df = pd.DataFrame(rows, index=pd.Index(list(records), name=index_name, dtype=object),
                      columns=pd.MultiIndex.from_tuples(columns), dtype=float)
    df.attrs["notes"] = list(notes)
    return df


def _flat_numbers(df: pd.DataFrame) -> pd.DataFrame:
    """One header row for the CSV: ``"Acc mean"``, ``"Acc std"``, plain values under their own name."""
    flat = df.copy()
    flat.columns = [name if stat == "value" else f"{name} {stat}" for name, stat in df.columns]
    return flat
