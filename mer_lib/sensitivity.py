"""Beyond the paper: when do reasoning priors help? Stage 2 against the quality of its teacher.

On the demo, the simulated MLLM (:mod:`mer_lib.priors.backends.simulated`) has two knobs a real one
does not let you turn: its accuracy (the mean per-class accuracy of c*, from about 40 % to 95 %) and
how much its errors fall on the clips that are hard to read (``error_sharing``: 0 = unrelated to the
clip, 1 = only on the ambiguous ones). For each setting this makes the priors afresh (labelled clips
only: stage 2 uses no others), trains stage 2 as notebook 04 does on the same stage 1 and seeds, and
a shuffled-prior control, and reports stage 2's gain in weighted F1 over stage 1 and over the
control, paired by seed. Demo numbers: they say how the method behaves under a teacher of a known
quality, not how it does on MER2024.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .data import Dataset
from .metrics import mean_std, method_entry
from .prior_inputs import load_prior_inputs
from .stage1 import Stage1Run
from .stage2 import stage2_over_seeds

TEACHER_ACCURACIES = (0.40, 0.55, 0.70, 0.85, 0.95)
ERROR_SHARINGS = (0.0, 1.0)


def teacher_sensitivity(ds: Dataset, stage1_runs: Sequence[Stage1Run], stage2_cfg, *, prior_dir: Path,
                        checkpoint_dir: Path | None, splits: Sequence[str], test_split: str, seed: int = 0,
                        accuracies: Sequence[float] = TEACHER_ACCURACIES,
                        error_sharings: Sequence[float] = ERROR_SHARINGS, encoder: str | None = None,
                        train_policy: str = "au_consistent", test_policy: str = "au_consistent") -> list[dict]:
    """One row per (error_sharing, accuracy): the teacher's measured c* scores on the test split, the
    stage-2 and control method entries, and the paired gains ``{"mean", "std", "values"}`` in WF1."""
    from . import priors

    stage1_wf1 = np.array([r.test_scores["weighted_f1"] for r in stage1_runs])
    rows = []
    for sharing in error_sharings:
        for accuracy in accuracies:
            tag = f"teacher_a{accuracy:.2f}_s{sharing:.2f}"
            prior_file = Path(prior_dir) / f"priors-{tag}.jsonl"
            teacher = priors.make_backend("simulated", dataset=ds, seed=seed, accuracy=accuracy,
                                          error_sharing=sharing)
            priors.generate_for_dataset(ds, teacher, prior_file, splits=list(splits), show_progress=False)
            prior_map, table, inputs = load_prior_inputs(ds, prior_file, encoder=encoder, progress_bar=False)
            policies = dict(train_policy=train_policy, test_policy=test_policy, checkpoint_dir=checkpoint_dir)
            ours = stage2_over_seeds(ds, stage1_runs, inputs, stage2_cfg, table, tag=tag, **policies)
            control = stage2_over_seeds(ds, stage1_runs, inputs, stage2_cfg, table, shuffled=True,
                                        tag=f"{tag}_shuffled", **policies)
            wf1 = np.array([r.test_scores["weighted_f1"] for r in ours])
            control_wf1 = np.array([r.test_scores["weighted_f1"] for r in control])
            teacher_scores = priors.zero_shot_scores(prior_map, ds, test_split)
            rows.append({
                "accuracy_setting": accuracy, "error_sharing": sharing,
                "teacher": {k: teacher_scores[k] for k in ("accuracy", "weighted_f1")}
                | {"uar": _uar(teacher_scores["per_class_accuracy"])},
                "stage2": method_entry("Ours", ours), "control": method_entry("Ours, shuffled priors", control),
                "gain_over_stage1": _paired(wf1 - stage1_wf1), "gain_over_control": _paired(wf1 - control_wf1),
            })
    return rows


def _paired(differences: np.ndarray) -> dict:
    mean, std = mean_std(differences.tolist())
    return {"mean": mean, "std": std, "values": differences.tolist()}


def _uar(per_class: dict) -> float:
    values = [v for v in per_class.values() if v is not None]
    return float(np.mean(values)) if values else float("nan")


def summary(rows: Sequence[dict]):
    """The rows as a small table to display (teacher UAR and the two gains, mean ± std)."""
    import pandas as pd

    from .tables import format_mean_std

    return pd.DataFrame([{"error sharing": r["error_sharing"], "teacher accuracy (set)": r["accuracy_setting"],
                          "teacher UAR": round(r["teacher"]["uar"], 1),
                          "stage 2 WF1": format_mean_std(r["stage2"]["test"]["weighted_f1"]),
                          "gain over stage 1": format_mean_std(r["gain_over_stage1"]),
                          "gain over control": format_mean_std(r["gain_over_control"])} for r in rows])


def conclusion(rows: Sequence[dict]) -> str:
    """In words, from the numbers: for which teachers stage 2 beats both stage 1 and the shuffled
    control (mean gain above its std over seeds), and for which it does not."""
    lines = []
    for sharing in sorted({r["error_sharing"] for r in rows}):
        part = sorted((r for r in rows if r["error_sharing"] == sharing), key=lambda r: r["teacher"]["uar"])
        helps = [r for r in part if all(r[k]["mean"] > (r[k]["std"] or 0.0)
                                        for k in ("gain_over_stage1", "gain_over_control"))]
        if not helps:
            lines.append(f"error sharing {sharing:g}: no teacher setting gives a gain over both stage 1 and the control.")
            continue
        good = ", ".join(f"{r['teacher']['uar']:.0f}" for r in helps)
        bad = ", ".join(f"{r['teacher']['uar']:.0f}" for r in part if r not in helps)
        lines.append(f"error sharing {sharing:g}: stage 2 beats stage 1 and the control with teachers of UAR {good}"
                     + (f"; not with UAR {bad}." if bad else ", every teacher tried."))
    return "\n".join(lines)
