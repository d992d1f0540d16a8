"""Table 4, "readings of the paper": where the paper is silent or ambiguous, both readings, measured.

Each reading trains the paper-literal form and the alternative on the same data, splits and seeds;
everything else stays at the run's settings. The paper-literal form of the stage-1 readings is the
run's own "+ BDCL" model (02), that of the pseudo-label reading its "+ BDCL + pseudo-labels" model
(03) and that of the stage-2 readings its "Ours" (04), so those are loaded, not trained again.
Beyond the paper: no reader of the paper has this table; it says how much each choice matters.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .data import Dataset
from .metrics import method_entry
from .stage1 import Stage1Config, stage1_over_seeds


@dataclass(frozen=True)
class Reading:
    key: str  # row key in the results JSON and Table 4
    question: str  # what the paper leaves open
    literal: str  # the paper read literally
    alternative: str  # the other reading
    stage: str  # "stage1", "pseudo" (stage 1 with pseudo-labels) or "stage2"
    literal_changes: dict = field(default_factory=dict)  # settings of the literal form
    alternative_changes: dict = field(default_factory=dict)  # settings of the alternative


READINGS = (
    Reading("projector", "the unified feature projector", "one projector shared by the modalities",
            "one projector per modality", "stage1", {"model.projector": "shared"},
            {"model.projector": "per_modality"}),
    Reading("bdcl_self", "BDCL: is the anchor in its own denominator B_c?", "yes (eq. 6-8 as written)",
            "no (SupCon-style)", "stage1", {"bdcl_include_self": True}, {"bdcl_include_self": False}),
    Reading("bdcl_pairs", "BDCL: which modality pairs?", "three: (v,a), (v,t), (a,t)", "all six ordered pairs",
            "stage1", {"bdcl_symmetric": False}, {"bdcl_symmetric": True}),
    Reading("pseudo_threshold", "pseudo-labels: which pool clips?", "all, relabelled every epoch (threshold 0)",
            "confidence >= 0.9", "pseudo", {"pseudo_threshold": 0.0}, {"pseudo_threshold": 0.9}),
    Reading("stage2_head", "stage 2: how F_m reach the classifier", "frozen stage-1 fusion and linear layer, R as weights",
            "a zero-initialised head added to the stage-1 logits", "stage2", {"head": "paper"}, {"head": "residual"}),
    Reading("visual_prior", "I_V: what the visual prior holds", "the action units", "action units and the description",
            "stage2", {"prior.visual_description": False}, {"prior.visual_description": True}),
)


def with_changes(cfg, changes: dict):
    """``cfg`` with dotted-key changes applied (``{"model.projector": "shared"}``)."""
    nested: dict[str, dict] = {}
    flat = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    for head, sub in nested.items():
        flat[head] = with_changes(getattr(cfg, head), sub)
    return replace(cfg, **flat)


def stage1_readings(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seeds: Sequence[int],
                    checkpoint_dir: Path | None) -> dict[str, dict]:
    """The stage-1 and pseudo-label rows: ``{key: {"literal": entry, "alternative": entry}}``.
    ``cfg`` is the run's "+ BDCL" setting; the pseudo-label reading adds pseudo-labels to it."""
    rows = {}
    for reading in READINGS:
        if reading.stage == "stage2" or (reading.stage == "pseudo" and not (ds.labels < 0).any()):
            continue
        base, tag = (replace(cfg, pseudo_labels=True), "bdcl_pl") if reading.stage == "pseudo" else (cfg, "bdcl")
        entries = {}
        for side, changes in (("literal", reading.literal_changes), ("alternative", reading.alternative_changes)):
            variant = with_changes(base, changes)
            runs = stage1_over_seeds(ds, variant, train_split, test_split, seeds, checkpoint_dir,
                                     tag=tag if variant == base else f"{tag}_{reading.key}_{side}")
            entries[side] = method_entry(getattr(reading, side), runs, default=variant == base)
        rows[reading.key] = entries
    return rows


def stage2_readings(run_stage2: Callable[..., list], stage2_cfg, prior_settings: dict) -> dict[str, dict]:
    """The stage-2 rows. ``run_stage2(cfg, tag, **prior_settings)`` trains stage 2 over the seeds on the
    run's stage 1, with its priors and policies, and returns the runs (notebook 04's recipe);
    ``prior_settings`` are the run's own (``{"visual_description": False}``)."""
    rows = {}
    for reading in READINGS:
        if reading.stage != "stage2":
            continue
        entries = {}
        for side, changes in (("literal", reading.literal_changes), ("alternative", reading.alternative_changes)):
            prior = {**prior_settings, **{k[len("prior."):]: v for k, v in changes.items() if k.startswith("prior.")}}
            variant = with_changes(stage2_cfg, {k: v for k, v in changes.items() if not k.startswith("prior.")})
            default = variant == stage2_cfg and prior == prior_settings
            tag = "ours" if default else f"ours_{reading.key}_{side}"
            entries[side] = method_entry(getattr(reading, side), run_stage2(variant, tag, **prior), default=default)
        rows[reading.key] = entries
    return rows
