"""Run the notebook sequence headlessly and regenerate every table and figure of the paper.

    python -m mer_lib.reproduce --profile demo                       # the README's main command
    python -m mer_lib.reproduce --profile mer2024 --config paths.yaml
    python -m mer_lib.reproduce --config my-dataset.yaml             # any dataset in the MER layout
    python -m mer_lib.reproduce --profile demo --only 04 05 --run-dir runs/demo-...   # re-run a part

Each notebook runs with papermill (kernel ``mer-lib``, working directory ``notebooks/``, a per-cell
timeout); executed copies go to ``<run_dir>/notebooks/``, results to ``<run_dir>/results/``,
artifacts to ``<run_dir>/figures/`` and, once the run succeeds, to ``figures/``. The first failing
notebook stops the run with its name and the failing cell's error (exit status 1).
``<run_dir>/manifest.json`` records the config, seeds, versions, git commit, device, timings and
which notebook produced which artifact.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import io
from .config import FIGURES_DIR, LABEL_FILE, NOTEBOOKS_DIR, PROJ_ROOT, RUNS_DIR
from .kernel import ensure_kernel
from .profiles import DATASET_KEYS, load_profile, merge, read_config

SEQUENCE = ("01_prior_generation", "02_pretraining", "03_pseudo_labeling", "04_prior_tuning",
            "05_ablations", "06_tsne_plots")
DATASET_DEFAULTS = {"label_file": LABEL_FILE, "train_split": "train_corpus", "prior_file": "",
                    "unlabelled_splits": "", "test_label_file": "", "extra_label_file": "", "audio_feature": "",
                    "video_feature": "", "text_feature": "", "device": "auto"}


def notebook_path(name: str) -> Path:
    return NOTEBOOKS_DIR / f"{name}.ipynb"


def select(only: list[str] | None) -> list[str]:
    """Notebooks to run: the whole sequence, or those named (by full name or number, e.g. 04)."""
    if not only:
        return list(SEQUENCE)
    available = sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    chosen = []
    for token in only:
        match = [n for n in available if n == token or n.split("_")[0] == token]
        if not match:
            raise SystemExit(f"--only {token}: no such notebook; available: {', '.join(available)}")
        chosen += match
    return sorted(set(chosen))


def notebook_parameters(config: dict, name: str, run_dir: Path, declared: dict) -> dict:
    """Shared dataset parameters, then ``notebooks.all`` (for the notebooks that declare a key: one
    place for settings several notebooks must agree on, such as stage 1's, so they share
    checkpoints), then the notebook's own entries (which it must declare)."""
    dataset = {**DATASET_DEFAULTS, **config.get("dataset", {})}
    for key, why in (config.get("required") or {}).items():
        if not dataset.get(key):
            raise SystemExit(f"the config gives no dataset.{key}: {why}")
    missing = [k for k in ("data_root", "test_split") if not dataset.get(k)]
    if not any(dataset.get(f"{m}_feature") for m in ("audio", "video", "text")):
        missing.append("audio_feature, video_feature or text_feature")
    if missing:
        raise SystemExit(f"the config names no {', '.join(missing)} (section 'dataset'); see "
                         "mer_lib/profiles/demo.yaml for the keys")
    for key in ("data_root", "prior_file"):
        if dataset.get(key):
            dataset[key] = str(_absolute(dataset[key]))
    notebooks = config.get("notebooks") or {}
    shared = {k: v for k, v in (notebooks.get("all") or {}).items() if k in declared}
    return {"profile": "", **{k: dataset[k] for k in DATASET_KEYS}, "run_dir": str(run_dir),
            "seed": int(config.get("seed", 0)), "seeds": int(config.get("seeds", 3)),
            **shared, **(notebooks.get(name) or {})}


def declared_parameters(name: str) -> dict:
    import papermill

    logging.getLogger("papermill").setLevel(logging.WARNING)  # it logs "Input Notebook" on inspection
    return papermill.inspect_notebook(str(notebook_path(name)))


def check_against_notebook(name: str, params: dict, declared: dict) -> None:
    """Fail before anything runs if a parameter is not declared by the notebook or has the wrong type."""
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise SystemExit(f"{name}: unknown parameter(s) {unknown} in the config; the notebook declares "
                         f"{', '.join(declared)}")
    for key, value in params.items():
        kind = declared[key]["inferred_type_name"]
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "bool": isinstance(value, bool), "str": isinstance(value, str)}.get(kind, True)
        if not ok:
            raise SystemExit(f"{name}: parameter '{key}' must be {kind}, the config gives {value!r}")


