"""Closed-form sketches of Gaussians and Gaussian mixtures: the expected features of their draws.

Part of :mod:`distmatch.sketch`, which re-exports the public names.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._features import FourierFeatures
from ._laws import as_float64, check_vector

__all__ = ["gaussian_mixture_sketch", "gaussian_sketch"]


def _expected_sign_cos(a: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """``E[sign(cos t)]`` for ``t ~ N(a, var)``, exact to float64 round-off.

    For ``sd >= 0.5`` the Fourier series ``sign(cos t) = (4/pi) sum_k (-1)^k cos((2k+1)t)/(2k+1)``
    with ``E[cos(n t)] = exp(-n^2 var/2) cos(n a)`` (13 terms: the next is below 1e-30). Below,
    where the series converges slowly, sum the normal probabilities of the intervals where
    ``cos t`` has one sign, within ``pi + 8 sd`` of ``a`` reduced to ``[-pi, pi]``.
    """
    sd = var.sqrt()
    series = torch.zeros_like(a)
    for k in range(13):
        n = 2 * k + 1
        series += (-1) ** k / n * torch.exp(-(n**2) * var / 2) * torch.cos(n * a)
    series *= 4 / math.pi
    a0 = torch.remainder(a + math.pi, 2 * math.pi) - math.pi
    sd0 = sd.clamp_min(1e-300)
    intervals = torch.zeros_like(a)
    for n in range(-3, 4):
        upper = torch.special.ndtr((math.pi / 2 + n * math.pi - a0) / sd0)
        lower = torch.special.ndtr((-math.pi / 2 + n * math.pi - a0) / sd0)
        intervals += (-1) ** n * (upper - lower)
    return torch.where(sd >= 0.5, series, intervals)


def _mixture_features(
    features: FourierFeatures, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor | None
) -> torch.Tensor:
    """Expected features ``sum_k w_k E[phi(x)]``, ``x ~ N(mean_k, cov_k)``; ``covs=None`` is ``I``."""
    omega = features.frequencies.detach().to("cpu", torch.float64)  # (D, m)
    dither = features.dither.detach().to("cpu", torch.float64)  # (m,)
    phase = means @ omega + dither  # (K, m)
    if covs is None:
        var = (omega * omega).sum(dim=0).expand_as(phase)  # (K, m)
    else:
        var = ((covs @ omega) * omega).sum(dim=1).clamp_min(0.0)  # (K, m): omega^T cov_k omega
    if features.quantized:
        cos = _expected_sign_cos(phase, var)  # (K, m)
        sin = _expected_sign_cos(phase - math.pi / 2, var)  # (K, m)
    else:
        decay = torch.exp(-var / 2)  # (K, m)
        cos, sin = decay * torch.cos(phase), decay * torch.sin(phase)  # (K, m)
    stacked = torch.cat([weights @ cos, weights @ sin])  # (2m,)
    return (stacked / math.sqrt(features.n_frequencies)).to(features.frequencies.device)


def _check_psd(cov: object, dim: int, name: str) -> torch.Tensor:
    c = as_float64(cov, name)
    if c.shape != (dim, dim):
        raise ValueError(f"{name} must be a ({dim}, {dim}) matrix; got shape {tuple(c.shape)}.")
    if not bool(torch.isfinite(c).all()):
        raise ValueError(f"{name} must contain only finite values; got NaN or inf entries.")
    scale = max(float(c.abs().max()), 1e-300)
    if not torch.allclose(c, c.T, rtol=1e-10, atol=1e-12 * scale):
        raise ValueError(
            f"{name} must be symmetric positive semi-definite; got a non-symmetric matrix."
        )
    smallest = float(torch.linalg.eigvalsh(c).min())
    if smallest < -1e-10 * scale:
        raise ValueError(
            f"{name} must be symmetric positive semi-definite; got smallest eigenvalue {smallest:.3g}."
        )
    return c


def gaussian_sketch(
    features: FourierFeatures,
    mean: torch.Tensor | np.ndarray | None = None,
    cov: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Exact sketch (expected features) of the Gaussian ``N(mean, cov)``, in sketch coordinates.

    With the characteristic function ``E[exp(i omega . x)] = exp(i omega . mu - omega^T Sigma omega/2)``
    and the dither ``xi``, frequency ``j`` contributes::

        E[cos(omega_j . x + xi_j)] = exp(-omega_j^T Sigma omega_j / 2) cos(omega_j . mu + xi_j)

    and the same with ``sin``; the result is stacked ``[cos; sin] / sqrt(m)`` like the features.
    For quantized features it is ``E[sign(cos(t))]`` (and ``sin``) for the normal ``t = omega_j . x +
    xi_j``, exactly: what sketching infinitely many draws would give.

    Args:
        features: the feature map of the sketch.
        mean: (D,) mean ``mu``; zeros by default.
        cov: (D, D) symmetric positive semi-definite covariance ``Sigma``; identity by default.

    Returns:
        (2m,) float64 tensor on the device of ``features``.

    Raises:
        TypeError, ValueError: wrong shapes, non-finite values, a covariance that is not PSD.

    Example:
        >>> from distmatch.sketch import FourierFeatures
        >>> features = FourierFeatures(2, 1000)
        >>> z = gaussian_sketch(features, mean=torch.zeros(2), cov=0.1 * torch.eye(2))

    Reference:
        Keriven et al. 2018, eq. (16); pycle ``fourierSketchOfGaussian``.
    """
    dim = _feature_dim(features)
    mu = torch.zeros(dim, dtype=torch.float64) if mean is None else check_vector(mean, dim, "mean")
    covs = None if cov is None else _check_psd(cov, dim, "cov")[None]
    return _mixture_features(features, torch.ones(1, dtype=torch.float64), mu[None], covs)


