"""The feature map of every sketch, written once: ``phi(x) = [cos(x Omega + xi); sin(x Omega + xi)]
/ sqrt(m)``, and the objects built on it.

Part of :mod:`distmatch.sketch`, which re-exports the public names. Every sketch computation reads
its phases through :func:`phases` and its features through :func:`cos_sin`: the feature map of
:class:`FourierFeatures`, the one-pass sums (:class:`FeatureSummer`), the sketch distance, the
bandwidth fit and the skwae prior (:func:`mean_features`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn

from .._core import (
    check_choice,
    check_generator,
    check_memory,
    check_positive,
    check_positive_int,
    check_samples,
    check_seed,
)
from ._chunks import check_dim
from ._fused import BLOCK_ROWS, fused_feature_sums
from ._laws import LAWS, as_float64, draw_frequencies, inverse_sqrt_cov

__all__ = [
    "BLOCK_ELEMENTS",
    "QUANTIZED_GAIN",
    "FeatureSummer",
    "FourierFeatures",
    "cos_sin",
    "mean_features",
    "phase_sums",
    "phases",
]

# First Fourier coefficient of sign(cos t): the decoder gain of universal 1-bit sketches.
QUANTIZED_GAIN = 4 / math.pi

# Elements of one (rows, m) block of phases: 64 MiB in float32, so the workspace stays small
# whatever batch_size is, and big enough for the matrix product to run at full speed.
BLOCK_ELEMENTS = 1 << 24


def phases(
    x: torch.Tensor,
    omega: torch.Tensor,
    dither: torch.Tensor | None = None,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``t = x Omega + xi``: the (N, m) phases of the rows of ``x`` (N, D) for frequencies (D, m).

    ``out`` receives them when given (a reused workspace).
    """
    if dither is None:
        return torch.mm(x, omega, out=out)  # (N, m)
    return torch.addmm(dither, x, omega, out=out)  # (N, m)


