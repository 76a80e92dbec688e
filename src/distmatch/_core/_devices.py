"""The one device policy: ``"auto"`` means CUDA when it is available, else the CPU."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import Iterator

import torch

__all__ = [
    "available_memory",
    "check_memory",
    "compiler_available",
    "deterministic_algorithms",
    "fused_optimizer",
    "resolve_device",
]

# cuBLAS's setting for results that do not depend on how work is split over streams (the values
# that PyTorch accepts in deterministic mode)
CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device that ``device`` names, checked to be usable here.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
            or a ``torch.device``.

    Returns:
        the ``torch.device``.

    Raises:
        ValueError: a name that is no device, or a CUDA device on a machine without CUDA or with
            fewer GPUs than ``N + 1``.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}."
            ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device must be available; got {str(device)!r} but CUDA is not available here."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device must be one of the {torch.cuda.device_count()} GPUs here; got "
                f"{str(device)!r}."
            )
    return resolved


def available_memory(device: str | torch.device = "cpu") -> int | None:
    """Bytes that an allocation on ``device`` can use now: free GPU memory on CUDA, the kernel's
    ``MemAvailable`` on the CPU (Linux); ``None`` where it cannot be read."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gib(size: float) -> str:
    return f"{size / 2**30:,.1f} GiB" if size >= 2**30 / 10 else f"{size / 2**20:,.1f} MiB"


def check_memory(needed: float, what: str, device: str | torch.device = "cpu") -> None:
    """Raises before an allocation that cannot succeed: ``needed`` bytes for ``what`` on
    ``device`` against :func:`available_memory` (nothing is checked where that is unknown).

    Raises:
        ValueError: e.g. "n=100000000 needs about 149.0 GiB for the n x n distances; 21.3 GiB
            are available on cpu."
    """
    free = available_memory(device)
    if free is not None and needed > free:
        raise ValueError(
            f"{what} needs about {_gib(needed)}; {_gib(free)} are available on "
            f"{torch.device(device)}."
        )


def compiler_available(device: torch.device) -> bool:
    """Whether ``torch.compile`` can build code for ``device`` here: Triton for CUDA, a C++
    compiler for the CPU."""
    if device.type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return any(shutil.which(name) for name in ("g++", "c++", "clang++"))


FUSED_DEVICES = ("cpu", "cuda")  # where torch.optim's fused Adam and SGD kernels exist


def fused_optimizer(device: torch.device) -> dict[str, bool]:
    """``{"fused": True}`` where PyTorch has fused optimizer kernels for ``device``, else ``{}``.

    A fused optimizer updates every parameter in one kernel instead of a few operations per
    parameter tensor. On one CPU core, Adam's update of ``mnist_mlp`` takes 0.30 ms fused against
    0.97 ms, and of ``celeba_conv`` 1.3 ms against 7.3 ms (``benchmarks/optimizer_speed.py``). A
    fused Adam keeps its step count on the device, so a CUDA graph can capture it.
    """
    return {"fused": True} if device.type in FUSED_DEVICES else {}


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Within the block, PyTorch uses deterministic algorithms where it has them (``enabled``).

    Sets ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an operation that has no
    deterministic implementation warns once and runs), ``torch.backends.cudnn.deterministic`` and
    no cuDNN benchmarking (convolution algorithms chosen by timing), and cuBLAS's workspace
    setting ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless one of PyTorch's deterministic values is
    set already. PyTorch sizes cuBLAS's workspace at the process's first CUDA matrix product, so
    the setting takes effect only if none came before the block (as in a ``distmatch`` command);
    on one CUDA stream, as distmatch runs, cuBLAS gives the same bits either way. Compiled code
    built inside the block keeps one reduction order too (Inductor reads the mode when it
    compiles). Everything is put back when the block ends. On the CPU the operations distmatch
    uses are deterministic anyway. ``enabled=False``: no change.
    """
    if not enabled:
        yield
        return
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    try:
        if saved[4] not in CUBLAS_DETERMINISTIC:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_DETERMINISTIC[0]
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2:4]
        if saved[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[4]
