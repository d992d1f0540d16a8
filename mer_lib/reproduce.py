"""Run the notebook sequence headlessly and regenerate every table and figure of the paper.

    python -m mer_lib.reproduce --profile demo                       # the README's main command
    python -m mer_lib.reproduce --profile mer2024 --config paths.yaml
    python -m mer_lib.reproduce --config my-dataset.yaml             # any dataset in the MER layout
    python -m mer_lib.reproduce --profile demo --only 04 05 --run-dir runs/demo-...   # re-run a part

Each notebook runs with papermill (kernel ``mer-lib``, working directory ``notebooks/``, a per-cell
timeout); executed copies go to ``<run_dir>/notebooks/``, results to ``<run_dir>/results/``,
artifacts to ``<run_dir>/figures/``. The project's ``figures/`` is updated only by a successful run
of the whole sequence, or with ``--publish``: a partial run (``--only``, a scratch dataset) keeps
its artifacts in its run folder. The first failing notebook stops the run with its name and the
failing cell's error (exit status 1).

Before anything runs, the config is checked against every notebook's declared parameters: an
unknown key (under any notebook, ``all`` included) or a value of the wrong type is a one-line
error that suggests the closest name (exit status 2, as for every config error).

``<run_dir>/manifest.json`` records the config, seeds, versions, git commit, device, timings,
which notebook produced which artifact, and the status: ``running``, then ``ok``, ``failed`` or
``killed`` (SIGTERM, Ctrl-C). One run at a time per run folder (a lock in it); a manifest left
``running`` by a run that died without a word (SIGKILL, power loss) is marked ``killed`` by the
next run and kept under ``<run_dir>/manifests/``, as every earlier manifest of the folder is.
"""
from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import io
from .config import FIGURES_DIR, LABEL_FILE, NOTEBOOKS_DIR, PROJ_ROOT, RUNS_DIR, resolve_path
from .kernel import ensure_kernel
from .notebook import type_ok
from .profiles import DATASET_KEYS, ConfigError, check_config, load_profile, merge, read_config, suggest

SEQUENCE = ("01_prior_generation", "02_pretraining", "03_pseudo_labeling", "04_prior_tuning",
            "05_ablations", "06_tsne_plots")
DATASET_DEFAULTS = {"label_file": LABEL_FILE, "train_split": "train_corpus", "prior_file": "",
                    "unlabelled_splits": "", "test_label_file": "", "extra_label_file": "", "audio_feature": "",
                    "video_feature": "", "text_feature": "", "device": "auto"}


def notebook_path(name: str) -> Path:
    return NOTEBOOKS_DIR / f"{name}.ipynb"


def available_notebooks() -> list[str]:
    return sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def select(only: list[str] | None) -> list[str]:
    """Notebooks to run: the whole sequence, or those named (by full name or number, e.g. 04)."""
    if not only:
        return list(SEQUENCE)
    available = available_notebooks()
    chosen = []
    for token in only:
        match = [n for n in available if n == token or n.split("_")[0] == token]
        if not match:
            raise ConfigError(f"--only {token}: no such notebook; available: {', '.join(available)}")
        chosen += match
    return sorted(set(chosen))


def notebook_parameters(config: dict, name: str, run_dir: Path, declared: dict) -> dict:
    """Shared dataset parameters, then ``notebooks.all`` (for the notebooks that declare a key: one
    place for settings several notebooks must agree on, such as stage 1's, so they share
    checkpoints), then the notebook's own entries (which it must declare)."""
    dataset = {**DATASET_DEFAULTS, **config.get("dataset", {})}
    for key, why in (config.get("required") or {}).items():
        if not dataset.get(key):
            raise ConfigError(f"the config gives no dataset.{key}: {why}")
    missing = [k for k in ("data_root", "test_split") if not dataset.get(k)]
    if not any(dataset.get(f"{m}_feature") for m in ("audio", "video", "text")):
        missing.append("audio_feature, video_feature or text_feature")
    if missing:
        raise ConfigError(f"the config names no {', '.join(missing)} (section 'dataset'). Fix: add them; "
                          "see mer_lib/profiles/demo.yaml for the keys")
    for key in ("data_root", "prior_file"):
        if dataset.get(key):
            dataset[key] = str(resolve_path(dataset[key]))
    notebooks = config.get("notebooks") or {}
    shared = {k: v for k, v in (notebooks.get("all") or {}).items() if k in declared}
    return {"profile": "", **{k: dataset[k] for k in DATASET_KEYS}, "run_dir": str(run_dir),
            "seed": config.get("seed", 0), "seeds": config.get("seeds", 3),
            **shared, **(notebooks.get(name) or {})}