def cos_sin(
    t: torch.Tensor, quantized: bool = False, *, sin_out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos t, sin t)``, or their signs for quantized (universal 1-bit) features.

    With ``sin_out`` (a workspace of the shape of ``t``) nothing is allocated: the sines go there
    and the cosines overwrite ``t`` (no gradient flows through this form).
    """
    if sin_out is None:
        cos, sin = torch.cos(t), torch.sin(t)
        return (cos.sign(), sin.sign()) if quantized else (cos, sin)
    torch.sin(t, out=sin_out)
    t.cos_()
    if quantized:
        t.sign_(), sin_out.sign_()
    return t, sin_out


def mean_features(
    x: torch.Tensor,
    omega: torch.Tensor,
    dither: torch.Tensor | None = None,
    *,
    quantized: bool = False,
) -> torch.Tensor:
    """``1/N sum_i phi(x_i)``: the (2m,) mean features ``[mean cos t; mean sin t] / sqrt(m)`` of the
    rows of ``x`` (N, D), differentiable."""
    cos, sin = cos_sin(phases(x, omega, dither), quantized)  # (N, m) each
    return torch.cat([cos.mean(0), sin.mean(0)]) / math.sqrt(omega.shape[1])  # (2m,)


class FourierFeatures(nn.Module):
    """Random Fourier features ``phi(x) = [cos(x Omega + xi), sin(x Omega + xi)] / sqrt(m)``.

    The frequencies are ``omega_j = R_j Sigma^{-1/2} u_j / bandwidth`` (:data:`LAWS`): ``bandwidth``
    divides the frequencies, so it multiplies the length scale of the kernel (for the Gaussian law
    the kernel is exactly ``exp(-|x - y|^2 / (2 bandwidth^2))``). Frequencies and dither are drawn
    once, in float64, and kept as buffers of the default dtype (part of the state dict). Inputs of
    another dtype or device use a converted copy; the output follows the input.

    Quantized (universal 1-bit) features are ``[sign(cos(.)), sign(sin(.))] / sqrt(m)``; they need
    the uniform dither, without which the quantization error does not average out.

    Args:
        dim: D, the dimension of the data.
        n_frequencies: m; the features have 2m entries.
        law: name in :data:`LAWS` (``"gaussian"``, ``"folded_gaussian"``, ``"adapted_radius"``).
        bandwidth: the kernel's length scale, > 0 (CL-GN: ``sqrt(1e-3)`` on data in the unit ball).
        cov: optional (D, D) symmetric positive-definite shape matrix ``Sigma``.
        dither: draw ``xi`` uniform on ``[0, 2 pi)``; zeros otherwise.
        quantized: 1-bit features (requires ``dither=True``).
        generator: source of the frequencies and the dither.
        seed: draw from ``torch.Generator().manual_seed(seed)`` instead (not with ``generator``);
            recorded, so that a sketch file can store the seed instead of the (D, m) frequencies.

    Attributes:
        frequencies: (D, m) buffer ``Omega``.
        dither: (m,) buffer ``xi`` (zeros without dither).
        dim, n_frequencies, law, bandwidth, cov, quantized: as given (``cov`` as a float64 tensor;
            ``law`` and ``bandwidth`` are ``None`` for :meth:`from_frequencies` without them).
        dithered: whether ``xi`` was drawn.
        seed: the seed given, or None.

    Raises:
        TypeError, ValueError: bad options (the message names the argument).

    Example:
        >>> features = FourierFeatures(2, 1000, bandwidth=0.1)
        >>> features(torch.randn(5, 2)).shape
        torch.Size([5, 2000])

    Reference:
        Rahimi & Recht 2007; Schellekens & Jacques 2020, eq. (1); pycle ``drawFrequencies``.
    """

    frequencies: torch.Tensor
    dither: torch.Tensor

    def __init__(
        self,
        dim: int,
        n_frequencies: int,
        *,
        law: str = "folded_gaussian",
        bandwidth: float = 1.0,
        cov: torch.Tensor | np.ndarray | None = None,
        dither: bool = False,
        quantized: bool = False,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if seed is not None:
            if generator is not None:
                raise ValueError("seed must be None when a generator is given; got both.")
            seed = check_seed(seed, bits=63)
            generator = torch.Generator().manual_seed(seed)
        check_positive_int(dim, "dim")
        check_positive_int(n_frequencies, "n_frequencies")
        # float64 draws of the radii, directions and frequencies, then the kept copy
        check_memory(8 * (3 * dim + 4) * n_frequencies, f"n_frequencies={n_frequencies}")
        check_choice(law, "law", LAWS)
        check_positive(bandwidth, "bandwidth")
        _check_flags(dither, quantized)
        check_generator(generator)
        cov_inv_sqrt = None if cov is None else inverse_sqrt_cov(cov, dim)
        omega = draw_frequencies(dim, n_frequencies, law, bandwidth, cov_inv_sqrt, generator)
        dtype = torch.get_default_dtype()
        if not bool(torch.isfinite(omega.to(dtype)).all()):  # omega ~ 1 / bandwidth
            raise ValueError(
                f"bandwidth must be large enough for finite {dtype} frequencies; got {bandwidth:g}."
            )
        if dither:
            device = "cpu" if generator is None else generator.device
            xi = torch.rand(n_frequencies, generator=generator, dtype=torch.float64, device=device)
            xi = 2 * math.pi * xi.cpu()  # (m,)
        else:
            xi = torch.zeros(n_frequencies, dtype=torch.float64)
        cov = None if cov is None else as_float64(cov, "cov")
        self._set(omega.to(dtype), xi.to(dtype), law, bandwidth, cov, bool(dither), quantized)
        self.seed = seed

    def _set(self, omega, xi, law, bandwidth, cov, dithered, quantized) -> None:
        self.register_buffer("frequencies", omega)  # (D, m)
        self.register_buffer("dither", xi)  # (m,)
        self.dim, self.n_frequencies = omega.shape
        self.law, self.bandwidth, self.cov = law, bandwidth, cov
        self.dithered, self.quantized = dithered, bool(quantized)
        self.seed = None

    def redrawn(self) -> FourierFeatures | None:
        """The features drawn again from the recorded seed and options, on the CPU, or None when
        there is no seed or the draw no longer gives these frequencies and dither exactly (they
        were changed after the draw)."""
        if self.seed is None or self.law is None or self.bandwidth is None:
            return None
        again = FourierFeatures(
            self.dim, self.n_frequencies, law=self.law, bandwidth=self.bandwidth, cov=self.cov,
            dither=self.dithered, quantized=self.quantized, seed=self.seed,
        )  # fmt: skip
        again = again.to(self.frequencies.dtype)  # as a reader of the file will have them
        same = all(
            torch.equal(mine.detach().cpu(), drawn)
            for mine, drawn in ((self.frequencies, again.frequencies), (self.dither, again.dither))
        )
        return again if same else None

    @classmethod
    def from_frequencies(
        cls,
        frequencies: torch.Tensor,
        dither: torch.Tensor | None = None,
        *,
        quantized: bool = False,
        law: str | None = None,
        bandwidth: float | None = None,
        cov: torch.Tensor | None = None,
    ) -> FourierFeatures:
        """Features with given frequencies (D, m) and dither (m,); law/bandwidth/cov as metadata.

        Raises:
            TypeError, ValueError: malformed arrays, or ``quantized`` without a dither.
        """
        omega = _check_array(frequencies, "frequencies", 2)  # (D, m)
        dithered = dither is not None
        xi = torch.zeros_like(omega[0]) if dither is None else _check_array(dither, "dither", 1)
        if xi.shape != omega.shape[1:]:
            raise ValueError(
                f"dither must have shape ({omega.shape[1]},); got shape {tuple(xi.shape)}."
            )
        _check_flags(dithered, quantized)
        if law is not None:
            check_choice(law, "law", LAWS)
        if cov is not None:
            cov = as_float64(cov, "cov")
            if tuple(cov.shape) != (omega.shape[0],) * 2:
                raise ValueError(
                    f"cov must have shape (D, D) = ({omega.shape[0]}, {omega.shape[0]}); got "
                    f"{tuple(cov.shape)}."
                )
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._set(omega, xi, law, bandwidth, cov, dithered, quantized)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of ``x`` (N, D): (N, 2m), in the dtype and on the device of ``x``."""
        x = check_samples(x, "x")
        check_dim(x, self.dim, "x")
        omega = self.frequencies.to(x.device, x.dtype)  # (D, m)
        t = phases(x, omega, self.dither.to(x.device, x.dtype))  # (N, m)
        cos, sin = cos_sin(t, self.quantized)  # (N, m) each
        return torch.cat([cos, sin], dim=1).mul_(1 / math.sqrt(self.n_frequencies))  # (N, 2m)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, n_frequencies={self.n_frequencies}, law={self.law!r}, "
            f"bandwidth={self.bandwidth}, dither={self.dithered}, quantized={self.quantized}"
        )


