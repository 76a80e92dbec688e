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


# Two samples are joined into one (N + M, N + M) matrix while it stays this small (elements): one
# matrix product and one kernel evaluation instead of three of each, which is what a training
# step on n = 64 codes pays for. Beyond it, three blocks keep memory at the largest one.
JOIN_LIMIT = 1 << 20


def two_sample_sum(
    x: torch.Tensor,
    y: torch.Tensor,
    profile: Profile,
    weights: tuple[float, float, float],
    *,
    exclude_diagonal: bool = False,
    needs: tuple[bool, bool] = (True, True),
    rows: int | None = None,
    join: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``a sum_ij k(x_i, x_j) + b sum_ij k(y_i, y_j) + c sum_ij k(x_i, y_j)`` and its gradients
    with respect to ``x`` and ``y``, for ``weights = (a, b, c)``.

    Small samples are joined into ``u = [x; y]`` with symmetric block weights ``W`` (``a`` on
    x-x pairs, ``b`` on y-y pairs, ``c / 2`` on x-y and on y-x pairs), so that the sum is
    ``T = sum_ij W_ij k(|u_i - u_j|^2)``, one (N + M)^2 matrix, and::

        dT/du_i = 4 sum_j W_ij k'(|u_i - u_j|^2) (u_i - u_j)

    Args:
        x: (N, D) points.
        y: (M, D) points.
        profile: the kernel, as values and derivatives of squared distances.
        weights: ``(a, b, c)``.
        exclude_diagonal: leave out ``i == j`` within each sample (U-statistics).
        needs: which gradients to compute (``x``, ``y``).
        rows: the gradient with respect to the first ``rows`` points of ``x`` only,
            ``(rows, D)``; not with ``needs[1]``.
        join: join small samples (else three blocks, each centred on its own sample). The joined
            matrix is centred on the mean of both samples: in float32, the distances within a
            sample lose precision when the two samples lie far apart for their spread (e.g.
            1000 apart with a spread of 0.05). The training objective joins its codes and prior
            draws, which share a scale; the public distances do not join.

    Returns:
        ``(value, grad_x, grad_y)``; a gradient is ``None`` where not needed.
    """
    if rows is not None and needs[1]:
        raise ValueError(
            "two_sample_sum: rows= gives the gradient of x's first rows only; y's needs all."
        )
    (n, _), m = x.shape, y.shape[0]
    a, b, c = weights
    if not join or (n + m) ** 2 > JOIN_LIMIT:  # three blocks
        xx, g_xx, _ = pair_sum(
            x, None, profile, a, exclude_diagonal=exclude_diagonal, needs=(needs[0], False), rows=rows
        )  # fmt: skip
        yy, g_yy, _ = pair_sum(
            y, None, profile, b, exclude_diagonal=exclude_diagonal, needs=(needs[1], False)
        )  # fmt: skip
        xy, g_x, g_y = pair_sum(x, y, profile, c, needs=needs, rows=rows)
        return xx + yy + xy, (g_xx + g_x if needs[0] else None), (g_yy + g_y if needs[1] else None)
    u = torch.cat([x, y])  # (N + M, D)
    uc = u - u.mean(dim=0, keepdim=True)
    u2 = (uc * uc).sum(dim=1)  # (N + M,)
    d2 = torch.addmm(u2[:, None] + u2[None, :], uc, uc.T, alpha=-2.0).clamp_min_(0.0)
    gradient = needs[0] or needs[1]
    k, dk = profile(d2, derivative=gradient and rows is None)
    if gradient and rows is not None:  # the derivative on x's first rows only: (rows, N + M)
        _, dk = profile(d2[:rows])
        uc_rows = uc[:rows]
    else:
        uc_rows = uc
    weight = block_weights(n, m, weights, exclude_diagonal, d2)  # (N + M, N + M)
    value = torch.dot(k.view(-1), weight.view(-1))
    if not gradient:
        return value, None, None
    w = dk.mul_(weight if rows is None else weight[:rows])  # (N + M or rows, N + M): W_ij k'_ij
    grad = 4.0 * (w.sum(dim=1, keepdim=True) * uc_rows - w @ uc)  # (N + M or rows, D)
    return value, (grad[:n] if needs[0] else None), (grad[n:] if needs[1] else None)


def block_weights(
    n: int,
    m: int,
    weights: tuple[float, float, float],
    exclude_diagonal: bool,
    like: torch.Tensor,
) -> torch.Tensor:
    """The (N + M, N + M) weights ``W`` of :func:`two_sample_sum`, of ``like``'s dtype and device:
    ``a`` on the x-x block, ``b`` on the y-y block, ``c / 2`` on the two others, and 0 on the
    diagonal if ``exclude_diagonal``.

    Kept for the last few (sizes, weights, dtype, device) of up to ``KEPT_WEIGHTS`` entries: one
    matrix replaces a dozen operations on blocks in every call (a tensor operation costs more than
    its arithmetic at N = 64; on a GPU, a launch). Nothing writes into it. Larger ones, and those
    of a compiled graph or a CUDA graph being captured, are built in every call.
    """
    a, b, c = weights
    key = (n, m, weights, exclude_diagonal, like.dtype, like.device)
    keep = (
        (n + m) ** 2 <= KEPT_WEIGHTS
        and not torch.compiler.is_compiling()
        # in a CUDA graph being captured the graph makes its own (a kept one could be evicted
        # and its memory reused while the graph still reads it)
        and not (like.is_cuda and torch.cuda.is_current_stream_capturing())
    )
    if keep:
        kept = _WEIGHTS.get(key)
        if kept is not None:
            return kept
    weight = torch.full((n + m, n + m), 0.5 * c, dtype=like.dtype, device=like.device)
    weight[:n, :n] = a
    weight[n:, n:] = b
    if exclude_diagonal:
        weight.fill_diagonal_(0.0)
    if keep:
        if len(_WEIGHTS) >= 8:
            _WEIGHTS.clear()
        _WEIGHTS[key] = weight
    return weight


KEPT_WEIGHTS = 1 << 16  # entries: (N + M) <= 256, at most 8 x 512 KiB kept in float64
_WEIGHTS: dict[tuple, torch.Tensor] = {}
