"""Run configurations: shipped profiles (``mer_lib/profiles/*.yaml``) and user config files.

A configuration has these optional sections: ``dataset`` (the parameters every notebook shares),
``required`` (dataset keys a run cannot do without, each with where its value comes from: a profile
names them, the user's config gives them), ``seed`` (the first seed), ``seeds`` (how many),
``timeout`` (seconds per cell), ``notebooks`` (per-notebook parameters, and ``all`` for every notebook
that declares a key) and ``demo_data`` (generate the demo dataset at ``data_root`` when it is missing).
A user file overrides a profile key by key. Every mistake is a :class:`ConfigError`: one line naming
the key and the fix. The names under ``notebooks`` are checked against the notebooks themselves by
``mer_lib.reproduce``.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from .config import PROFILES_DIR

DATASET_KEYS = ("data_root", "label_file", "audio_feature", "video_feature", "text_feature",
                "train_split", "test_split", "unlabelled_splits", "test_label_file", "extra_label_file",
                "prior_file", "device")
SECTIONS = ("dataset", "required", "seed", "seeds", "notebooks", "demo_data", "timeout")
DEMO_DATA_KEYS = ("scale", "seed")  # the arguments of mer_lib.data.make_demo_dataset


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message is one line with the key and the fix."""


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def read_config(path: str | Path) -> dict:
    """A YAML config file, checked by :func:`check_config`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found" + (" (it is a folder)" if path.is_dir() else "")
                          + f". Fix: check the path (a relative one is taken from {Path.cwd()}).")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{at} ({problem}). Fix: correct the file "
                          "(mer_lib/profiles/demo.yaml shows the layout).") from None
    return check_config(config, str(path))


def check_config(config: dict, source: str = "config") -> dict:
    """Raise :class:`ConfigError` on an unknown section or key, or a value of the wrong type."""
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: a config is a mapping of sections {list(SECTIONS)}, not "
                          f"{type(config).__name__}. Fix: see mer_lib/profiles/demo.yaml.")
    _known_keys(config, SECTIONS, source, "section")
    for section, keys in (("dataset", DATASET_KEYS), ("required", DATASET_KEYS), ("demo_data", DEMO_DATA_KEYS),
                          ("notebooks", None)):
        value = config.get(section)
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{source}: section '{section}' must be a mapping (key: value lines), not "
                              f"{value!r}. Fix: see mer_lib/profiles/demo.yaml.")
        if keys and value:
            _known_keys(value, keys, source, f"key of '{section}'")
    for name, entries in (config.get("notebooks") or {}).items():
        if entries is not None and not isinstance(entries, dict):
            raise ConfigError(f"{source}: notebooks.{name} must be a mapping of parameters, not {entries!r}.")
    demo = config.get("demo_data") or {}
    checks = [("seed", config.get("seed"), 0, 0), ("seeds", config.get("seeds"), 1, 3),
              ("timeout", config.get("timeout"), 1, 3600), ("demo_data.seed", demo.get("seed"), 0, 0)]
    for key, value, least, example in checks:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value is not None and not (whole and value >= least):
            raise ConfigError(f"{source}: {key} must be an integer >= {least}, not {value!r}. Fix: write "
                              f"e.g. '{key.split('.')[-1]}: {example}'.")
    if demo.get("scale") is not None and not isinstance(demo["scale"], str):
        raise ConfigError(f"{source}: demo_data.scale must be a scale name (demo, tiny, mer2024), "
                          f"not {demo['scale']!r}.")
    return config


def _known_keys(mapping: dict, allowed, source: str, what: str) -> None:
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise ConfigError(f"{source}: unknown {what} {suggest(unknown, allowed)}; allowed: "
                          f"{', '.join(allowed)}.")


def suggest(names, allowed) -> str:
    """``'hiden_dim' (did you mean 'hidden_dim'?), 'x'``: names with their closest allowed name."""
    out = []
    for name in names:
        close = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1)
        out.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return ", ".join(out)


def load_profile(name: str) -> dict:
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown profile {suggest([name], available_profiles())}; shipped profiles: "
                          f"{', '.join(available_profiles())}.")
    return read_config(path)


def merge(base: dict, override: dict) -> dict:
    """Deep merge of two configs: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
