"""Kernels on sample pairs, as functions of squared Euclidean distances.

Each kernel maps a matrix of squared distances ``d2 = |x_i - y_j|^2`` to the kernel matrix, summed
over a tuple of scales ``s``, and returns its derivative with respect to ``d2`` beside it (the
distances build their gradients in closed form from it), or None for ``derivative=False``.
``bandwidth`` enters every kernel the same way: it multiplies each scale, so a kernel with
``bandwidth=b`` and scales ``s`` equals one with ``bandwidth=1`` and scales ``b*s``.

``KERNELS`` is the table of contents: name -> (kernel function, default scales).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "KERNELS",
    "folded_gaussian_kernel",
    "gaussian_kernel",
    "imq_kernel",
    "squared_distances",
]

WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


# Several scales are evaluated in one broadcast pass while the (S, N, M) stack stays this small
# (elements); beyond it, one scale at a time keeps memory at (N, M).
BROADCAST_LIMIT = 1 << 22


def _broadcast(d2: torch.Tensor, scales: tuple[float, ...]) -> bool:
    return len(scales) > 1 and d2.numel() * len(scales) <= BROADCAST_LIMIT


def _scale_column(d2: torch.Tensor, values: list[float]) -> torch.Tensor:
    """``values`` as an (S, 1, 1) tensor of ``d2``'s dtype and device.

    Kept once per (values, dtype, device): a host-to-device copy per call would cost a few µs
    per step and cannot be captured in a CUDA graph. A compiled graph holds it as a constant.
    """
    if torch.compiler.is_compiling():
        return torch.tensor(values, dtype=d2.dtype, device=d2.device).view(-1, 1, 1)
    key = (tuple(values), d2.dtype, d2.device)
    column = _COLUMNS.get(key)
    if column is None:
        column = _COLUMNS[key] = torch.tensor(values, dtype=d2.dtype, device=d2.device)
    return column.view(-1, 1, 1)


_COLUMNS: dict[tuple, torch.Tensor] = {}  # read-only tensors: nothing writes into them


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances ``|x_i - y_j|^2``.

    Computed as ``|x|^2 + |y|^2 - 2 x.y`` after subtracting a common point (the detached mean of
    ``x``): distances do not change, and the cancellation error shrinks to the spread of the data
    instead of its distance from the origin. Clamped at 0 against round-off.

    Args:
        x: (N, D) samples.
        y: (M, D) samples.

    Returns:
        (N, M) tensor of squared distances.
    """
    centre = x.detach().mean(dim=0, keepdim=True)  # (1, D)
    x = x - centre  # (N, D)
    y = y - centre  # (M, D)
    x2 = (x * x).sum(dim=1, keepdim=True)  # (N, 1)
    y2 = (y * y).sum(dim=1, keepdim=True)  # (M, 1)
    d2 = x2 + y2.T - 2.0 * (x @ y.T)  # (N, M)
    return d2.clamp_min(0.0)


