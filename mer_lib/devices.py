"""Where tensors go: the device a setting names, and mixed precision on GPUs."""
from __future__ import annotations

import functools
import os

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; anything else as named ("cuda:1", ...)."""
    if not device or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but this machine has no CUDA GPU that torch can use "
                         f"(torch {torch.__version__}). Fix: pass device='cpu' or 'auto'.")
    return dev


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on a GPU (no loss scaling needed); a no-op on the CPU, where it rarely pays."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def adam(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one (CPU and CUDA): the same update, less overhead."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def reproducible(fn):
    """Run ``fn`` with one CPU thread, so that the same seed gives bit-identical models.

    Measured on this project's 2-core CPU machines: MKL's multi-threaded GEMMs (PyTorch's CPU BLAS)
    split their sums by thread in an order that depends on timing, so a stage-1 run repeated with
    the same seed drifted by up to 1e-2 in its weights and 1.5 points of WF1 (MKL_CBWR=AUTO and
    MKL_DYNAMIC=FALSE narrow it to 1e-7 but do not remove it); with one thread the runs are
    bit-identical, and at these model sizes no slower (stage 1 on the demo: 3.1 s with one thread,
    3.0 s with two). Set ``MER_LIB_CPU_THREADS=0`` to keep torch's thread count (faster on many
    cores, reproducible only to rounding). GPU runs are unaffected: see the README on determinism.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = torch.get_num_threads()
        wanted = int(os.environ.get("MER_LIB_CPU_THREADS", "1"))
        if wanted <= 0 or wanted == before:
            return fn(*args, **kwargs)
        torch.set_num_threads(wanted)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)
    return wrapper
