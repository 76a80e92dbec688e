"""Costs of the moving-window autoencoders: reconstruction plus a latent distance to the prior.

For a batch ``x`` of ``k`` inputs with reconstructions ``x_rec`` and the joined codes ``codes``
(``n`` rows: the ``k`` fresh ones and the window), the cost is::

    loss = reconstruction + lam * distance_term

=========  ======================================================================  ==============
model      distance_term                                                           prior sample
=========  ======================================================================  ==============
``cwae``   ``log cramer_wold_normality(codes)``, gamma = silverman_gamma(n)        none (closed form)
``wae``    ``mmd(codes, p)``, IMQ kernel, scales .1 ... 10, unbiased               ``p``: n fresh N(0, I) draws
``swae``   ``sliced_wasserstein(codes, p)``, 50 fresh directions, p = 2, no root   ``p``: n fresh N(0, I) draws
``skwae``  ``log |mean_i Phi(codes_i) - sketch(N(0, I))|^2``, Gaussian features    none (exact sketch)
=========  ======================================================================  ==============

In the window only the ``k`` fresh codes carry the distance's gradient, each about ``1/n`` of it,
so the term pulls with about ``k/n`` of its classical strength. Training weighs the term's gradient
(not its value) by ``n/k`` (``gradient_weight``, config ``window_gradient="unbiased"``): with frozen
parameters and the fresh codes a uniformly random subset of the ``n``, that is the classical
gradient in expectation (:meth:`distmatch.window.MovingWindow.unbiased_weight`).
``window_gradient="paper"`` keeps the reference's unweighted term.

``skwae`` (:mod:`distmatch.sketch`, ``prior_sketch``) compares the mean random Fourier features of the codes
with the exact sketch of the prior, an estimate of MMD^2 with a Gaussian kernel at O(m n D) cost. With
a moving sketch instead of a window, ``codes`` is the joined (2m,) sketch itself.

Reconstruction conventions, from the per-image sums of squared errors ``e_i = |x_i - x_rec_i|^2``:

- ``"root"`` (default, the MoW reference code's): ``sqrt(mean_i e_i)``;
- ``"mean"``: ``mean_i e_i`` (the quantity reported as ``rec_error``).

Reference: Spurek et al., "One-element Batch Training by Moving Window", arXiv:1905.12947, Sec. 4;
reference code gmum/MoW.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from . import distances, distributed
from ._core import check_choice, check_positive, check_positive_int
from .distances.cramer_wold import normality_unchecked
from .distances.kernels import WAE_SCALES, imq_kernel
from .distances.mmd import mmd_unchecked
from .distances.sliced import sliced_unchecked
from .sketch import SKETCH_FREQUENCIES, mean_features, prior_sketch, sketch_prior_distance

__all__ = [
    "DISTANCE_LABELS",
    "LATENT_DISTANCES",
    "RECONSTRUCTIONS",
    "AutoencoderObjective",
    "Draws",
    "draw",
    "global_objective",
    "reconstruction_errors",
]

RECONSTRUCTIONS = ("root", "mean")


class Draws(NamedTuple):
    """The random draws of one step's distance term, made before the term (outside any compiled
    graph) from the run's generator."""

    prior: torch.Tensor | None = None  # (n, D) N(0, I) draws: wae, swae
    # (D, L) Gaussian directions: swae, normalised by the term (inside a compiled graph, where
    # the division costs nothing extra)
    theta: torch.Tensor | None = None
    # skwae: its fixed frequencies (D, m) and N(0, I)'s exact sketch (2m,), not random, but read
    # from a cache that a compiled graph would trace through (recomputing them every step)
    omega: torch.Tensor | None = None
    target: torch.Tensor | None = None