def imq_kernel(
    d2: torch.Tensor,
    dim: int,
    bandwidth: float,
    scales: tuple[float, ...],
    *,
    derivative: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inverse multiquadratic kernel of WAE-MMD, summed over scales, and its derivative.

    ``k(x, y) = sum_s C_s / (C_s + |x - y|^2)``,  ``C_s = 2 * D * bandwidth^2 * s``;
    ``dk/d(d2) = -sum_s C_s / (C_s + d2)^2``

    (Tolstikhin et al., "Wasserstein Auto-Encoders", ICLR 2018; ``bandwidth^2`` is the variance of
    the isotropic Gaussian prior, 1 for N(0, I).)

    Args:
        d2: (N, M) squared distances.
        dim: D, the number of features.
        bandwidth: prior standard deviation; ``C`` grows with its square.
        scales: the factors ``s``.
        derivative: also compute ``dk`` (else it is None).

    Returns:
        ``(k, dk)``: (N, M) kernel matrix and its derivative with respect to ``d2``.
    """
    base = 2.0 * dim * bandwidth**2
    if _broadcast(d2, scales):
        c = _scale_column(d2, [base * s for s in scales])  # (S, 1, 1)
        t = c / (d2 + c)  # (S, N, M)
        k = t.sum(dim=0)
        if not derivative:
            return k, None
        return k, t.square_().div_(c).sum(dim=0).neg_()
    k = torch.zeros_like(d2)  # (N, M)
    dk = torch.zeros_like(d2) if derivative else None  # (N, M)
    for s in scales:
        c = base * s
        t = c / (c + d2)  # (N, M)
        k += t
        if derivative:
            dk -= t * t / c
    return k, dk


def gaussian_kernel(
    d2: torch.Tensor,
    dim: int,
    bandwidth: float,
    scales: tuple[float, ...],
    *,
    derivative: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gaussian kernel, summed over scales, and its derivative.

    ``k(x, y) = sum_s exp(-|x - y|^2 / (2 * (bandwidth * s)^2))``;
    ``dk/d(d2) = -sum_s exp(...) / (2 * (bandwidth * s)^2)``

    ``bandwidth * s`` is the kernel's standard deviation (not its variance).

    Args:
        d2: (N, M) squared distances.
        dim: D, unused (kept so that all kernels share one signature).
        bandwidth: standard deviation of the kernel at scale 1.
        scales: the factors ``s``.
        derivative: also compute ``dk`` (else it is None).

    Returns:
        ``(k, dk)``: (N, M) kernel matrix and its derivative with respect to ``d2``.
    """
    del dim
    if _broadcast(d2, scales):
        rate = _scale_column(d2, [-1.0 / (2.0 * (bandwidth * s) ** 2) for s in scales])  # (S, 1, 1)
        t = torch.exp(d2 * rate)  # (S, N, M)
        k = t.sum(dim=0)
        return k, (t.mul_(rate).sum(dim=0) if derivative else None)
    k = torch.zeros_like(d2)  # (N, M)
    dk = torch.zeros_like(d2) if derivative else None  # (N, M)
    for s in scales:
        two_var = 2.0 * (bandwidth * s) ** 2
        t = torch.exp(-d2 / two_var)  # (N, M)
        k += t
        if derivative:
            dk -= t / two_var
    return k, dk


def folded_gaussian_kernel(
    d2: torch.Tensor,
    dim: int,
    bandwidth: float,
    scales: tuple[float, ...],
    *,
    derivative: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The kernel of random Fourier features with folded-Gaussian radii, in 2-D, summed over scales.

    Frequencies ``w = R u / b`` with ``R = |N(0, 1)|`` and ``u`` uniform on the circle give, for
    ``s = |x - y| / (b * scale)``, ``k = exp(-s^2 / 4) I0(s^2 / 4) = i0e(s^2 / 4)``, the kernel that
    the CL-GN sketch's squared distance estimates an MMD for.
    ``dk/d(d2) = (i1e(t) - i0e(t)) / (4 (b * scale)^2)`` with ``t = s^2 / 4``.

    Args:
        d2: (N, M) squared distances.
        dim: must be 2 (the closed form holds in the plane only).
        bandwidth: the frequency law's bandwidth ``b``.
        scales: factors applied to ``bandwidth``.
        derivative: also compute ``dk`` (else it is None).

    Returns:
        ``(k, dk)``: (N, M) kernel matrix and its derivative with respect to ``d2``.

    Raises:
        ValueError: ``dim`` is not 2.
    """
    if dim != 2:
        raise ValueError(f"the folded_gaussian kernel needs D = 2 features; got D = {dim}.")
    k = torch.zeros_like(d2)  # (N, M)
    dk = torch.zeros_like(d2) if derivative else None  # (N, M)
    for s in scales:
        c = 1.0 / (4.0 * (bandwidth * s) ** 2)
        t = d2 * c  # (N, M)
        value = torch.special.i0e(t)
        k += value
        if derivative:
            dk += (torch.special.i1e(t) - value) * c
    return k, dk


# (d2, dim, bandwidth, scales, *, derivative=True) -> (kernel values, derivative or None)
KernelFn = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]

KERNELS: dict[str, tuple[KernelFn, tuple[float, ...]]] = {
    "imq": (imq_kernel, WAE_SCALES),
    "gaussian": (gaussian_kernel, (1.0,)),
    "folded_gaussian": (folded_gaussian_kernel, (1.0,)),
}