def same_features(a: FourierFeatures, b: FourierFeatures) -> bool:
    """Whether two feature maps are the same map: equal frequencies, dither and quantization."""
    if a is b:
        return True
    if (a.dim, a.n_frequencies, a.quantized) != (b.dim, b.n_frequencies, b.quantized):
        return False
    same = torch.equal(a.frequencies.detach().cpu().double(), b.frequencies.detach().cpu().double())
    return same and torch.equal(a.dither.detach().cpu().double(), b.dither.detach().cpu().double())


def _check_flags(dither: object, quantized: object) -> None:
    for name, value in (("dither", dither), ("quantized", quantized)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool; got {type(value).__name__}.")
    if quantized and not dither:
        raise ValueError(
            "dither must be True when quantized=True (1-bit features need a uniform dither); "
            "got dither=False."
        )


def _check_array(value: object, name: str, ndim: int) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(value)) if isinstance(value, np.ndarray) else value
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got {type(value).__name__}.")
    if t.dim() != ndim or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array; got shape {tuple(t.shape)}.")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must contain only finite values; got NaN or inf entries.")
    return t.detach().clone()


def phase_sums(t: torch.Tensor, quantized: bool) -> torch.Tensor:
    """``sum_i [cos(t_i); sin(t_i)]`` (or their signs) of phases (B, m): (2, m) float64.

    The function given to ``torch.compile``, which fuses both functions and both sums into one
    read of ``t``; the eager path of :class:`FeatureSummer` computes the same in place.
    """
    cos, sin = cos_sin(t, quantized)  # (B, m) each
    return torch.stack([cos.sum(0, dtype=torch.float64), sin.sum(0, dtype=torch.float64)])


