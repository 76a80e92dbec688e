"""Cramér–Wold distance: to the standard normal law (closed form) and between two samples.

The Cramér–Wold distance compares the one-dimensional projections of two distributions on every
direction ``v`` of the unit sphere, each projection smoothed by a Gaussian of variance ``gamma``::

    d_cw^2(X, Y) = integral over v in S^{D-1} of  || sm_gamma(v^T X) - sm_gamma(v^T Y) ||_{L2}^2  dσ(v)

with σ the uniform probability on the sphere. For samples it has a closed form through
``phi_D(s) = 1F1(1/2; D/2; -s)`` (Tabor et al., "Cramer-Wold AutoEncoder", JMLR 2020, Thm. 3.1).

Two normalisations exist. ``scaled=True`` returns the formula of the CWAE paper (the integral above).
``scaled=False`` (default) returns ``2 * sqrt(pi)`` times it, the value the reference code (gmum/cwae)
computes and the MoW paper reports.
"""

from __future__ import annotations

import math
from functools import partial

import torch

from .._core import check_pair, check_positive, check_positive_int, check_samples, fused
from ._pairs import pair_sum, two_sample_sum

__all__ = ["cramer_wold", "cramer_wold_normality", "phi", "phi_and_derivative", "silverman_gamma"]


def silverman_gamma(n: float) -> float:
    """Silverman's rule-of-thumb smoothing variance for ``n`` points of a standard normal.

    ``gamma = (4 / (3 n)) ** (2 / 5)``; e.g. 0.21257 at n = 64 and 0.05365 at n = 2000.

    Args:
        n: number of points, > 0.

    Returns:
        gamma as a float.

    Raises:
        ValueError: n is not a positive number.
    """
    n = check_positive(n, "n")
    return (4.0 / (3.0 * n)) ** 0.4


def phi(s: torch.Tensor, dim: int) -> torch.Tensor:
    """``phi_D(s) = 1F1(1/2; D/2; -s)``, the kernel of the Cramér–Wold distance.

    Exact for D = 1 (``exp(-s)``) and D = 2 (``exp(-s/2) I0(s/2)``, through the scaled Bessel function
    ``i0e`` for stability); for D >= 3 the asymptotic form ``(1 + 4 s / (2 D - 3))^(-1/2)`` of the
    CWAE paper (accurate to a few per cent from D of about 20 on, cruder for small D).

    Args:
        s: tensor of values >= 0, any shape.
        dim: D >= 1.

    Returns:
        tensor of ``s``'s shape.
    """
    if not isinstance(s, torch.Tensor) or not s.is_floating_point():
        raise TypeError(f"s must be a floating-point tensor; got {_kind(s)}.")
    check_positive_int(dim, "dim")
    if bool((s < 0).any()):
        raise ValueError(f"s must hold values >= 0; got a minimum of {float(s.min()):g}.")
    return phi_and_derivative(s, dim)[0]


def _kind(x: object) -> str:
    return f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


def _check_scaled(scaled: object) -> bool:
    if not isinstance(scaled, bool):  # a string such as "False" would count as True
        raise TypeError(f"scaled must be True or False; got {scaled!r}.")
    return scaled


