"""What the model registries share: resolving a builder's arguments with clear errors."""

from __future__ import annotations

import inspect
import operator
from collections.abc import Mapping, Sequence
from typing import Any


def as_shape(sample_shape: Sequence[Any]) -> tuple[int, ...]:
    """``sample_shape`` as a tuple of Python ints, if it is a non-empty sequence of positive ints."""
    try:
        values = tuple(sample_shape)
        shape = tuple(operator.index(v) for v in values)
    except TypeError:
        shape = ()
    else:
        if any(isinstance(v, bool) for v in values):
            shape = ()
    if not shape or min(shape) < 1:
        raise ValueError(
            f"sample_shape must be a non-empty tuple of positive ints; got {sample_shape!r}."
        )
    return shape


def resolve(
    registry: Mapping[str, Any],
    arch: str,
    sample_shape: Sequence[Any],
    latent_dim: int | None,
    options: Mapping[str, Any] | None,
) -> tuple[Any, tuple[int, ...], int, dict[str, Any]]:
    """Checks the arguments of ``registry[arch].build(shape, latent_dim, **options)``.

    Args:
        registry: name -> spec with ``build`` and ``default_latent_dim``.
        arch: the name asked for.
        sample_shape: shape of one sample.
        latent_dim: size of z, or None for the spec's default.
        options: extra keyword options of the builder.

    Returns:
        ``(spec, shape, latent_dim, options)``, checked.

    Raises:
        ValueError: unknown ``arch`` or option, a malformed ``sample_shape``, ``latent_dim < 1``.
        TypeError: ``latent_dim`` is not an int.
    """
    if arch not in registry:
        names = ", ".join(repr(name) for name in registry)
        raise ValueError(f"arch must be one of {names}; got {arch!r}.")
    spec = registry[arch]
    shape = as_shape(sample_shape)
    if latent_dim is None:
        latent_dim = spec.default_latent_dim
    if isinstance(latent_dim, bool) or not hasattr(latent_dim, "__index__"):
        raise TypeError(f"latent_dim must be an int; got {type(latent_dim).__name__}.")
    latent_dim = operator.index(latent_dim)
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be >= 1; got {latent_dim}.")
    options = dict(options or {})
    allowed = tuple(inspect.signature(spec.build).parameters)[2:]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"options must be among {allowed} for {arch}; got {unknown}.")
    return spec, shape, latent_dim, options


def as_widths(hidden: Sequence[Any]) -> tuple[int, ...]:
    """Hidden layer widths as a tuple, if every one is a positive int."""
    widths = tuple(hidden)
    if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in widths):
        raise ValueError(f"hidden must be a sequence of positive ints; got {widths}.")
    return widths
