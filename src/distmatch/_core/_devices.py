"""The one device policy: ``"auto"`` means CUDA when it is available, else the CPU."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


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
