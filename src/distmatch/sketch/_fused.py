"""The features' column sums of a block of rows in one GPU kernel (Triton), with no (N, m) phases.

For rows ``x`` (N, D), frequencies ``Omega`` (D, m) and dither ``xi`` (m,)::

    S_cos[j] = sum_i cos(x_i . Omega_j + xi_j),      S_sin[j] = sum_i sin(x_i . Omega_j + xi_j)

(or the sums of their signs, for quantized features). Each program of the kernel takes a tile of
``ROWS`` rows by ``FREQS`` frequencies: it accumulates the product over D in registers (float32,
IEEE products: no TF32, whose 10-bit mantissa would move phases of hundreds of radians by tenths of
a radian), adds the dither, takes the cosine and the sine and sums the tile's rows. The tile sums of
each block of rows go to a (row blocks, 2, m) buffer, which one float64 sum reduces: the result
does not depend on the order in which programs run (no atomic additions). Offsets are 64-bit, and
on a GPU the cosines and sines are CUDA's correctly range-reduced ``cosf`` and ``sinf``.

The compiled path of :class:`~distmatch.sketch._features.FeatureSummer` writes the (rows, m) phases
of a product and reads them back once; this kernel never writes them. On CPU tensors it runs in
Triton's interpreter, in a process started with ``TRITON_INTERPRET=1`` (slow: for tests).
"""

from __future__ import annotations

import functools
import os

import torch

__all__ = ["fused_available", "fused_feature_sums"]

ROWS = 64  # rows of a tile (and of a block whose sums are kept apart)
FREQS = 64  # frequencies of a tile
DEPTH = 32  # features taken per step of the product
# rows per call of the summer: the tile sums of a call take BLOCK_ROWS / ROWS * 2m floats (10 MB
# at m = 10,000), whatever the chunk
BLOCK_ROWS = 16_384


def fused_available(device: torch.device | str) -> bool:
    """Whether :func:`fused_feature_sums` can run on ``device`` as a GPU kernel: CUDA and Triton."""
    if torch.device(device).type != "cuda":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def fused_feature_sums(
    x: torch.Tensor, omega: torch.Tensor, dither: torch.Tensor, quantized: bool = False
) -> torch.Tensor:
    """``[sum_i cos(x_i Omega + xi); sum_i sin(x_i Omega + xi)]`` (or their signs): (2, m) float64.

    Args:
        x: (N, D) float32 rows on a CUDA device (or the CPU, in Triton's interpreter: a process
            started with ``TRITON_INTERPRET=1``).
        omega: (D, m) float32 frequencies, same device.
        dither: (m,) float32 dither, same device.
        quantized: sum the signs of the cosines and sines (universal 1-bit features).

    Raises:
        ValueError: shapes, dtypes or devices that do not fit.
    """
    if x.dim() != 2 or omega.dim() != 2 or omega.shape[0] != x.shape[1]:
        raise ValueError(
            f"x must be (N, D) and omega (D, m); got {tuple(x.shape)} and {tuple(omega.shape)}."
        )
    m = omega.shape[1]
    tensors = {"x": x, "omega": omega, "dither": dither}
    for name, t in tensors.items():
        if t.dtype != torch.float32 or t.device != x.device:
            raise ValueError(f"{name} must be float32 on {x.device}; got {t.dtype} on {t.device}.")
    if dither.shape != (m,):
        raise ValueError(f"dither must have shape ({m},); got {tuple(dither.shape)}.")
    if x.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            "the fused kernel needs CUDA tensors (or a process started with TRITON_INTERPRET=1, "
            f"for Triton's interpreter); got {x.device.type} tensors."
        )
    n, d = x.shape
    if n == 0:
        return torch.zeros(2, m, dtype=torch.float64, device=x.device)
    omega, dither = omega.contiguous(), dither.contiguous()
    blocks = -(-n // ROWS)
    partial = torch.empty(blocks, 2, m, dtype=torch.float32, device=x.device)
    grid = (blocks, -(-m // FREQS))
    _kernel()[grid](
        x, omega, dither, partial, n, d, m, x.stride(0), x.stride(1), omega.stride(0),
        ROWS=ROWS, FREQS=FREQS, DEPTH=DEPTH, QUANTIZED=bool(quantized),
        PRECISE=x.device.type == "cuda",
    )  # fmt: skip
    return partial.sum(0, dtype=torch.float64)


@functools.cache
def _kernel():
    """The Triton kernel (:mod:`._fused_kernel` imports Triton, so only when it is first used)."""
    from ._fused_kernel import feature_sums

    return feature_sums
