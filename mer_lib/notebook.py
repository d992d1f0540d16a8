"""What every notebook does first: check its parameters, resolve them, and know where to write.

A notebook's ``parameters`` cell holds typed literals (``seed: int = 0  # ...``), which Python
records in ``__annotations__``. The cell after papermill's injected parameters calls
:func:`start` before it imports or defines anything else, and :func:`start` fails on a name that
is not a declared parameter (papermill only warns) or a
value of the wrong type, fills dataset parameters left empty from a shipped profile (so a notebook
opened in JupyterLab runs on the demo as it is, and no dataset-specific value sits in a notebook),
and resolves paths. Results go to ``<run_dir>/results/<notebook>.json`` as plain JSON, which the
table and figure code reads.
"""
from __future__ import annotations

import difflib
import json
import os
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import io
from .config import MODALITIES, RUNS_DIR, resolve_path
from .profiles import DATASET_KEYS, load_profile

PLAIN_TYPES = (bool, int, float, str, list, dict, tuple, type(None))
SEARCH_FILE = "stage1_search.json"  # the hyper-parameters 02's random search chose (search_draws > 0)


class ParameterError(ValueError):
    """A notebook parameter that is unknown or of the wrong type."""


def check_parameters(namespace: dict, notebook: str = "this notebook") -> dict[str, Any]:
    """The declared parameters (``__annotations__``) and their values, checked strictly.

    Any plain value (a literal, as papermill injects) that is not declared is a mistyped or unknown
    parameter; a value whose type does not match its annotation is an error (an int is accepted
    for a float, a bool never for an int).
    """
    declared: dict = namespace.get("__annotations__", {})
    if not declared:
        raise ParameterError(f"{notebook}: no typed parameters found; the parameters cell must "
                             "declare them as `name: type = value  # comment`.")
    unknown = [k for k, v in namespace.items()
               if not k.startswith("_") and k not in declared and k not in ("In", "Out")
               and isinstance(v, PLAIN_TYPES) and not isinstance(v, types.ModuleType)]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(declared), n=1)
            hints.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ParameterError(f"{notebook}: unknown parameter(s) {', '.join(hints)}. Its parameters are: "
                             f"{', '.join(declared)}.")
    values = {}
    for name, kind in declared.items():
        if name not in namespace:
            raise ParameterError(f"{notebook}: parameter '{name}' is declared but has no value.")
        value = namespace[name]
        if not type_ok(value, kind):
            raise ParameterError(f"{notebook}: parameter '{name}' must be {getattr(kind, '__name__', kind)}, "
                                 f"got {value!r} ({type(value).__name__}).")
        values[name] = float(value) if kind is float else value
    return values


_TYPE_NAMES = {t.__name__: t for t in (bool, int, float, str, list, dict, tuple)}


def type_ok(value, kind) -> bool:
    """Whether ``value`` fits a declared type: a type, or its name as ``papermill.inspect_notebook``
    reports it (how ``mer_lib.reproduce`` checks a config before a kernel starts)."""
    kind = _TYPE_NAMES.get(kind, kind) if isinstance(kind, str) else kind
    if not isinstance(kind, type):  # typing constructs: leave to the notebook
        return True
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


