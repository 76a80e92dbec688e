"""Kernel sums over pairs of points with their gradients in closed form (see :func:`distmatch._core.fused`).

The distances of this package are sums of a radial kernel over pairs of points. Autograd through
their formulas records a score of small operations per call, and replaying them backwards costs more
than the forward pass; on the small samples of moving-window training (n = 64 codes) that overhead
dominates a training step. Here the forward pass computes the value *and* the gradients with a few
matrix products, and the backward pass only scales them.

For a term ``T = w * sum_{i,j} k(|u_i - v_j|^2)`` with ``W_ij = w * k'(|u_i - v_j|^2)``::

    dT/du_i = 2 sum_j W_ij (u_i - v_j)   ->   2 (diag(W 1) u - W v)
    dT/dv_j = 2 sum_i W_ij (v_j - u_i)   ->   2 (diag(W^T 1) v - W^T u)

and for ``u = v`` (a sum within one sample) the two contributions add: ``4 (diag(W 1) u - W u)``.
Only first derivatives are provided (no double backward). Where only some points of ``u`` carry a
gradient (the fresh codes of a moving-window step), only their rows of ``W`` are computed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# A kernel profile: squared distances (N, M) -> (kernel values, derivative w.r.t. d2), both (N, M);
# called with derivative=False where only the values are needed (it may then return None for them).
Profile = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


def pair_sum(
    u: torch.Tensor,
    v: torch.Tensor | None,
    profile: Profile,
    weight: float,
    *,
    exclude_diagonal: bool = False,
    needs: tuple[bool, bool] = (True, True),
    center: bool = True,
    rows: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``weight * sum_{i,j} k(|u_i - v_j|^2)`` and its gradients with respect to ``u`` and ``v``.

    Args:
        u: (N, D) points.
        v: (M, D) points, or ``None`` for pairs within ``u``.
        profile: the kernel, as values and derivatives of squared distances.
        weight: factor of the sum.
        exclude_diagonal: leave out ``i == j`` (within ``u`` only).
        needs: which gradients to compute (``u``, ``v``).
        center: subtract the mean of ``u`` from both samples first. Distances do not change and
            round-off shrinks to the spread of the data; skip it for points near the origin.
        rows: the gradient with respect to the first ``rows`` points of ``u`` only, ``(rows, D)``
            (the others are constants, such as a moving window's stored codes): the kernel's
            derivative is needed on those rows of the (N, M) matrix only. Not with ``needs[1]``
            for a second sample ``v``.

    Returns:
        ``(value, grad_u, grad_v)``; a gradient is ``None`` where not needed (``grad_v`` always for
        ``v=None``).
    """
    if rows is not None and needs[1] and v is not None:
        raise ValueError(
            "pair_sum: rows= gives the gradient of u's first rows only; v's needs all."
        )
    same = v is None
    if center:
        centre = u.mean(dim=0, keepdim=True)  # (1, D)
        uc = u - centre  # (N, D)
        vc = uc if same else v - centre  # (M, D)
    else:
        uc, vc = u, (u if same else v)
    u2 = (uc * uc).sum(dim=1)  # (N,)
    v2 = u2 if same else (vc * vc).sum(dim=1)  # (M,)
    d2 = torch.addmm(u2[:, None] + v2[None, :], uc, vc.T, alpha=-2.0).clamp_min_(0.0)  # (N, M)
    gradient = needs[0] or (needs[1] and not same)
    k, dk = profile(d2, derivative=gradient and rows is None)
    if gradient and rows is not None:  # the derivative on the first rows only: (rows, M)
        _, dk = profile(d2[:rows])
        uc = uc[:rows]
    if exclude_diagonal:
        k.diagonal().zero_()
        if gradient:
            dk.diagonal().zero_()  # (i, i) for i < rows: the diagonal of the first rows
    value = weight * k.sum()
    grad_u = grad_v = None
    if gradient:
        w = dk.mul_(weight)  # (N, M), or (rows, M)
    if needs[0]:
        factor = 4.0 if same else 2.0
        grad_u = factor * (w.sum(dim=1, keepdim=True) * uc - w @ vc)  # (N, D) or (rows, D)
    if needs[1] and not same:
        grad_v = 2.0 * (w.sum(dim=0)[:, None] * vc - w.T @ uc)  # (M, D)
    return value, grad_u, grad_v
