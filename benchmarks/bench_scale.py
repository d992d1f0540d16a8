"""MER2024 scale: the notebook sequence's training on MER2024's sizes and dimensions, and what it costs.

    python benchmarks/bench_scale.py                      # the sequence at mer2024 scale, 1 seed
    python benchmarks/bench_scale.py --seeds 3 --only 02 03
    python benchmarks/bench_scale.py --pool-scaling       # stage 1 at 25 / 50 / 100 % of the pool

The demo generator's ``mer2024`` scale has MER2024-SEMI's sizes (5,030 labelled clips, a 115,595-clip
unlabelled pool) and the paper's feature dimensions (HuBERT-large 1024, CLIP ViT-L/14 768, BLOOM-7B
4096). The sequence runs through ``python -m mer_lib.reproduce`` exactly as a user runs it (the demo
profile's training settings, its data generated at that scale once, in ``data/demo-mer2024``), and
this script prints, from the run's manifest and results: wall time per notebook, the models each
trained, peak host memory (RSS) and GPU memory of its kernel, and stage 1's training and
pseudo-labelling throughput. ``--pool-scaling`` times stage 1 (with pseudo-labels) at a quarter,
half and all of the pool, to show how its cost grows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mer_lib.config import DATA_DIR, RUNS_DIR  # noqa: E402

DATA = DATA_DIR / "demo-mer2024"


def run_sequence(seeds: int, only: list[str], run_dir: Path) -> dict:
    config = {"demo_data": {"scale": "mer2024", "seed": 0},
              "dataset": {"data_root": str(DATA), "prior_file": str(DATA / "priors-simulated.jsonl")},
              "seeds": seeds}
    path = run_dir.with_suffix(".yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "mer_lib.reproduce", "--profile", "demo", "--config", str(path),
           "--run-dir", str(run_dir), "--no-publish", *(["--only", *only] if only else [])]
    subprocess.run(cmd, cwd=ROOT, check=True)
    print(f"sequence wall time (data generation and loading included): {time.perf_counter() - started:.0f} s")
    return json.loads((run_dir / "manifest.json").read_text())


def report(run_dir: Path, manifest: dict) -> None:
    print(f"\ndevice: {manifest['device']}")
    print(f"{'notebook':22s} {'seconds':>8s} {'models':>7s} {'peak RSS GB':>12s} {'GPU peak GB':>12s}")
    for nb in manifest["notebooks"]:
        res = nb.get("resources") or {}
        print(f"{nb['name']:22s} {nb['seconds']:8.0f} {nb.get('trained', 0):7d} "
              f"{res.get('peak_rss_gb', float('nan')):12.2f} {res.get('gpu_peak_gb', float('nan')):12.2f}")
    print(f"{'all':22s} {manifest['seconds']:8.0f} {sum(n.get('trained', 0) for n in manifest['notebooks']):7d} "
          f"{max((n.get('resources') or {}).get('peak_rss_gb', 0) for n in manifest['notebooks']):12.2f}")
    for name in ("02_pretraining", "03_pseudo_labeling"):
        path = run_dir / "results" / f"{name}.json"
        if path.exists():
            throughput(name, json.loads(path.read_text()))


def throughput(name: str, results: dict) -> None:
    """Stage 1's training (clips per second of an epoch) and pseudo-labelling (pool clips per second)."""
    runs = [run for entry in (results.get("methods") or {}).values() for run in entry.get("runs", [])]
    train = [r["train_clips_per_s"] for r in runs if r.get("train_clips_per_s")]
    pseudo = [r["pseudo_clips_per_s"] for r in runs if r.get("pseudo_clips_per_s")]
    if train:
        print(f"{name}: training {sum(train) / len(train):,.0f} clips/s"
              + (f"; pseudo-labelling {sum(pseudo) / len(pseudo):,.0f} clips/s" if pseudo else ""))


def pool_scaling(seeds: int) -> None:
    import numpy as np

    from mer_lib.data import load_dataset, make_demo_dataset
    from mer_lib.data.demo import FEATURES
    from mer_lib.models import FusionConfig
    from mer_lib.stage1 import Stage1Config, fit, validation_splits

    os.environ.setdefault("MER_LIB_PROGRESS", "off")
    make_demo_dataset(DATA, scale="mer2024")
    ds = load_dataset(DATA, FEATURES, progress=False)
    cfg = Stage1Config(model=FusionConfig(hidden_dim=64, latent_dim=64), epochs=20, batch_size=256,
                       pseudo_labels=True, cold_start_epochs=6)
    tr, va = validation_splits(ds.labels, ds.indices("train_corpus"), cfg, 0)[0]
    pool = np.flatnonzero(ds.labels < 0)
    print(f"\nstage 1 with pseudo-labels, {cfg.epochs} epochs, pool of {len(pool):,} clips at most")
    print(f"{'pool share':>10s} {'pool clips':>10s} {'seconds':>8s} {'s per 1k clip-epochs':>21s}")
    for share in (0.25, 0.5, 1.0):
        part = np.random.default_rng(0).choice(pool, int(share * len(pool)), replace=False)
        started = time.perf_counter()
        fit(ds, tr, va, cfg, seed=0, pool_idx=np.sort(part))
        seconds = time.perf_counter() - started
        clip_epochs = (cfg.epochs - cfg.cold_start_epochs) * (len(part) + len(tr)) + cfg.cold_start_epochs * len(tr)
        print(f"{share:10.0%} {len(part):10,d} {seconds:8.0f} {1000 * seconds / clip_epochs:21.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--only", nargs="*", default=[], help="notebooks to run (default: the sequence)")
    p.add_argument("--run-dir", type=Path, default=RUNS_DIR / "bench-scale")
    p.add_argument("--pool-scaling", action="store_true", help="also time stage 1 at 25/50/100 %% of the pool")
    p.add_argument("--report-only", action="store_true", help="print the report of an existing run folder")
    args = p.parse_args()
    manifest = json.loads((args.run_dir / "manifest.json").read_text()) if args.report_only else \
        run_sequence(args.seeds, args.only, args.run_dir)
    report(args.run_dir, manifest)
    if args.pool_scaling:
        pool_scaling(args.seeds)


if __name__ == "__main__":
    main()
