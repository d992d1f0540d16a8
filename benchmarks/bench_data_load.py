"""Benchmark: dataset load time (first load packs the features, later loads use the packed cache)
and peak memory, at the demo scale and at MER2024's scale (5,030 labelled + 115,595 unlabelled
clips, dims 1024/768/4096: 360k .npy files, 2.8 GB of float32).

    python benchmarks/bench_data_load.py [--scales demo mer2024] [--root /tmp/mer-bench]

Each load runs in a fresh process so its peak RSS is its own. The file cache of the OS is dropped
where possible (root only) so the first load reads from disk; otherwise it says so.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

LOAD = """
import json, resource, sys, time
from mer_lib.data import load_dataset
from mer_lib.data.demo import FEATURES
t = time.perf_counter()
ds = load_dataset(sys.argv[1], FEATURES, progress=False)
elapsed = time.perf_counter() - t
gb = sum(a.nbytes for a in ds.features.values()) / 1e9
print(json.dumps({"seconds": elapsed, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "samples": len(ds), "feature_gb": gb, "dims": ds.dims}))
"""


def drop_os_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def measure(root: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD, str(root)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scales", nargs="+", default=["demo", "mer2024"])
    p.add_argument("--root", type=Path, default=Path("/tmp/mer-bench"))
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    args = p.parse_args()
    from mer_lib.data import make_demo_dataset

    print(f"{'scale':8s} {'samples':>8s} {'features':>9s} {'generate':>9s} {'first load':>11s} "
          f"{'cached load':>12s} {'speed-up':>9s} {'peak RSS first':>15s} {'peak RSS cached':>16s}")
    for scale in args.scales:
        root = args.root / scale
        shutil.rmtree(root, ignore_errors=True)
        t = time.perf_counter()
        make_demo_dataset(root, scale=scale, seed=0)
        generate = time.perf_counter() - t
        cold = drop_os_cache()
        first = measure(root)
        cached = measure(root)
        print(f"{scale:8s} {first['samples']:8d} {first['feature_gb']:8.2f}G {generate:8.1f}s "
              f"{first['seconds']:10.1f}s {cached['seconds']:11.2f}s {first['seconds'] / cached['seconds']:8.0f}x "
              f"{first['peak_rss_gb']:14.2f}G {cached['peak_rss_gb']:15.2f}G"
              + ("" if cold else "   (OS file cache not dropped: not root)"), flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