def run(config: dict, run_dir: Path, notebooks: list[str], *, timeout: int, label: str) -> int:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    unknown = set(config.get("notebooks") or {}) - set(SEQUENCE) - {"all"} - {p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")}
    if unknown:
        raise SystemExit(f"the config's 'notebooks' section names unknown notebook(s) {sorted(unknown)}")
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    params_of = {nb: notebook_parameters(config, nb, run_dir, declared[nb]) for nb in notebooks}
    for nb in notebooks:
        check_against_notebook(nb, params_of[nb], declared[nb])
    logging.getLogger("papermill").setLevel(logging.INFO)
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    if config.get("demo_data"):
        _ensure_demo_data(config, params_of[notebooks[0]]["data_root"])
    kernel = ensure_kernel()
    os.environ["MER_LIB_PROGRESS"] = "log"  # kernels inherit it: plain progress lines in the log
    # kernels import the same mer_lib as this process (a checkout other than the installed one, too)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJ_ROOT), os.environ.get("PYTHONPATH")]))

    manifest = _manifest_header(config, run_dir, label, params_of[notebooks[0]]["seeds"], kernel)
    status = 0
    for i, nb in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {nb} ...", flush=True)
        before = _snapshot(run_dir / "figures")
        started = time.perf_counter()
        entry = {"name": nb, "output": str(run_dir / "notebooks" / f"{nb}.ipynb"), "parameters": params_of[nb]}
        try:
            papermill.execute_notebook(
                str(notebook_path(nb)), entry["output"], parameters=params_of[nb], kernel_name=kernel,
                cwd=str(NOTEBOOKS_DIR), execution_timeout=timeout, log_output=True, progress_bar=False)
            entry["status"] = "ok"
        except PapermillExecutionError as err:
            entry.update(status="failed", error=f"cell {err.exec_count}: {err.ename}: {err.evalue}")
            print(f"FAILED: {nb}, cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                  f"  executed copy: {entry['output']}", file=sys.stderr, flush=True)
            status = 1
        entry["seconds"] = round(time.perf_counter() - started, 1)
        entry["artifacts"] = sorted(f for f, stamp in _snapshot(run_dir / "figures").items() if before.get(f) != stamp)
        manifest["notebooks"].append(entry)
        for artifact in entry["artifacts"]:
            manifest["artifacts"][f"figures/{artifact}"] = nb
        manifest["status"] = "failed" if status else "running"
        io.write_json(run_dir / "manifest.json", manifest)
        if status:
            manifest["failed_notebook"] = nb
            break
        print(f"    done in {entry['seconds']:.0f} s" + (f"; wrote {', '.join(entry['artifacts'])}"
                                                         if entry["artifacts"] else ""), flush=True)
    manifest["finished"] = _now()
    manifest["seconds"] = round(sum(e["seconds"] for e in manifest["notebooks"]), 1)
    if status == 0:
        manifest["status"] = "ok"
        FIGURES_DIR.mkdir(exist_ok=True)
        for artifact in manifest["artifacts"]:
            shutil.copy2(run_dir / artifact, FIGURES_DIR / Path(artifact).name)
        print(f"All {len(notebooks)} notebooks ran in {manifest['seconds']:.0f} s; artifacts in "
              f"{FIGURES_DIR} and {run_dir / 'figures'}; manifest {run_dir / 'manifest.json'}")
    io.write_json(run_dir / "manifest.json", manifest)
    logging.getLogger("papermill").setLevel(logging.WARNING)
    return status


def _ensure_demo_data(config: dict, data_root: str) -> None:
    from .data import make_demo_dataset

    demo = config["demo_data"]
    if not (Path(data_root) / config.get("dataset", {}).get("label_file", LABEL_FILE)).exists():
        print(f"generating the demo dataset ({demo.get('scale', 'demo')} scale) in {data_root} ...", flush=True)
    make_demo_dataset(data_root, scale=demo.get("scale", "demo"), seed=int(demo.get("seed", 0)))


def _snapshot(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*") if p.is_file()} if folder.exists() else {}


def _manifest_header(config: dict, run_dir: Path, label: str, seeds: int, kernel: str) -> dict:
    return {"label": label, "config": config, "run_dir": str(run_dir), "seeds": seeds,
            "started": _now(), "status": "running", "kernel": kernel, "python": sys.executable,
            "versions": _versions(), "git": _git(), "device": _device(), "notebooks": [], "artifacts": {}}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("mer-lib", "torch", "numpy", "pandas", "scikit-learn", "transformers", "papermill",
                "matplotlib", "umap-learn", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _git() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJ_ROOT, capture_output=True, text=True, check=False).stdout.strip()
    try:
        return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}
    except OSError:
        return {"commit": None, "dirty": None}


def _device() -> dict:
    import torch

    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    return {"type": "cpu", "name": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def _absolute(path: str) -> Path:
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else (PROJ_ROOT / p).resolve()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mer_lib.reproduce", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", help="shipped profile: demo (synthetic data, generated if missing) or mer2024")
    p.add_argument("--config", type=Path, help="YAML file overriding the profile (or standing alone); "
                   "relative paths in it are taken from the project root")
    p.add_argument("--run-dir", type=Path, help="run folder (default: runs/<profile>-<time>); an existing "
                   "one resumes from its checkpoints")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (name or number)")
    p.add_argument("--seeds", type=int, help="number of seeds (overrides the config)")
    p.add_argument("--timeout", type=int, help="per-cell execution timeout in seconds (default 3600)")
    args = p.parse_args(argv)
    if not args.profile and not args.config:
        p.error("give --profile (demo, mer2024) and/or --config FILE")
    config = load_profile(args.profile) if args.profile else {}
    if args.config:
        config = merge(config, read_config(args.config))
    if args.seeds is not None:
        config["seeds"] = args.seeds
    label = args.profile or args.config.stem
    run_dir = _absolute(str(args.run_dir)) if args.run_dir else \
        RUNS_DIR / f"{label}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    timeout = args.timeout or int(config.get("timeout", 3600))
    print(f"run folder: {run_dir}", flush=True)
    print(json.dumps({"seeds": config.get("seeds", 3), "dataset": config.get("dataset", {})}, indent=None), flush=True)
    return run(config, run_dir, select(args.only), timeout=timeout, label=label)


if __name__ == "__main__":
    sys.exit(main())
