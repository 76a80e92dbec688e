"""Validation of arguments at the public boundary.

Every public function calls these where it takes its arguments, so that a wrong shape, dtype or
value is reported in one line that names the argument, what was expected and what was got.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence

import torch


def check_samples(x: object, name: str = "x", *, min_points: int = 1) -> torch.Tensor:
    """Returns ``x`` if it is a finite floating ``(N, D)`` tensor with ``N >= min_points``.

    Raises:
        TypeError: ``x`` is not a tensor, or its dtype is not floating point.
        ValueError: ``x`` is not 2-D, has too few points or features, or holds NaN/inf.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, D); got {type(x).__name__}.")
    if x.dim() != 2:
        raise ValueError(
            f"{name} must be a 2-D tensor of shape (N, D); got shape {tuple(x.shape)} "
            f"({x.dim()} dimensions)."
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype; got {x.dtype}.")
    if x.shape[0] < min_points:
        raise ValueError(f"{name} must have at least {min_points} points; got {x.shape[0]}.")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least 1 feature; got shape {tuple(x.shape)}.")
    if not bool(torch.isfinite(x.detach()).all()):
        bad = int((~torch.isfinite(x.detach())).sum())
        raise ValueError(f"{name} must contain only finite values; got {bad} NaN or inf entries.")
    return x


def check_pair(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    """Checks that two sample tensors share feature size, dtype and device."""
    a, b = names
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{a} and {b} must have the same number of features; got {x.shape[1]} and {y.shape[1]}."
        )
    if x.dtype != y.dtype:
        raise TypeError(f"{a} and {b} must have the same dtype; got {x.dtype} and {y.dtype}.")
    if x.device != y.device:
        raise ValueError(f"{a} and {b} must be on the same device; got {x.device} and {y.device}.")


def check_positive(value: object, name: str) -> float:
    """Returns ``value`` as a float if it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a positive number; got {type(value).__name__}.")
    if not (0 < value < float("inf")):
        raise ValueError(f"{name} must be a finite number > 0; got {value}.")
    return float(value)


def check_positive_int(value: object, name: str) -> int:
    """Returns ``value`` if it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1; got {type(value).__name__}.")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value}.")
    return value


def check_seed(value: object, name: str = "seed", *, bits: int = 32, signed: bool = False) -> int:
    """Returns ``value`` as an int if it is one in ``[0, 2^bits)`` (``signed``: in
    ``(-2^bits, 2^bits)``): a run's seeds are combined with step and epoch counters in int64
    (``bits=32``); a generator's own seed is at most 63 bits (what
    ``torch.Generator.manual_seed`` takes as a non-negative int64)."""
    low = -(1 << bits) + 1 if signed else 0
    span = f"(-2^{bits}, 2^{bits})" if signed else f"[0, 2^{bits})"
    if isinstance(value, bool) or not hasattr(value, "__index__"):  # NumPy ints are ints too
        raise TypeError(f"{name} must be an int in {span}; got {type(value).__name__}.")
    value = operator.index(value)
    if not low <= value < 1 << bits:
        raise ValueError(f"{name} must be an int in {span}; got {value}.")
    return value


def check_float_dtype(dtype: object, name: str = "dtype") -> torch.dtype:
    """Returns ``dtype`` if it is a floating-point ``torch.dtype``."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch.dtype; got {dtype}.")
    return dtype


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    """Returns ``generator`` if it is None or a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator; got {type(generator).__name__}.")
    return generator


def check_choice(value: object, name: str, choices: Iterable[str]) -> str:
    """Returns ``value`` if it is one of ``choices``."""
    options = sorted(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}.")
    return value  # type: ignore[return-value]


def check_scales(scales: Sequence[float] | None, default: Sequence[float]) -> tuple[float, ...]:
    """Returns the kernel scales as a non-empty tuple of positive floats."""
    if scales is None:
        return tuple(float(s) for s in default)
    if isinstance(scales, int | float):
        scales = (scales,)
    if isinstance(scales, Mapping | str | bytes):  # a dict would give its keys, a str its letters
        raise TypeError(
            f"scales must be a sequence of positive numbers; got {type(scales).__name__}."
        )
    values = tuple(scales)
    if not values:
        raise ValueError("scales must be a non-empty sequence of positive numbers; got ().")
    return tuple(check_positive(s, "each scale") for s in values)
