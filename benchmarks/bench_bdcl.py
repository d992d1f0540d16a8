"""Benchmark: BDCL forward+backward against pytorch-metric-learning's SupConLoss on the same batch.

SupConLoss sees the N*M embeddings with their labels (one supervised contrastive loss over all
modalities); BDCL computes its inter- and intra-modality terms with class-balanced denominators.
Target: at most 1.5x SupConLoss at N = 1024 (M = 3, D = 128).

    python benchmarks/bench_bdcl.py [--sizes 256 1024 4096] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from pytorch_metric_learning.losses import SupConLoss

from mer_lib.losses import bdcl_loss

MER_SHARES = [871, 822, 689, 383, 462, 146]  # class sizes of MER2023's training split


def timed(fn, z, repeats: int, device: str) -> float:
    for _ in range(2):  # warm-up
        fn(z).backward()
    times = []
    for _ in range(repeats):
        z.grad = None
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(z).backward()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--modalities", type=int, default=3)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.manual_seed(0)
    shares = torch.tensor(MER_SHARES, dtype=torch.float)
    supcon = SupConLoss(temperature=0.1)
    print(f"device={args.device} threads={torch.get_num_threads()} M={args.modalities} D={args.dim} "
          f"torch={torch.__version__}")
    print(f"{'N':>6s} {'BDCL ms':>9s} {'SupCon ms':>10s} {'ratio':>6s}")
    for n in args.sizes:
        labels = torch.multinomial(shares, n, replacement=True).to(args.device)
        z = torch.randn(n, args.modalities, args.dim, device=args.device, requires_grad=True)
        flat_labels = labels.repeat(args.modalities)
        t_bdcl = timed(lambda x: bdcl_loss(x, labels)["loss"], z, args.repeats, args.device)
        t_sup = timed(lambda x: supcon(x.transpose(0, 1).reshape(-1, args.dim), flat_labels), z,
                      args.repeats, args.device)
        print(f"{n:6d} {1e3 * t_bdcl:9.1f} {1e3 * t_sup:10.1f} {t_bdcl / t_sup:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
