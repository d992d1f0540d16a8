"""The Jupyter kernel ``mer-lib``: this environment's Python, for JupyterLab and papermill.

``python -m mer_lib.kernel`` registers it inside the environment (``sys.prefix``), so a venv or a
conda env each carry their own; ``mer_lib.reproduce`` calls :func:`ensure_kernel` before running
notebooks, so the kernel papermill starts is always the interpreter that runs the reproduction.
"""
from __future__ import annotations

import os
import sys

KERNEL_NAME = "mer-lib"


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Register ``name`` for ``sys.executable`` unless it already points there; return its name."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def current():
        try:
            return KernelSpecManager().get_kernel_spec(name)
        except NoSuchKernel:
            return None

    spec = current()
    if spec is None or not _same_python(spec.argv[0]):
        install(kernel_name=name, display_name=f"Python ({name})", prefix=sys.prefix)
        spec = current()
    if spec is None or not _same_python(spec.argv[0]):
        raise RuntimeError(
            f"Jupyter kernel '{name}' points at {spec.argv[0] if spec else 'nothing'}, not at "
            f"{sys.executable}. Fix: remove the other registration with "
            f"`jupyter kernelspec remove {name}` and run `python -m mer_lib.kernel` again.")
    return name


def _same_python(path: str) -> bool:
    # a venv's python may be a symlink; compare where the two resolve, and accept plain "python"
    if path in ("python", "python3"):
        return False
    return os.path.realpath(path) == os.path.realpath(sys.executable) or (
        os.path.dirname(os.path.abspath(path)) == os.path.dirname(os.path.abspath(sys.executable)))


if __name__ == "__main__":
    print(f"Jupyter kernel '{ensure_kernel()}' -> {sys.executable}")