@dataclass
class Context:
    """The resolved parameters of one notebook run, and where its outputs go."""
    notebook: str
    params: dict[str, Any]
    run_dir: Path
    seeds: list[int] = field(default_factory=list)

    def __getitem__(self, key: str):
        return self.params[key]

    @property
    def features(self) -> dict[str, str]:
        """Modality -> feature folder; a modality whose feature is empty (or "none") is absent."""
        return {m: f for m in MODALITIES
                if (f := self.params.get(f"{m}_feature") or "") and f.lower() != "none"}

    @property
    def label_sources(self) -> dict:
        """The dataset parameters that decide which clips are labelled, tested or pooled."""
        p = self.params
        return {"unlabelled_splits": [s.strip() for s in p.get("unlabelled_splits", "").split(",") if s.strip()],
                "test_label_file": p.get("test_label_file") or None, "test_split": p["test_split"],
                "extra_label_file": p.get("extra_label_file") or None}

    @property
    def data_root(self) -> Path:
        return Path(self.params["data_root"])

    @property
    def prior_file(self) -> Path | None:
        return Path(self.params["prior_file"]) if self.params.get("prior_file") else None

    @property
    def device(self) -> str:
        return self.params.get("device") or "auto"

    @property
    def data_note(self) -> str:
        """A sentence for every table and figure saying what data the numbers come from."""
        if (self.data_root / "demo-manifest.json").exists():
            return ("Synthetic demo data (mer_lib.data.demo, MER2023 label counts, planted signal): "
                    "demo numbers, not MER2024 numbers.")
        return f"Data: {self.data_root.name} ({self.params['train_split']} -> {self.params['test_split']})."

    def stage1_config(self, *, searched: bool = True, **changes):
        """The stage-1 settings of this notebook's parameters (the block shared by 02-06), with
        ``changes`` (e.g. ``bdcl=False``, ``pseudo_labels=True``): the one place notebooks build them,
        so two notebooks with the same parameters ask for the same stage 1 and share its checkpoints.
        With ``search_draws`` > 0, the hidden size, dropout and learning rate are those MERTools'
        random search chose (02 runs it and writes ``results/stage1_search.json``)."""
        from .models import FusionConfig
        from .stage1 import Stage1Config

        p = self.params
        model = FusionConfig(hidden_dim=p["hidden_dim"], latent_dim=p["latent_dim"], dropout=p["dropout"],
                             attention_softmax=p["attention_softmax"], architecture=p["architecture"],
                             projector=p["projector"])
        cfg = Stage1Config(model=model, epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                           weight_decay=p["weight_decay"], tau=p["tau"], lambda_inter=p["lambda_inter"],
                           lambda_intra=p["lambda_intra"], bdcl_symmetric=p["bdcl_symmetric"],
                           bdcl_include_self=p["bdcl_include_self"], standardize=p["standardize"],
                           selection=p["selection"], folds=p["folds"],
                           cold_start_epochs=p["cold_start_epochs"], pseudo_threshold=p["pseudo_threshold"],
                           pseudo_class_cap=p["pseudo_class_cap"] or None, device=self.device)
        if searched and p.get("search_draws"):
            from .search import with_settings

            chosen = self.run_dir / "results" / SEARCH_FILE
            if not chosen.exists():
                raise ParameterError(f"search_draws={p['search_draws']} but {chosen} does not exist: notebook "
                                     "02_pretraining runs the search. Fix: run 02 first in this run folder.")
            cfg = with_settings(cfg, json.loads(chosen.read_text(encoding="utf-8"))["chosen"])
        return replace(cfg, **changes)

    def stage2_config(self, **changes):
        """The stage-2 settings of this notebook's parameters (the block shared by 04 and 05)."""
        from .stage2 import Stage2Config

        p = self.params
        cfg = Stage2Config(epochs=p["tune_epochs"], batch_size=p["tune_batch_size"], lr=p["tune_lr"], head=p["head"],
                           weights=p["fusion_weights"], transformer_layers=p["transformer_layers"], heads=p["heads"],
                           prior_dropout=p["prior_dropout"], missing=p["missing"], device=self.device)
        return replace(cfg, **changes)

    def folder(self, name: str) -> Path:
        """``<run_dir>/<name>/``, created: results, figures, checkpoints, cache, priors."""
        path = self.run_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load_dataset(self, **kwargs):
        from .data import load_dataset, warn_placeholder_splits

        ds = load_dataset(self.data_root, self.features, label_file=self.params["label_file"],
                          **self.label_sources, **kwargs)
        warn_placeholder_splits(ds, self.params["train_split"])
        return ds

    def load_index(self, clips_dir: str | os.PathLike | None = None):
        """The dataset's clips without their features (priors need none): labelled clips from the
        label file, the pool from the feature files and, if given, the clip files in ``clips_dir``."""
        from .data import dataset_index, feature_file_names, scan_clips

        pool = feature_file_names(self.data_root, self.features)[0] or set()
        if clips_dir:
            scan = scan_clips(clips_dir)
            scan.warn()  # dangling links, directories named like clips, unreadable files
            pool |= set(scan.clips)
        return dataset_index(self.data_root, label_file=self.params["label_file"], pool_names=pool,
                             **self.label_sources)

    def write_results(self, results: dict) -> Path:
        """``<run_dir>/results/<notebook>.json`` (atomic), with the parameters it ran with and the peak
        memory the kernel used so far (host RSS; GPU memory where torch used one)."""
        path = self.folder("results") / f"{self.notebook}.json"
        io.write_json(path, {"notebook": self.notebook, "parameters": self.params, "seeds": self.seeds, **results,
                             "resources": peak_memory()})
        return path

    def read_results(self, notebook: str) -> dict | None:
        """Another notebook's results from this run folder, or None if it has not run."""
        path = self.run_dir / "results" / f"{notebook}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def peak_memory() -> dict:
    """Peak resident memory of this process (GB) and, where torch used a GPU, its peak allocation."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    out = {"peak_rss_gb": round(rss / (1e9 if sys.platform == "darwin" else 1e6), 3)}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["gpu_peak_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
    return out


def start(notebook: str, namespace: dict) -> Context:
    """Check a notebook's parameters, fill empty dataset parameters from the profile, resolve paths,
    and write the resolved values back into ``namespace`` (the notebook's globals)."""
    params = check_parameters(namespace, notebook)
    profile = params.get("profile") or ""
    if profile:
        base = load_profile(profile).get("dataset", {})
        for key in DATASET_KEYS:
            if key in params and params[key] in ("", None):
                params[key] = base.get(key, "")
    for key in ("data_root", "prior_file", "run_dir"):
        if params.get(key):
            params[key] = str(resolve_path(params[key]))
    run_dir = Path(params["run_dir"]) if params.get("run_dir") else RUNS_DIR / "interactive"
    params["run_dir"] = str(run_dir)
    if params.get("seeds", 1) < 1:
        raise ParameterError(f"{notebook}: parameter 'seeds' is the number of seeds to run, at least 1; "
                             f"got {params['seeds']}.")
    seeds = [params.get("seed", 0) + i for i in range(params.get("seeds", 1))]
    run_dir.mkdir(parents=True, exist_ok=True)
    # the resolved values replace the notebook's own globals: `data_root`, `train_split`, ... are then
    # the values this run uses (not the "" left in the parameters cell for the profile to fill)
    namespace.update(params)
    return Context(notebook, params, run_dir, seeds)