def declared_parameters(name: str) -> dict:
    import papermill

    logging.getLogger("papermill").setLevel(logging.WARNING)  # it logs "Input Notebook" on inspection
    return papermill.inspect_notebook(str(notebook_path(name)))


def check_config_against_notebooks(config: dict, declared: dict[str, dict]) -> None:
    """Every key under ``notebooks.<name>`` must be a parameter of that notebook, every key under
    ``notebooks.all`` one of at least one notebook, and every value (``dataset`` too) must have the
    type of each notebook that declares its key. ``declared`` holds every notebook's parameters
    (``papermill.inspect_notebook``), not only those of the notebooks a run selects, so a mistyped
    key fails even when its notebook is not part of this run."""
    sections = config.get("notebooks") or {}
    unknown = [nb for nb in sections if nb != "all" and nb not in declared]
    if unknown:
        raise ConfigError(f"notebooks: unknown notebook(s) {suggest(unknown, declared)}. Fix: use one of "
                          f"{', '.join(declared)}, or 'all' for every notebook that declares a key.")
    everywhere = sorted({k for params in declared.values() for k in params})
    for section, values in sections.items():
        allowed = everywhere if section == "all" else list(declared[section])
        unknown = [k for k in values or {} if k not in allowed]
        if unknown:
            owner = "any notebook" if section == "all" else f"{section} (it declares {', '.join(allowed)})"
            verb = "is not a parameter" if len(unknown) == 1 else "are not parameters"
            raise ConfigError(f"notebooks.{section}: {suggest(unknown, allowed)} {verb} of {owner}. "
                              "Fix: correct the name.")
    values = [("dataset", key, value, list(declared)) for key, value in (config.get("dataset") or {}).items()]
    values += [(f"notebooks.{section}", key, value, list(declared) if section == "all" else [section])
               for section, entries in sections.items() for key, value in (entries or {}).items()]
    for where, key, value, notebooks in values:
        for nb in notebooks:
            kind = declared[nb].get(key, {}).get("inferred_type_name")
            if kind and not type_ok(value, kind):
                raise ConfigError(f"{where}.{key}: must be {kind} (as {nb} declares it), the config gives "
                                  f"{value!r}. Fix: write a {kind} there.")


def check_against_notebook(name: str, params: dict, declared: dict) -> None:
    """Fail before anything runs if a parameter is not declared by the notebook or has the wrong type."""
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ConfigError(f"{name}: unknown parameter(s) {suggest(unknown, declared)}; the notebook declares "
                          f"{', '.join(declared)}")
    for key, value in params.items():
        kind = declared[key]["inferred_type_name"]
        if not type_ok(value, kind):
            raise ConfigError(f"{name}: parameter '{key}' must be {kind}, the config gives {value!r}")


def run(config: dict, run_dir: Path, notebooks: list[str], *, timeout: int, label: str,
        publish: bool | None = None) -> int:
    """Run ``notebooks`` in order into ``run_dir``; the exit status (0 ok, 1 failed, 128+signal when
    stopped). ``publish``: copy the artifacts to ``figures/`` (default: when the whole sequence ran)."""
    check_config(config)
    declared = {nb: declared_parameters(nb) for nb in available_notebooks()}
    check_config_against_notebooks(config, declared)
    params_of = {nb: notebook_parameters(config, nb, run_dir, declared[nb]) for nb in notebooks}
    for nb in notebooks:
        check_against_notebook(nb, params_of[nb], declared[nb])
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: this is a file, not a folder. Fix: pass a folder "
                          "(a new one, or an earlier run's to resume it).")
    try:
        (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--run-dir {run_dir}: cannot create the run folder ({exc.strerror or exc}). "
                          "Fix: pass a folder you can write to.") from None
    with run_folder_lock(run_dir):
        return _run_locked(config, run_dir, notebooks, params_of, timeout=timeout, label=label,
                           publish=notebooks == list(SEQUENCE) if publish is None else publish)


