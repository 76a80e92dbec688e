"""The Triton kernel of :mod:`distmatch.sketch._fused` (this module imports Triton; the launcher
imports it only when the kernel is first used)."""

import triton
import triton.language as tl
from triton.language.extra import libdevice


@triton.jit
def feature_sums(
    x_ptr, omega_ptr, dither_ptr, out_ptr, n, d, m, stride_xn, stride_xd, stride_od,
    ROWS: tl.constexpr, FREQS: tl.constexpr, DEPTH: tl.constexpr, QUANTIZED: tl.constexpr,
    PRECISE: tl.constexpr,
):  # fmt: skip
    """Tile sums of ``[cos; sin](x Omega + xi)`` over ``ROWS`` rows, for ``FREQS`` frequencies.

    Offsets are 64-bit: a chunk of 1024² RGB images passes 2^31 elements within 700 rows.
    ``PRECISE`` (on a GPU) takes CUDA's correctly range-reduced ``cosf``/``sinf`` (phases reach
    hundreds of radians); Triton's interpreter has only ``tl.cos``/``tl.sin`` (NumPy's, exact).
    """
    block = tl.program_id(0).to(tl.int64)
    rows = block * ROWS + tl.arange(0, ROWS)  # int64
    freqs = tl.program_id(1) * FREQS + tl.arange(0, FREQS)
    acc = tl.zeros((ROWS, FREQS), dtype=tl.float32)
    for start in range(0, d, DEPTH):
        feats = start + tl.arange(0, DEPTH)
        x_tile = tl.load(
            x_ptr + rows[:, None] * stride_xn + feats[None, :].to(tl.int64) * stride_xd,
            mask=(rows[:, None] < n) & (feats[None, :] < d),
            other=0.0,
        )
        omega_tile = tl.load(
            omega_ptr + feats[:, None].to(tl.int64) * stride_od + freqs[None, :],
            mask=(feats[:, None] < d) & (freqs[None, :] < m),
            other=0.0,
        )
        acc += tl.dot(x_tile, omega_tile, input_precision="ieee")
    phase = acc + tl.load(dither_ptr + freqs, mask=freqs < m, other=0.0)[None, :]
    if PRECISE:
        cos, sin = libdevice.cos(phase), libdevice.sin(phase)
    else:
        cos, sin = tl.cos(phase), tl.sin(phase)
    if QUANTIZED:  # sign(0) = 0, as torch.sign
        cos = tl.where(cos > 0, 1.0, tl.where(cos < 0, -1.0, 0.0))
        sin = tl.where(sin > 0, 1.0, tl.where(sin < 0, -1.0, 0.0))
    inside = rows[:, None] < n
    cos, sin = tl.where(inside, cos, 0.0), tl.where(inside, sin, 0.0)
    out = out_ptr + block * 2 * m + freqs
    tl.store(out, tl.sum(cos, axis=0), mask=freqs < m)
    tl.store(out + m, tl.sum(sin, axis=0), mask=freqs < m)