def draw(
    model: str,
    shape: tuple[int, int],
    generator: torch.Generator | None,
    *,
    n_projections: int = 50,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Draws:
    """The draws that ``model``'s term needs for ``shape = (n, D)`` joined codes: ``n`` fresh
    N(0, I) draws (WAE, SWAE), then ``n_projections`` Gaussian directions (SWAE), in that order from
    ``generator`` (on its own device, then moved); none for CWAE and skwae. The directions are
    those of :func:`~distmatch.distances.random_projections` before their normalisation."""
    check_choice(model, "model", LATENT_DISTANCES)
    return _draw(model, shape, generator, n_projections, dtype, device)


def _draw(model, shape, generator, n_projections, dtype, device) -> Draws:
    """:func:`draw` without validation: every training step calls it with a checked model."""
    if model not in ("wae", "swae"):
        return Draws()
    source = generator.device if generator is not None else device
    prior = torch.randn(shape, generator=generator, dtype=dtype, device=source).to(device)
    if model == "wae":
        return Draws(prior)
    theta = torch.randn(shape[1], n_projections, generator=generator, dtype=dtype, device=source)
    return Draws(prior, theta.to(device))


def cwae_term(codes: torch.Tensor, draws: Draws, *, fresh: int | None = None) -> torch.Tensor:
    """``log`` of the closed-form Cramér–Wold distance of the codes to N(0, I) (unscaled).

    ``fresh`` (every term): only the first ``fresh`` rows of ``codes`` carry a gradient (the
    window's stored codes are constants), so the term may compute the gradient of those rows only.
    CWAE does so inside a compiled graph; eagerly its slicing costs more operations than it saves,
    and the full gradient's other rows are simply not used. WAE and SWAE always do.
    """
    del draws  # closed form: no draws
    # The codes come from the window's join: shape checked there; non-finite codes make the loss
    # non-finite, which training stops on. So the per-step validation is skipped.
    gamma = distances.silverman_gamma(codes.shape[0])
    return torch.log(normality_unchecked(codes, gamma, fresh=_when_compiled(fresh)))


def _when_compiled(fresh: int | None) -> int | None:
    return fresh if torch.compiler.is_compiling() else None


def wae_term(codes: torch.Tensor, draws: Draws, *, fresh: int | None = None) -> torch.Tensor:
    """Unbiased IMQ MMD between the codes and as many fresh prior draws (WAE-MMD).

    Codes and draws are joined into one (2n, 2n) kernel matrix, and the kernel's derivative is
    taken on the fresh rows only, eagerly too: fewer operations than three blocks with their full
    derivatives (see :func:`distmatch.distances._pairs.two_sample_sum`)."""
    # validation skipped as for cwae_term
    return mmd_unchecked(
        codes, draws.prior, imq_kernel, 1.0, WAE_SCALES, unbiased=True, fresh=fresh
    )  # fmt: skip


def swae_term(codes: torch.Tensor, draws: Draws, *, fresh: int | None = None) -> torch.Tensor:
    """Sliced ``W_2^2`` between the codes and as many fresh prior draws, fresh directions.

    The fresh form always (compiled or not): eagerly it is as fast as the full matching, and a
    fresh code equal to a stored one (as a refresh of the window can make) then gets the same
    subgradient either way (ties ranked in row order)."""
    theta = draws.theta / draws.theta.norm(dim=0, keepdim=True)  # (D, L) unit directions
    return sliced_unchecked(codes, draws.prior, theta, p=2.0, fresh=fresh)  # unchecked


def skwae_term(
    codes: torch.Tensor,
    draws: Draws,
    *,
    dim: int | None = None,
    m: int = SKETCH_FREQUENCIES,
    bandwidth: float | None = None,
    fresh: int | None = None,
) -> torch.Tensor:
    """``log`` of the squared sketch distance of the joined codes (n, D), or of a joined sketch
    (2m,), to N(0, I). (``fresh`` is ignored: a joined sketch carries the fresh codes' gradient
    only; for joined codes autograd computes every row's and the stored rows' are dropped.)

    The log, as CWAE takes the log of the CW distance: it keeps the term's gradient in proportion
    as the distance shrinks (on the digits with z = 4, 360 steps: CW distance 0.18 with the log,
    0.39 without). The distance has a floor, about ``(1 - |p|^2) / n``, so the log stays finite.
    ``dim`` is needed for a joined sketch only (it fixes the frequencies).
    """
    if draws is not None and draws.target is not None:  # fetched before a compiled forward
        omega, prior = draws.omega, draws.target
    else:
        if codes.dim() != 2 and dim is None:
            raise ValueError("skwae needs the latent dimension to score a joined sketch; got none.")
        width = codes.shape[1] if codes.dim() == 2 else dim
        omega, prior = prior_sketch(width, m, bandwidth, device=codes.device, dtype=codes.dtype)
    if codes.dim() == 2:
        return torch.log(sketch_prior_distance(mean_features(codes, omega), prior))
    return torch.log(sketch_prior_distance(codes, prior))


# How each distance term enters the loss, for axes and tables.
DISTANCE_LABELS = {
    "cwae": "log CW distance",
    "wae": "WAE MMD (IMQ)",
    "swae": "sliced W2^2",
    "skwae": "log sketch distance",
}

LATENT_DISTANCES: dict[str, Callable[..., torch.Tensor]] = {
    "cwae": cwae_term,
    "wae": wae_term,
    "swae": swae_term,
    "skwae": skwae_term,
}


def reconstruction_errors(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """Per-sample sums of squared errors ``e_i = sum over features of (x_i - x_rec_i)^2``.

    Args:
        x: (B, ...) inputs.
        x_rec: (B, ...) reconstructions of the same shape.

    Returns:
        (B,) tensor.
    """
    if x.shape != x_rec.shape:
        raise ValueError(
            f"reconstructions must have the inputs' shape {tuple(x.shape)}; got {tuple(x_rec.shape)}."
        )
    return (x_rec - x).pow(2).flatten(1).sum(dim=1)  # (B,)


class AutoencoderObjective:
    """The cost of one moving-window step, returned by parts.

    Args:
        model: ``"cwae"``, ``"wae"``, ``"swae"`` or ``"skwae"``.
        lam: weight of the distance term, > 0 (1 in the reference).
        reconstruction: ``"root"`` or ``"mean"`` (see the module docstring).
        n_projections: directions of the sliced distance (SWAE only).
        latent_dim: D, needed by ``skwae`` with a moving sketch.
        sketch_frequencies: m of ``skwae``.
        sketch_bandwidth: kernel bandwidth of ``skwae`` (default ``sqrt(D)``).

    Example:
        >>> objective = AutoencoderObjective("cwae")
        >>> x = torch.rand(1, 4); parts = objective(x, x * 0.9, torch.randn(64, 8))
        >>> sorted(parts)
        ['distance', 'loss', 'reconstruction']
    """

    def __init__(
        self,
        model: str,
        *,
        lam: float = 1.0,
        reconstruction: str = "root",
        n_projections: int = 50,
        latent_dim: int | None = None,
        sketch_frequencies: int = SKETCH_FREQUENCIES,
        sketch_bandwidth: float | None = None,
    ) -> None:
        self.model = check_choice(model, "model", LATENT_DISTANCES)
        self.lam = check_positive(lam, "lam")
        self.reconstruction = check_choice(reconstruction, "reconstruction", RECONSTRUCTIONS)
        self.n_projections = check_positive_int(n_projections, "n_projections")
        self.options: dict = {}
        if self.model == "skwae":
            bandwidth = (
                None
                if sketch_bandwidth is None
                else check_positive(sketch_bandwidth, "sketch_bandwidth")
            )
            self.options.update(
                dim=latent_dim,
                m=check_positive_int(sketch_frequencies, "sketch_frequencies"),
                bandwidth=bandwidth,
            )

    def distance_memory(self, n: int, dim: int) -> int:
        """Bytes (float32) that the distance term of ``n`` codes of dimension ``dim`` holds at
        once, an upper estimate: the (n, n) matrices of the kernel sums (values, derivatives and
        temporaries; WAE's seven scales are one broadcast), SWAE's (n, directions) projections, or
        skwae's (n, m) phases."""
        if self.model == "cwae":
            floats = 6 * n * n
        elif self.model == "wae":
            floats = 3 * (len(WAE_SCALES) + 2) * n * n
        elif self.model == "swae":
            floats = 6 * n * self.n_projections
        else:
            floats = 4 * n * self.options["m"]
        return 4 * (floats + 4 * n * dim)

    def __call__(
        self,
        x: torch.Tensor,
        x_rec: torch.Tensor,
        codes: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        draws: Draws | None = None,
        gradient_weight: float = 1.0,
        fresh: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Computes ``loss = reconstruction + lam * distance``.

        Args:
            x: (k, ...) inputs of this step.
            x_rec: (k, ...) their reconstructions.
            codes: (n, D) joined codes (fresh first, then the window), or for ``skwae`` with a
                moving sketch the joined (2m,) sketch.
            generator: randomness for prior draws and sliced directions, when ``draws`` are
                not given.
            draws: the step's draws made beforehand (:meth:`draws`), e.g. outside a compiled
                graph; the same values as drawing here from the same generator state.
            gradient_weight: multiplies the gradient of the distance term, not its value (see
                :meth:`from_mean_error`); 1 leaves the cost as it is.
            fresh: only the first ``fresh`` rows of ``codes`` carry a gradient (the window's
                stored codes are detached): the term computes the gradient of those rows only.
                ``None``: every row.

        Returns:
            dict with 0-d tensors ``loss``, ``reconstruction`` and ``distance`` (the distance term
            as it enters the loss: the log of the CW distance for CWAE).
        """
        errors = reconstruction_errors(x, x_rec).mean()
        return self.from_mean_error(
            errors, codes, generator, draws=draws, gradient_weight=gradient_weight, fresh=fresh
        )

    def draws(
        self,
        shape: tuple[int, int],
        generator: torch.Generator | None,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Draws:
        """The draws of one step whose joined codes have ``shape = (n, D)`` (:func:`draw`); for
        skwae its frequencies and the prior's sketch (``shape = (2m,)`` for a joined sketch)."""
        if self.model == "skwae":
            dim = shape[1] if len(shape) == 2 else self.options["dim"]
            if dim is None:
                return Draws()  # skwae_term says what is missing
            omega, target = prior_sketch(
                dim, self.options["m"], self.options["bandwidth"], device=device, dtype=dtype
            )
            return Draws(omega=omega, target=target)
        return _draw(self.model, shape, generator, self.n_projections, dtype, device)

    def from_mean_error(
        self,
        mean_error: torch.Tensor,
        codes: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        draws: Draws | None = None,
        gradient_weight: float = 1.0,
        fresh: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """The parts from the batch's mean per-image error (e.g. all-reduced over ranks).

        ``gradient_weight`` ``w`` makes the distance term's gradient ``w`` times its derivative
        while its value, and so the reported ``loss``, stays ``rec + lam * distance``::

            term_in_loss = term + (w - 1) (term - stop_gradient(term))

        the moving window's unbiased gradient scales what reaches the fresh codes, not the cost
        that the run logs. ``w = 1`` is the plain cost.
        """
        check_positive(gradient_weight, "gradient_weight")
        rec = mean_error.sqrt() if self.reconstruction == "root" else mean_error
        if draws is None:
            draws = self.draws(
                tuple(codes.shape), generator, dtype=codes.dtype, device=codes.device
            )
        term = LATENT_DISTANCES[self.model](codes, draws, fresh=fresh, **self.options)
        if gradient_weight != 1.0:  # value: term; gradient: gradient_weight * d term
            in_loss = term + (gradient_weight - 1.0) * (term - term.detach())
        else:
            in_loss = term
        weighted = in_loss if self.lam == 1.0 else self.lam * in_loss
        return {"loss": rec + weighted, "reconstruction": rec, "distance": term}


def global_objective(
    objective: AutoencoderObjective,
    x: torch.Tensor,
    x_rec: torch.Tensor,
    codes: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    draws: Draws | None = None,
    gradient_weight: float = 1.0,
    fresh: int | None = None,
) -> dict[str, torch.Tensor]:
    """The parts of ``objective`` for a global batch split over the ranks, the same on every rank.

    Under ``torchrun`` each rank encodes its part of the global batch, the fresh codes of all ranks
    are gathered (in rank order) and joined to the window that every rank holds, so ``codes`` is
    global already; the reconstruction term is made global here::

        rec = sqrt((1/k) sum_r sum_{i in r} e_i)      e_i per-image sum of squared errors

    from one differentiable all-reduce of (error sum, count) (no root for ``"mean"``), and
    ``loss = rec + lam * distance(codes)``. With the windows identical on every rank (prior draws
    from one generator seeded alike), averaging the gradients over the ranks gives exactly the
    single-process gradient of the global batch (:mod:`distmatch.distributed`). In one process:
    ``objective(x, x_rec, codes, generator)``.

    Args:
        objective: the cost (model, lam, reconstruction convention).
        x: (B_r, ...) this rank's inputs; x_rec: their reconstructions.
        codes: (n, D) the gathered fresh codes joined to the window.
        generator: randomness for prior draws (seeded alike on every rank), when ``draws`` are
            not given.
        draws: the step's draws made beforehand (:meth:`AutoencoderObjective.draws`).
        gradient_weight: multiplies the distance term's gradient (the unbiased window weight).
        fresh: the rows of ``codes`` that carry a gradient (the gathered fresh codes), first.
    """
    options = {"draws": draws, "gradient_weight": gradient_weight, "fresh": fresh}
    if not distributed.is_active():
        return objective(x, x_rec, codes, generator, **options)
    errors = reconstruction_errors(x, x_rec)  # (B_r,)
    total = distributed.all_reduce_sum(
        torch.stack([errors.sum(), errors.new_tensor(float(len(errors)))])
    )
    return objective.from_mean_error(total[0] / total[1], codes, generator, **options)