def _run_locked(config, run_dir: Path, notebooks, params_of, *, timeout: int, label: str,
                publish: bool) -> int:
    _keep_previous_manifest(run_dir)
    logging.getLogger("papermill").setLevel(logging.INFO)
    if config.get("demo_data"):
        _ensure_demo_data(config, params_of[notebooks[0]]["data_root"])
    kernel = ensure_kernel()
    os.environ["MER_LIB_PROGRESS"] = "log"  # kernels inherit it: plain progress lines in the log
    # kernels import the same mer_lib as this process (a checkout other than the installed one, too)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJ_ROOT), os.environ.get("PYTHONPATH")]))

    manifest = _manifest_header(config, run_dir, label, params_of[notebooks[0]]["seeds"], kernel)
    status, entry = 0, None
    with _signals_raise_stop():
        try:
            io.write_json(run_dir / "manifest.json", manifest)
            for i, nb in enumerate(notebooks, 1):
                print(f"[{i}/{len(notebooks)}] {nb} ...", flush=True)
                entry = {"name": nb, "output": str(run_dir / "notebooks" / f"{nb}.ipynb"),
                         "parameters": params_of[nb], "status": "running"}
                manifest["notebooks"].append(entry)
                _run_notebook(entry, run_dir, kernel, timeout, manifest)
                if entry["status"] != "ok":
                    status = 1
                    break
                io.write_json(run_dir / "manifest.json", manifest)
                print(f"    done in {entry['seconds']:.0f} s" + (f"; wrote {', '.join(entry['artifacts'])}"
                                                                 if entry["artifacts"] else ""), flush=True)
        except _Stop as stop:
            status = 128 + stop.signum
            if entry is not None and entry["status"] == "running":
                entry.update(status="killed", error=f"stopped by {stop.name}")
            manifest["killed_by"] = stop.name
        except Exception as err:  # a bug here or in papermill: record it, then show the traceback
            manifest.update(status="failed", error=f"{type(err).__name__}: {err}", finished=_now())
            io.write_json(run_dir / "manifest.json", manifest)
            raise
        manifest["finished"] = _now()
        manifest["seconds"] = round(sum(e.get("seconds", 0) for e in manifest["notebooks"]), 1)
        if status:
            manifest["status"] = "failed" if status == 1 else "killed"
            if entry is not None:
                manifest["failed_notebook"] = entry["name"]
                print(f"{manifest['status'].upper()}: {entry['name']}, {entry.get('error')}\n"
                      f"  executed copy: {entry['output']}", file=sys.stderr, flush=True)
            io.write_json(run_dir / "manifest.json", manifest)
            print(f"  manifest: {run_dir / 'manifest.json'}", file=sys.stderr, flush=True)
            return status
        manifest.update(status="ok", published=publish)
        where = run_dir / "figures"
        if publish:
            FIGURES_DIR.mkdir(exist_ok=True)
            for artifact in manifest["artifacts"]:
                shutil.copy2(run_dir / artifact, FIGURES_DIR / Path(artifact).name)
            where = f"{FIGURES_DIR} and {where}"
        elif manifest["artifacts"]:
            why = "--no-publish" if notebooks == list(SEQUENCE) else "a partial run publishes nothing"
            where = f"{where} only ({FIGURES_DIR} is left as it was: {why}; pass --publish to copy them there)"
        io.write_json(run_dir / "manifest.json", manifest)
    logging.getLogger("papermill").setLevel(logging.WARNING)
    print(f"All {len(notebooks)} notebooks ran in {manifest['seconds']:.0f} s; artifacts in {where}; "
          f"manifest {run_dir / 'manifest.json'}", flush=True)
    return 0