def gaussian_mixture_sketch(
    features: FourierFeatures,
    weights: torch.Tensor | np.ndarray,
    means: torch.Tensor | np.ndarray,
    covs: torch.Tensor | np.ndarray,
) -> torch.Tensor:
    """Exact sketch of the mixture ``sum_k w_k N(mean_k, cov_k)``: ``sum_k w_k gaussian_sketch(...)``.

    Args:
        features: the feature map of the sketch.
        weights: (K,) non-negative weights summing to 1 (within 1e-6).
        means: (K, D) means.
        covs: (K, D, D) symmetric positive semi-definite covariances.

    Returns:
        (2m,) float64 tensor on the device of ``features``.

    Raises:
        TypeError, ValueError: wrong shapes, weights that are not a distribution, a covariance that is
            not PSD.

    Example:
        >>> from distmatch.sketch import FourierFeatures
        >>> features = FourierFeatures(2, 1000)
        >>> covs = 0.1 * np.stack([np.eye(2), np.eye(2)])
        >>> z = gaussian_mixture_sketch(features, [0.5, 0.5], [[-1, 0], [1, 0]], covs)

    Reference:
        pycle ``fourierSketchOfGMM``.
    """
    dim = _feature_dim(features)
    w = as_float64(weights, "weights")
    if w.dim() != 1 or w.numel() < 1:
        raise ValueError(f"weights must have shape (K,) with K >= 1; got shape {tuple(w.shape)}.")
    k = w.numel()
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or abs(float(w.sum()) - 1) > 1e-6:
        raise ValueError(f"weights must be non-negative and sum to 1; got {w.tolist()}.")
    mu = as_float64(means, "means")
    if mu.shape != (k, dim):
        raise ValueError(f"means must have shape ({k}, {dim}); got shape {tuple(mu.shape)}.")
    if not bool(torch.isfinite(mu).all()):
        raise ValueError("means must contain only finite values; got NaN or inf entries.")
    c = as_float64(covs, "covs")
    if c.shape != (k, dim, dim):
        raise ValueError(f"covs must have shape ({k}, {dim}, {dim}); got shape {tuple(c.shape)}.")
    c = torch.stack([_check_psd(ck, dim, f"covs[{i}]") for i, ck in enumerate(c)])
    return _mixture_features(features, w, mu, c)


def _feature_dim(features: object) -> int:
    if not isinstance(features, FourierFeatures):
        raise TypeError(f"features must be a FourierFeatures; got {type(features).__name__}.")
    return features.dim