def phi_and_derivative(
    s: torch.Tensor, dim: int, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``phi_D(c s)`` and its derivative with respect to ``s``, for a constant ``c = scale``.

    With ``t = c s``: D = 1: ``exp(-t)``, slope ``-c exp(-t)``; D = 2: ``i0e(t/2)``, slope
    ``c (i1e(t/2) - i0e(t/2)) / 2``; D >= 3: ``(1 + a t)^(-1/2)``, slope ``-(a c / 2) (1 + a t)^(-3/2)``
    with ``a = 4 / (2D - 3)``. Folding ``c`` in saves a pass over the (N, N) matrices.
    """
    if dim == 1:
        value = torch.exp(s * -scale)
        return value, value * -scale
    if dim == 2:
        half = s * (scale / 2.0)
        value = torch.special.i0e(half)
        return value, (torch.special.i1e(half) - value) * (scale / 2.0)
    b = scale * 4.0 / (2.0 * dim - 3.0)
    value = torch.rsqrt(s * b + 1.0)
    return value, value * value * value * (-0.5 * b)


GAMMA_RANGE = (1e-30, 1e30)  # where 1 / sqrt(gamma) and the scaled distances stay finite


def _gamma(gamma: float | None, n: float) -> float:
    if gamma is None:
        return silverman_gamma(n)
    gamma = check_positive(gamma, "gamma")
    low, high = GAMMA_RANGE
    if not low <= gamma <= high:
        raise ValueError(f"gamma must be in [{low:g}, {high:g}]; got {gamma:g}.")
    return gamma


def cramer_wold_normality(
    z: torch.Tensor, *, gamma: float | None = None, scaled: bool = False
) -> torch.Tensor:
    """Cramér–Wold distance (squared, as in the paper's notation) of the sample ``z`` to N(0, I).

    Closed form (CWAE paper, Thm. 3.1; ``scaled=True``)::

        d^2 = 1 / (2 N^2 sqrt(pi)) * [ 1/sqrt(gamma) * sum_{i,j} phi_D(|z_i - z_j|^2 / (4 gamma))
                                      + N^2 / sqrt(1 + gamma)
                                      - 2 N / sqrt(gamma + 1/2) * sum_i phi_D(|z_i|^2 / (2 + 4 gamma)) ]

    ``scaled=False`` drops the factor ``1 / (2 sqrt(pi))``. With the asymptotic ``phi_D`` this is the
    reference code's ``1/sqrt(1+g) + mean 1/sqrt(g + K|z_i-z_j|^2) - 2 mean 1/sqrt(g + 1/2 + K|z_i|^2)``
    with ``K = 1 / (2D - 3)``.

    Args:
        z: (N, D) sample (e.g. latent codes).
        gamma: smoothing variance > 0; ``None`` for ``silverman_gamma(N)``.
        scaled: ``True`` for the paper's normalisation, ``False`` for the reference code's.

    Returns:
        0-d tensor, differentiable with respect to ``z``.

    Raises:
        TypeError, ValueError: malformed ``z`` or ``gamma``.

    Example:
        >>> z = torch.zeros(8, 32)
        >>> round(float(cramer_wold_normality(z, gamma=1.0)), 7)  # 1/sqrt(2) + 1 - 2/sqrt(1.5)
        0.0741136

    Reference:
        Tabor, Knop, Spurek, Podolak, Mazur, Jastrzębski, "Cramer-Wold AutoEncoder", JMLR 2020.
    """
    check_samples(z, "z")
    return normality_unchecked(z, _gamma(gamma, z.shape[0]), _check_scaled(scaled))


def normality_unchecked(
    z: torch.Tensor, gamma: float, scaled: bool = False, fresh: int | None = None
) -> torch.Tensor:
    """:func:`cramer_wold_normality` without validation, for callers that own their input.

    The training objective calls this on the joined codes every step: their shape is known, and a
    non-finite code shows up as a non-finite loss, which the training loop stops on. ``fresh``:
    only the first ``fresh`` rows carry a gradient (a moving window's fresh codes; the stored
    ones are constants), so only their rows of the gradient are computed.
    """
    value_and_grad = partial(_normality_value_and_grad, gamma=gamma, scaled=scaled)
    if fresh is None or fresh >= z.shape[0]:
        return fused(value_and_grad, (z,))

    def compute(z_fresh, stored, *, needs):
        value, (grad,) = value_and_grad(
            torch.cat([z_fresh, stored]), needs=needs[:1], rows=z_fresh.shape[0]
        )
        return value, (grad, None)

    return fused(compute, (z[:fresh], z[fresh:].detach()))


def _normality_value_and_grad(
    z: torch.Tensor,
    *,
    needs: tuple[bool, ...],
    gamma: float,
    scaled: bool,
    rows: int | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor | None]]:
    """Value of the closed form and its gradient with respect to ``z`` (its first ``rows`` rows
    only, if given).

    With ``d_ij = |z_i - z_j|^2``, ``r_i = |z_i|^2``, ``w_p = c / (N^2 sqrt(gamma))`` and
    ``w_n = -2 c / (N sqrt(gamma + 1/2))`` (``c`` the normalisation)::

        value = w_p sum_ij phi(d_ij / (4 gamma)) + w_n sum_i phi(r_i / (2 + 4 gamma)) + c / sqrt(1 + gamma)
        grad_i = 4 sum_j W_ij (z_i - z_j) + 2 V_i z_i

    with ``W_ij = w_p d/dd phi(d_ij / (4 gamma))`` and ``V_i = w_n d/dr phi(r_i / (2 + 4 gamma))``.
    """
    n, dim = z.shape
    scale = 1.0 / (2.0 * math.sqrt(math.pi)) if scaled else 1.0
    w_pairs = scale / (n * n * math.sqrt(gamma))
    w_norms = -2.0 * scale / (n * math.sqrt(gamma + 0.5))
    constant = scale / math.sqrt(1.0 + gamma)
    if dim <= 2:
        # Exact phi: the generic pair sum. Codes sit around the origin: no centring.
        def profile(d2: torch.Tensor, derivative: bool = True):
            return phi_and_derivative(d2, dim, 1.0 / (4.0 * gamma))

        pairs, grad, _ = pair_sum(
            z, None, profile, w_pairs, needs=(*needs, False), center=False, rows=rows
        )  # fmt: skip
        value, slope = phi_and_derivative((z * z).sum(dim=1), dim, 1.0 / (2.0 + 4.0 * gamma))
        total = pairs + (w_norms * value.sum() + constant)
        if needs[0]:
            grad += (slope[:rows] * (2.0 * w_norms))[:, None] * z[:rows]  # (N or rows, D)
        return total, (grad,)
    # Asymptotic phi(t) = (1 + a t)^(-1/2), a = 4 / (2D - 3), written with as few tensor operations
    # as possible: at n = 64 each one costs more than its arithmetic.
    b_pairs = 1.0 / ((2.0 * dim - 3.0) * gamma)  # a / (4 gamma)
    b_norms = 4.0 / ((2.0 * dim - 3.0) * (2.0 + 4.0 * gamma))  # a / (2 + 4 gamma)
    r2 = (z * z).sum(dim=1)  # (N,)
    t = r2 * b_pairs
    # 1 + b d_ij = (1 + b r_i) + b r_j - 2 b <z_i, z_j>, clamped at 1 against round-off.
    k = torch.addmm((t + 1.0)[:, None] + t[None, :], z, z.T, alpha=-2.0 * b_pairs)
    k = k.clamp_min_(1.0).rsqrt_()  # (N, N) phi values
    v = r2.mul_(b_norms).add_(1.0).rsqrt_()  # (N,)
    total = torch.add(k.sum() * w_pairs, v.sum(), alpha=w_norms) + constant
    if not needs[0]:
        return total, (None,)
    # phi' = -(b/2) phi^3; grad_i = 4 w_p (-(b_p/2)) (rowsum(K3)_i z_i - (K3 z)_i) + 2 w_n (-(b_n/2)) v_i^3 z_i
    c_pairs = -2.0 * w_pairs * b_pairs
    k3 = k[:rows].pow_(3)  # (N or rows, N)
    diagonal = k3.sum(dim=1).mul_(c_pairs).add_(v[:rows].pow_(3), alpha=-w_norms * b_norms)
    grad = torch.addmm(diagonal[:, None] * z[:rows], k3, z, alpha=-c_pairs)  # (N or rows, D)
    return total, (grad,)


def cramer_wold(
    x: torch.Tensor, y: torch.Tensor, *, gamma: float | None = None, scaled: bool = False
) -> torch.Tensor:
    """Cramér–Wold distance (squared, as in the paper's notation) between samples ``x`` and ``y``.

    Closed form (CWAE paper, Thm. 3.1; ``scaled=True``), a V-statistic::

        d^2 = 1 / (2 sqrt(pi gamma)) * [ mean_{i,j} phi_D(|x_i - x_j|^2 / (4 gamma))
                                        + mean_{i,j} phi_D(|y_i - y_j|^2 / (4 gamma))
                                        - 2 mean_{i,j} phi_D(|x_i - y_j|^2 / (4 gamma)) ]

    ``scaled=False`` drops the factor ``1 / (2 sqrt(pi))``, as :func:`cramer_wold_normality` does;
    as ``y`` grows into an exact N(0, I) sample the two functions agree.

    Args:
        x: (N, D) samples.
        y: (M, D) samples, same D, dtype and device.
        gamma: smoothing variance > 0; ``None`` for ``silverman_gamma((N + M) / 2)``, which is
            ``silverman_gamma(N)`` for equal sizes and keeps the distance symmetric.
        scaled: ``True`` for the paper's normalisation, ``False`` for the reference code's.

    Returns:
        0-d tensor >= 0, differentiable with respect to ``x`` and ``y``; 0 when ``x`` equals ``y``.

    Raises:
        TypeError, ValueError: malformed samples or ``gamma``.

    Example:
        >>> x = torch.randn(100, 4)
        >>> float(cramer_wold(x, x))
        0.0

    Reference:
        Tabor et al., "Cramer-Wold AutoEncoder", JMLR 2020.
    """
    check_samples(x, "x")
    check_samples(y, "y")
    check_pair(x, y)
    _check_scaled(scaled)
    (n, dim), m = x.shape, y.shape[0]
    gamma = _gamma(gamma, (n + m) / 2.0)
    scale = (1.0 / (2.0 * math.sqrt(math.pi)) if scaled else 1.0) / math.sqrt(gamma)

    def profile(d2: torch.Tensor, derivative: bool = True):
        return phi_and_derivative(d2, dim, 1.0 / (4.0 * gamma))

    weights = (scale / (n * n), scale / (m * m), -2.0 * scale / (n * m))

    def compute(x, y, *, needs):
        value, g_x, g_y = two_sample_sum(x, y, profile, weights, needs=needs, join=False)
        return value, (g_x, g_y)

    return fused(compute, (x, y))
