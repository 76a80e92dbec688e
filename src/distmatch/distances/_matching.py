"""The 1-D optimal matching of two equal-size samples, row by row: ``a - sort(b)[rank(a)]``.

For equal-size empirical measures on the line the optimal coupling pairs the ``r``-th smallest
``a`` with the ``r``-th smallest ``b``. :func:`matched_gaps` returns, for every entry of ``a`` in its
own position, its gap to the ``b`` it is matched with::

    gaps[l, i] = a[l, i] - sort(b[l])[rank_l(a[l, i])]

so ``mean |gaps|^p`` is the 1-D ``W_p^p`` of each row and ``p |gaps|^(p-1) sign(gaps) / numel`` is
its gradient with respect to ``a``, in place, with no scatter through a permutation. Ties in ``a``
are matched in some order of their own; the value does not depend on it.

On the CPU, PyTorch's sort of many short rows costs 5-10 times NumPy's (vectorised quicksort); in a
moving-window SWAE step (50 rows of 64) the two sorts cost more than the rest of the distance
term. So float32/float64 CPU tensors are matched by NumPy inside an operator of the ``distmatch``
library, which ``torch.compile`` calls as one opaque node (the sort in a compiled graph was slower
still). The operators have a CPU kernel only (their inputs are detached): registered with
``torch.library.custom_op`` instead, each call would pass through a Python autograd kernel, which
cost a compiled SWAE step of ``mnist_mlp`` (one CPU core) about 5 %. Other devices and dtypes use
``torch.sort``, which a GPU graph can capture.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["matched_gaps", "sorted_rows"]

_NUMPY_DTYPES = (torch.float32, torch.float64)

_LIBRARY = torch.library.Library("distmatch", "FRAGMENT")


def _operator(name: str, schema: str, kernel):
    """``torch.ops.distmatch.<name>``: ``kernel`` as its CPU kernel, not differentiable (autograd
    passes through: its output never requires a gradient), outputs contiguous and shaped as its
    first input for tracing (a compiled graph calls it as one node). Defined once per process
    (this module loaded again under another name reuses it)."""
    if not hasattr(torch.ops.distmatch, name):
        _LIBRARY.define(f"{name}{schema}")
        _LIBRARY.impl(name, kernel, "CPU")
        _LIBRARY.impl(name, torch.library.fallthrough_kernel, "Autograd")
        torch.library.register_fake(f"distmatch::{name}", lib=_LIBRARY)(
            lambda a, *rest: a.new_empty(a.shape)
        )
    return getattr(torch.ops.distmatch, name).default


def matched_gaps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - sort(b)[rank(a)]`` along the last dimension (no gradient; see the module docstring).

    Args:
        a: (L, N) values.
        b: (L, N) values, same shape, dtype and device.

    Returns:
        (L, N) gaps of each ``a`` entry to its matched ``b``.
    """
    if a.device.type == "cpu" and a.dtype in _NUMPY_DTYPES:
        # the operator for a compiled graph; called directly, its dispatch would cost as much
        # as two of the sorts
        gaps = _numpy_gaps if torch.compiler.is_compiling() else _numpy_gaps_eager
        return gaps(a.detach(), b.detach())
    return _torch_gaps(a.detach(), b.detach())


def _torch_gaps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(a, dim=-1)  # (L, N)
    matched = torch.empty_like(a).scatter_(-1, order, torch.sort(b, dim=-1).values)  # (L, N)
    return a - matched


def _numpy_gaps_eager(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a_np = a.detach().contiguous().numpy()  # (L, N)
    rows, width = a_np.shape
    order = np.argsort(a_np, axis=-1)  # (L, N)
    flat = (order + np.arange(rows)[:, None] * width).ravel()  # (L N,) row-major positions
    matched = np.empty(rows * width, dtype=a_np.dtype)
    matched[flat] = np.sort(b.detach().contiguous().numpy(), axis=-1).ravel()
    return torch.from_numpy(a_np - matched.reshape(rows, width))


_numpy_gaps = _operator("matched_gaps", "(Tensor a, Tensor b) -> Tensor", _numpy_gaps_eager)


def sorted_rows(a: torch.Tensor) -> torch.Tensor:
    """``a`` sorted along its last dimension, values only (no gradient); NumPy's sort on the CPU,
    as :func:`matched_gaps` (an operator of the ``distmatch`` library inside compiled graphs)."""
    if a.device.type == "cpu" and a.dtype in _NUMPY_DTYPES:
        rows = _numpy_sorted if torch.compiler.is_compiling() else _numpy_sorted_eager
        return rows(a.detach())
    return torch.sort(a.detach(), dim=-1).values


def _numpy_sorted_eager(a: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.sort(a.detach().contiguous().numpy(), axis=-1))


_numpy_sorted = _operator("sorted_rows", "(Tensor a) -> Tensor", _numpy_sorted_eager)


def fresh_ranks(proj: torch.Tensor, sorted_proj: torch.Tensor, b: int) -> torch.Tensor:
    """The ranks of the first ``b`` entries of every row of ``proj`` (L, N) within their row:
    ``#{j: a_j < a_i} + #{j < i: a_j = a_i}``, so that tied entries take distinct ranks in the order
    of their index, as a stable sort ranks them (the first ``b`` entries come before any tied
    later one). ``sorted_proj``: the rows of ``proj`` sorted. (L, b) long; memory O(L b^2).

    In a compiled graph the entries below are counted, ``sum_j [a_j < a_i]``, in one fused loop
    (O(L b N) comparisons, no (L, b, N) tensor); eagerly a binary search in ``sorted_proj`` finds
    them."""
    fresh = proj[:, :b].contiguous()  # (L, b)
    if torch.compiler.is_compiling():  # entries strictly below each, counted
        below = (proj[:, None, :] < fresh[:, :, None]).sum(dim=-1)
    else:  # the same, by binary search
        below = torch.searchsorted(sorted_proj, fresh)
    if b == 1:
        return below
    order = torch.arange(b, device=proj.device)
    earlier = order[None, :] < order[:, None]  # (b, b): j before i
    ties = ((fresh[:, None, :] == fresh[:, :, None]) & earlier).sum(dim=-1)  # (L, b)
    return below + ties
