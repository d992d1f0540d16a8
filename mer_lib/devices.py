"""Where tensors go: the device a setting names, and mixed precision on GPUs."""
from __future__ import annotations

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
