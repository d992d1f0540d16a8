"""Run configurations: shipped profiles (``mer_lib/profiles/*.yaml``) and user config files.

A configuration has these optional sections: ``dataset`` (the parameters every notebook shares),
``required`` (dataset keys a run cannot do without, each with where its value comes from: a profile
names them, the user's config gives them), ``seeds`` (how many), ``notebooks`` (per-notebook
parameters) and ``demo_data`` (generate the demo dataset at ``data_root`` when it is missing). A user
file overrides a profile key by key.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .config import PROFILES_DIR

DATASET_KEYS = ("data_root", "label_file", "audio_feature", "video_feature", "text_feature",
                "train_split", "test_split", "unlabelled_splits", "test_label_file", "extra_label_file",
                "prior_file", "device")
SECTIONS = ("dataset", "required", "seed", "seeds", "notebooks", "demo_data", "timeout")


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def read_config(path: str | Path) -> dict:
    """A YAML config file, checked for unknown sections and dataset keys."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: config file not found")
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a config file is a mapping of sections {list(SECTIONS)}")
    unknown = set(config) - set(SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: {list(SECTIONS)}")
    bad = set(config.get("dataset") or {}) - set(DATASET_KEYS)
    if bad:
        raise ValueError(f"{path}: unknown dataset key(s) {sorted(bad)}; allowed: {list(DATASET_KEYS)}")
    return config


def load_profile(name: str) -> dict:
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown profile '{name}'; shipped profiles: {available_profiles()}")
    return read_config(path)


def merge(base: dict, override: dict) -> dict:
    """Deep merge of two configs: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