class FeatureSummer:
    """Float64 running sums of the features of chunks, on one device.

    The phases ``t = x Omega + xi`` of each block of rows are written into a reused ``(rows, m)``
    buffer (fresh buffers of this size cost page faults on every block on CPU, as much as the
    cosines themselves); then either the compiled :func:`_phase_sums` reads them once, or eager
    code writes the sines into a second buffer and the cosines in place and sums both. With
    ``fused``, float32 chunks go through one Triton kernel that never writes the phases
    (:mod:`distmatch.sketch._fused`).
    """

    def __init__(
        self, features: FourierFeatures, center, scale, device, compile: bool, fused: bool = False
    ) -> None:
        self.device = torch.device(device)
        # float32 chunks through one Triton kernel per chunk (no phases written): see _fused
        self.fused = fused
        self.dim, self.m, self.quantized = features.dim, features.n_frequencies, features.quantized
        self._omega = features.frequencies.detach().to(self.device)  # (D, m)
        self._dither = features.dither.detach().to(self.device)  # (m,)
        self._center = None if center is None else center.to(self.device)
        self._scale = scale
        self._params: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
        self._work: list[torch.Tensor | None] = [None, None]
        self.rows = max(1, BLOCK_ELEMENTS // self.m)
        self.total = torch.zeros(2, self.m, dtype=torch.float64, device=self.device)
        self.count = 0
        self._compiled = torch.compile(phase_sums, dynamic=True) if compile else None

    def add(self, x: torch.Tensor) -> None:
        """Adds the features of the (B, D) chunk ``x`` (already of a floating dtype)."""
        x = x.to(self.device, non_blocking=True)
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(
                f"data must contain only finite values; got {bad} NaN or inf entries in rows "
                f"{self.count}..{self.count + x.shape[0] - 1}."
            )
        if self._center is not None:
            x = (x - self._center.to(x.dtype)) / self._scale
        elif self._scale != 1.0:
            x = x / self._scale
        if x.dtype not in self._params:
            self._params[x.dtype] = (self._omega.to(x.dtype), self._dither.to(x.dtype))
        omega, dither = self._params[x.dtype]
        if self.fused and x.dtype == torch.float32:
            for block in x.split(BLOCK_ROWS):  # bounds the buffer of tile sums
                self.total += fused_feature_sums(block, omega, dither, self.quantized)
            self.count += x.shape[0]
            return
        for start in range(0, x.shape[0], self.rows):
            block = x[start : start + self.rows]  # (n, D)
            t = phases(block, omega, dither, out=self._workspace(0, block.shape[0], x.dtype))
            self.total += self._sums(t)
        self.count += x.shape[0]

    def _sums(self, t: torch.Tensor) -> torch.Tensor:
        if self._compiled is not None:
            try:
                return self._compiled(t, self.quantized)
            except Exception as err:  # compilation needs a working toolchain; sketch without it
                warnings.warn(
                    f"torch.compile failed ({type(err).__name__}: {err}); sketching without it.",
                    RuntimeWarning,
                    stacklevel=4,
                )
                self._compiled = None
        cos, sin = cos_sin(t, self.quantized, sin_out=self._workspace(1, t.shape[0], t.dtype))
        # float32 sums over at most `rows` rows; the running total is float64
        return torch.stack([cos.sum(0), sin.sum(0)])  # (2, m)

    def _workspace(self, index: int, n: int, dtype: torch.dtype) -> torch.Tensor:
        """Rows ``[:n]`` of reused buffer ``index`` (0: phases, 1: sines; allocated when needed)."""
        buffer = self._work[index]
        if buffer is None or buffer.shape[0] < n or buffer.dtype != dtype:
            rows = min(self.rows, max(n, 1))
            buffer = self._work[index] = torch.empty(rows, self.m, dtype=dtype, device=self.device)
        return buffer[:n]


# --- data ----------------------------------------------------------------------------------------
