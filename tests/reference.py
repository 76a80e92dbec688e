"""Independent references for the tests: closed-form values and slow, direct evaluations.

Nothing here imports distmatch. Each function follows a definition as literally as possible
(loops, numerical integration, scipy special functions), so that agreement with the library's
vectorised code is evidence and not a restatement.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, special

# Cramér–Wold check values of the reference code (unscaled): (points, gamma, value).
CW_NORMALITY_CASES = [
    (np.stack([np.zeros(32), np.ones(32)]), 0.5, 0.20768),
    (np.zeros((8, 32)), 1.0, 1 / math.sqrt(2) + 1 - 2 / math.sqrt(1.5)),  # 0.0741136
]

# Silverman's gamma at the sizes the references quote.
SILVERMAN_CASES = [(64, 0.21257), (2000, 0.05365)]


def phi_exact(s: np.ndarray, dim: int) -> np.ndarray:
    """``phi_D(s) = 1F1(1/2; D/2; -s)`` from scipy's confluent hypergeometric function."""
    return special.hyp1f1(0.5, dim / 2.0, -np.asarray(s, dtype=np.float64))


def phi_asymptotic(s: np.ndarray, dim: int) -> np.ndarray:
    """The CWAE paper's approximation ``(1 + 4 s / (2D - 3))^(-1/2)``."""
    return (1.0 + 4.0 * np.asarray(s, dtype=np.float64) / (2.0 * dim - 3.0)) ** -0.5


def cw_normality_closed_form(z: np.ndarray, gamma: float, phi) -> float:
    """CWAE Thm. 3.1 (paper normalisation) with a given ``phi(s, dim)``, by explicit loops."""
    n, dim = z.shape
    pairs = sum(
        phi(np.sum((z[i] - z[j]) ** 2) / (4 * gamma), dim) for i in range(n) for j in range(n)
    )
    norms = sum(phi(np.sum(z[i] ** 2) / (2 + 4 * gamma), dim) for i in range(n))
    inner = pairs / math.sqrt(gamma) + n * n / math.sqrt(1 + gamma)
    inner -= 2 * n / math.sqrt(gamma + 0.5) * norms
    return float(inner / (2 * n * n * math.sqrt(math.pi)))


def sphere_quadrature(dim: int, resolution: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Directions ``v`` (K, D) and weights (K,) summing to 1 for the uniform law on S^{D-1}.

    D = 1: the two points ±1. D = 2: equispaced angles (exact for trigonometric polynomials).
    D = 3: Gauss–Legendre in cos(theta) times equispaced azimuths.
    """
    if dim == 1:
        return np.array([[1.0], [-1.0]]), np.array([0.5, 0.5])
    if dim == 2:
        t = 2 * np.pi * np.arange(4 * resolution) / (4 * resolution)
        return np.stack([np.cos(t), np.sin(t)], axis=1), np.full(t.size, 1 / t.size)
    if dim == 3:
        u, wu = np.polynomial.legendre.leggauss(resolution)
        a = 2 * np.pi * np.arange(2 * resolution) / (2 * resolution)
        uu, aa = np.meshgrid(u, a, indexing="ij")
        r = np.sqrt(1 - uu**2)
        v = np.stack([r * np.cos(aa), r * np.sin(aa), uu], axis=-1).reshape(-1, 3)
        w = (wu[:, None] / 2 * np.full(a.size, 1 / a.size)[None, :]).reshape(-1)
        return v, w
    raise ValueError(f"sphere_quadrature supports dim 1, 2, 3; got {dim}")


def _gauss(t: np.ndarray, mean: np.ndarray, var: float) -> np.ndarray:
    return np.exp(-((t - mean) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)


def cw_by_integration(x: np.ndarray, y: np.ndarray | None, gamma: float) -> float:
    """CW distance (paper normalisation) straight from its definition, by quadrature.

    ``mean over directions v of  integral_t ( sm(v.x)(t) - sm(v.y)(t) )^2 dt``, where ``sm`` is the
    empirical law of the projections convolved with N(0, gamma). ``y=None`` stands for N(0, I),
    whose smoothed projection is N(0, 1 + gamma) on every direction.
    """
    dim = x.shape[1]
    dirs, weights = sphere_quadrature(dim)
    spread = max(np.abs(x).max(), 0 if y is None else np.abs(y).max())
    t = np.linspace(-spread - 12, spread + 12, 6001)  # (T,)
    total = 0.0
    for v, w in zip(dirs, weights, strict=True):
        fx = _gauss(t[:, None], (x @ v)[None, :], gamma).mean(axis=1)  # (T,)
        if y is None:
            fy = _gauss(t, np.zeros(1), 1 + gamma)
        else:
            fy = _gauss(t[:, None], (y @ v)[None, :], gamma).mean(axis=1)
        total += w * integrate.trapezoid((fx - fy) ** 2, t)  # np.trapezoid: NumPy 2 only
    return float(total)


def mmd_imq_loops(x: np.ndarray, y: np.ndarray, scales, bandwidth: float = 1.0) -> float:
    """Unbiased IMQ MMD^2 of WAE, with explicit loops over pairs."""
    n, dim = x.shape
    m = y.shape[0]

    def k(a, b):
        d2 = float(np.sum((a - b) ** 2))
        return sum((2 * dim * bandwidth**2 * s) / (2 * dim * bandwidth**2 * s + d2) for s in scales)

    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def mmd_gaussian_loops(x: np.ndarray, y: np.ndarray, sigma: float, biased: bool) -> float:
    """Gaussian-kernel MMD^2 (std ``sigma``), biased or unbiased, with explicit loops."""
    n, m = len(x), len(y)

    def k(a, b):
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma**2))

    off = 0 if biased else 1
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if biased or i != j) / (
        n * (n - off)
    )
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if biased or i != j) / (
        m * (m - off)
    )
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy
