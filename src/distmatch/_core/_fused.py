"""One autograd node for a value whose gradient is written in closed form.

Autograd through a formula records a score of small operations per call, and replaying them
backwards can cost more than the forward pass; on small inputs that overhead dominates. With
:func:`fused` the forward pass computes the value *and* the gradients, and the backward pass only
scales them. Only first derivatives are provided: a backward pass with ``create_graph=True``
(a gradient of the gradient) is refused with a clear error, not silently left without one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["Grads", "fused"]

Grads = tuple[torch.Tensor | None, ...]


class _Fused(torch.autograd.Function):
    """Value from ``compute``; its closed-form gradients are saved and scaled on the way back."""

    @staticmethod
    def forward(ctx, compute: Callable[..., tuple[torch.Tensor, Grads]], *inputs: torch.Tensor):
        needs = tuple(ctx.needs_input_grad[1:])
        value, grads = compute(*inputs, needs=needs)
        ctx.save_for_backward(*(g if g is not None else None for g in grads))
        return value

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        if torch.is_grad_enabled():  # create_graph=True: a gradient of the gradient is asked for
            raise RuntimeError(
                "this distance provides first derivatives only; got a backward pass with "
                "create_graph=True (e.g. a gradient penalty), whose gradient would be missing."
            )
        with torch.no_grad():
            grads = [None if g is None else g * grad_output for g in ctx.saved_tensors]
        return (None, *grads)


def fused(compute: Callable[..., tuple[torch.Tensor, Grads]], inputs: Sequence[torch.Tensor]):
    """Evaluates ``compute(*inputs, needs=...)`` as one autograd node.

    ``compute`` returns the 0-d value and one gradient (or ``None``) per input; it runs without
    autograd. When no input requires a gradient, no gradient is computed.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        return _Fused.apply(compute, *inputs)
    with torch.no_grad():
        value, _ = compute(*inputs, needs=(False,) * len(inputs))
    return value