def _run_notebook(entry: dict, run_dir: Path, kernel: str, timeout: int, manifest: dict) -> None:
    """Execute one notebook; fill in its entry (status, error, seconds, artifacts)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    before = _snapshot(run_dir / "figures")
    checkpoints_before = set(_snapshot(run_dir / "checkpoints"))
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook_path(entry["name"])), entry["output"], parameters=entry["parameters"],
            kernel_name=kernel, cwd=str(NOTEBOOKS_DIR), execution_timeout=timeout, log_output=True,
            progress_bar=False)
        entry["status"] = "ok"
    except PapermillExecutionError as err:
        entry.update(status="failed", error=f"cell {err.exec_count}: {err.ename}: {err.evalue}")
    finally:  # also when stopped: what it wrote so far is in the manifest
        entry["seconds"] = round(time.perf_counter() - started, 1)
        entry["artifacts"] = sorted(f for f, stamp in _snapshot(run_dir / "figures").items()
                                    if before.get(f) != stamp)
        for artifact in entry["artifacts"]:
            manifest["artifacts"][f"figures/{artifact}"] = entry["name"]
        # what it cost: the models it trained (one checkpoint each) and its kernel's peak memory
        entry["trained"] = len(set(_snapshot(run_dir / "checkpoints")) - checkpoints_before)
        results = run_dir / "results" / f"{entry['name']}.json"
        if results.exists():
            entry["resources"] = json.loads(results.read_text(encoding="utf-8")).get("resources")


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``<run_dir>/.lock`` (an flock, released by the OS when this process dies, however it
    dies) for the whole run, so a second run on the same folder is refused instead of training
    beside the first and overwriting its manifest."""
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the kernels
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 100).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(f"--run-dir {run_dir}: another run is using this run folder (pid {holder}). "
                          "Fix: wait for it to finish or stop it, or pass another --run-dir.") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _keep_previous_manifest(run_dir: Path) -> None:
    """Move an earlier run's manifest to ``manifests/``; one still ``running`` is marked ``killed``
    (this process holds the lock, so its writer is gone)."""
    path = run_dir / "manifest.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {"status": "unreadable"}
    stamp = str(old.get("started", "unknown")).replace(":", "")
    kept = run_dir / "manifests" / f"manifest-{stamp}.json"
    if old.get("status") == "running":
        old.update(status="killed", killed_note=f"marked killed at {_now()} by the next run on this folder: "
                   "the run stopped without recording why (SIGKILL, power loss, a crash of Python)")
        print(f"the previous run in this folder (started {old.get('started')}) left its manifest 'running' "
              f"and no longer holds the folder's lock: it was killed; marked 'killed' and kept as {kept}",
              flush=True)
    io.write_json(kept, old)
    path.unlink()


class _Stop(BaseException):
    """SIGTERM or SIGINT during a run: unwinds out of papermill (which shuts its kernel down) so the
    manifest records ``killed``; a BaseException, so no ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum, self.name = signum, signal.Signals(signum).name


@contextmanager
def _signals_raise_stop() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def stop(signum, _frame):
        raise _Stop(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mer_lib.reproduce", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", help="shipped profile: demo (synthetic data, generated if missing) or mer2024")
    p.add_argument("--config", type=Path, help="YAML file overriding the profile (or standing alone); "
                   "relative paths in it are taken from the project root")
    p.add_argument("--run-dir", type=Path, help="run folder (default: runs/<profile>-<time>); an existing "
                   "one resumes from its checkpoints")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (name or number)")
    p.add_argument("--seeds", type=_positive_int, help="number of seeds (overrides the config)")
    p.add_argument("--timeout", type=_positive_int,
                   help="per-cell execution timeout in seconds (default 3600)")
    p.add_argument("--publish", action=argparse.BooleanOptionalAction, default=None,
                   help="copy the run's tables and figures to figures/ (default: only after a successful "
                   "run of the whole sequence; --no-publish never)")
    args = p.parse_args(argv)
    if not args.profile and not args.config:
        p.error("give --profile (demo, mer2024) and/or --config FILE")
    try:
        config = load_profile(args.profile) if args.profile else {}
        if args.config:
            config = merge(config, read_config(args.config))
        if args.seeds is not None:
            config["seeds"] = args.seeds
        label = args.profile or args.config.stem
        run_dir = resolve_path(args.run_dir) if args.run_dir else \
            RUNS_DIR / f"{label}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        notebooks = select(args.only)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        timeout = args.timeout or config.get("timeout", 3600)
        print(f"run folder: {run_dir}", flush=True)
        print(json.dumps({"seeds": config.get("seeds", 3), "dataset": config.get("dataset", {})}, indent=None,
                         default=str), flush=True)
        return run(config, run_dir, notebooks, timeout=timeout, label=label, publish=args.publish)
    except ConfigError as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
