"""Sliced Wasserstein distance between two equal-size samples."""

from __future__ import annotations

import torch

from .._core import (
    check_float_dtype,
    check_generator,
    check_memory,
    check_pair,
    check_positive,
    check_positive_int,
    check_samples,
    fused,
)
from ._matching import fresh_ranks, matched_gaps, sorted_rows

__all__ = ["random_projections", "sliced_wasserstein"]


def random_projections(
    dim: int,
    n_projections: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Directions drawn uniformly on the unit sphere of R^dim (normalised Gaussian vectors).

    Args:
        dim: D, the number of features.
        n_projections: L, how many directions.
        generator: source of randomness; its device is where the draw happens.
        dtype: dtype of the result.
        device: device of the result (default: the generator's, else CPU).

    Returns:
        (D, L) tensor whose columns have unit norm.
    """
    check_positive_int(dim, "dim")
    check_positive_int(n_projections, "n_projections")
    check_float_dtype(dtype)
    check_generator(generator)
    draw_device = generator.device if generator is not None else device
    check_memory(
        dim * n_projections * dtype.itemsize, f"n_projections={n_projections}", draw_device or "cpu"
    )
    theta = torch.randn(dim, n_projections, generator=generator, dtype=dtype, device=draw_device)
    theta = theta / theta.norm(dim=0, keepdim=True)  # (D, L)
    return theta.to(device) if device is not None else theta


def sliced_wasserstein(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_projections: int = 50,
    p: float = 2,
    projections: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sliced Wasserstein distance to the power ``p`` between equal-size samples (no root).

    ::

        SW_p^p = mean_{l=1..L} mean_{i=1..N} | sort(x θ_l)_i - sort(y θ_l)_i |^p

    For equal-size empirical measures the 1-D optimal coupling matches sorted values, so each
    inner mean is the exact ``W_p^p`` of the projections. This is the SWAE/MoW quantity; POT's
    ``sliced_wasserstein_distance`` with the same projections returns its ``p``-th root.

    Args:
        x: (N, D) samples.
        y: (N, D) samples, same size, D, dtype and device.
        n_projections: L, the number of random directions (ignored when ``projections`` is given).
        p: exponent >= 1.
        projections: optional (D, L) tensor of directions (used as given, not normalised, and
            treated as a constant: no gradient flows to it).
        generator: randomness for drawing directions when ``projections`` is None.

    Returns:
        0-d tensor >= 0, differentiable with respect to ``x`` and ``y``.

    Raises:
        TypeError, ValueError: malformed samples or options.

    Example:
        >>> x = torch.randn(64, 3)
        >>> float(sliced_wasserstein(x, x))
        0.0

    Reference:
        Kolouri et al., "Sliced-Wasserstein Autoencoder", ICLR 2019, eq. (12).
    """
    check_samples(x, "x")
    check_samples(y, "y")
    check_pair(x, y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            "x and y must have the same number of points for sliced_wasserstein; "
            f"got {x.shape[0]} and {y.shape[0]}."
        )
    p = check_positive(p, "p")
    if p < 1:
        raise ValueError(f"p must be >= 1; got {p}.")
    dim = x.shape[1]
    if projections is None:
        projections = random_projections(
            dim, n_projections, generator=generator, dtype=x.dtype, device=x.device
        )
    else:
        check_samples(projections, "projections")
        if projections.shape[0] != dim:
            raise ValueError(
                f"projections must have shape (D, L) with D={dim}; got {tuple(projections.shape)}."
            )
        projections = projections.to(dtype=x.dtype, device=x.device)
    return sliced_unchecked(x, y, projections, p)


FRESH_ROWS = 256  # up to this many fresh rows, the ranks of the fresh form (memory O(L b^2))


def sliced_unchecked(
    x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor, p: float = 2.0, fresh: int | None = None
) -> torch.Tensor:
    """:func:`sliced_wasserstein` on given (D, L) directions ``theta``, without validation.

    For callers that own their inputs (the training objective). ``theta`` is a constant: no
    gradient flows to the directions. ``fresh``: only the first ``fresh`` rows of ``x`` carry a
    gradient (a moving window's fresh codes; the rest are its stored codes, constants), and
    ``y`` none. The value then needs the sorted projections only, ``mean |sort(x θ) - sort(y θ)|^p``,
    and the gradient the rank of each fresh projection in its row (no matching of the others). Tied
    projections are ranked in the order of their rows (fresh first), as a stable sort ranks them;
    the full matching (``fresh=None``, or more than ``FRESH_ROWS`` fresh rows) orders ties as
    its sort happens to, another subgradient of the same distance.
    """

    directions = theta.T  # (L, D)

    def gradient(gaps: torch.Tensor) -> torch.Tensor:
        # d/d(proj) of the mean, in place (the matching is locally constant), then back through
        # the projection
        slope = (p / gaps.numel()) * gaps.abs().pow(p - 1) * gaps.sign()  # (L, N)
        return slope.T @ directions  # (N, D)

    def compute(x, y, *, needs):
        x_proj, y_proj = directions @ x.T, directions @ y.T  # (L, N): one row per direction
        gaps = matched_gaps(x_proj, y_proj)  # (L, N): x_proj minus its matched y_proj
        grad_x = gradient(gaps) if needs[0] else None
        grad_y = gradient(matched_gaps(y_proj, x_proj)) if needs[1] else None
        return gaps.abs().pow(p).mean(), (grad_x, grad_y)

    def compute_fresh(x_fresh, stored, y, *, needs):
        b = x_fresh.shape[0]
        x_proj = directions @ torch.cat([x_fresh, stored]).T  # (L, N)
        both = sorted_rows(torch.stack([x_proj, directions @ y.T]))  # (2, L, N)
        gaps = both[0] - both[1]  # (L, N): sorted x minus sorted y
        value = gaps.abs().pow(p).mean()
        if not needs[0]:
            return value, (None, None, None)
        ranks = fresh_ranks(x_proj, both[0], b)  # (L, b)
        matched = both[1].gather(1, ranks)  # (L, b): the y of each fresh x
        fresh_gaps = x_proj[:, :b] - matched  # (L, b)
        slope = (p / gaps.numel()) * fresh_gaps.abs().pow(p - 1) * fresh_gaps.sign()
        return value, (slope.T @ directions, None, None)  # (b, D)

    if fresh is None or fresh >= x.shape[0] or fresh > FRESH_ROWS or y.requires_grad:
        return fused(compute, (x, y))
    return fused(compute_fresh, (x[:fresh], x[fresh:].detach(), y))
