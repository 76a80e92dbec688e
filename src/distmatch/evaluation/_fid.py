"""Fréchet Inception Distance (FID) between generated images and a data set.

Both image sets are summarised by the mean ``mu`` and covariance ``sigma`` of their Inception pool3
features (:mod:`distmatch.evaluation._inception`), and FID is the Fréchet (2-Wasserstein) distance, squared,
between the Gaussians with these moments::

    FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

Covariances are unbiased (divided by ``N - 1``), as in TTUR and pytorch-fid. The protocol draws
``FID_SAMPLES`` generated images; a data set's statistics are computed once and kept in an ``.npz``
file (:func:`cached_statistics`).

Reference: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017, eq. (6); Dowson & Landau, J. Multivariate Anal. 12 (1982).
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .._core import atomic_path
from ._inception import default_cache_dir

__all__ = [
    "FID_SAMPLES",
    "activation_statistics",
    "cached_statistics",
    "fid_from_samples",
    "frechet_distance",
]

logger = logging.getLogger(__name__)

FID_SAMPLES = 10_000  # generated images per FID evaluation
PSD_TOLERANCE = (
    1e-6  # largest accepted asymmetry, and negative eigenvalue per dimension, relative to max |S|
)
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Statistics = tuple[np.ndarray, np.ndarray]


def _check_statistics(mu: object, sigma: object, names: tuple[str, str]) -> Statistics:
    mu_name, sigma_name = names
    for name, value in ((mu_name, mu), (sigma_name, sigma)):
        if np.iscomplexobj(value):  # a cast to float64 would drop the imaginary part
            raise TypeError(f"{name} must hold real numbers; got complex values.")
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise ValueError(f"{mu_name} must be a vector of shape (D,); got shape {mu.shape}.")
    dim = mu.shape[0]
    if sigma.shape != (dim, dim):
        raise ValueError(
            f"{sigma_name} must have shape (D, D) = ({dim}, {dim}) to match {mu_name}; "
            f"got {sigma.shape}."
        )
    for name, value in ((mu_name, mu), (sigma_name, sigma)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} must contain only finite values; got NaN or inf.")
    return mu, sigma


def _symmetric_root(sigma: np.ndarray) -> np.ndarray:
    """``sigma^(1/2)`` of a symmetric positive semi-definite matrix, by ``eigh``; eigenvalues that
    round-off pushed below 0 count as 0."""
    w, v = np.linalg.eigh(sigma)  # (D,), (D, D)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # (D, D)


def _check_covariance(sigma: np.ndarray, name: str) -> np.ndarray:
    """``sigma`` symmetrised, after checking that it is symmetric and positive semi-definite up to
    round-off (``PSD_TOLERANCE`` relative to its largest eigenvalue)."""
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    asymmetry = float(np.abs(sigma - sigma.T).max())
    if asymmetry > PSD_TOLERANCE * scale:
        raise ValueError(
            f"{name} must be a symmetric covariance matrix; got |{name} - {name}^T| up to "
            f"{asymmetry:.3g}."
        )
    sigma = 0.5 * (sigma + sigma.T)  # (D, D)
    lowest = float(np.linalg.eigvalsh(sigma)[0])
    if lowest < -PSD_TOLERANCE * scale * sigma.shape[0]:
        raise ValueError(
            f"{name} must be positive semi-definite; got an eigenvalue of {lowest:.3g}."
        )
    return sigma


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ::

        d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))
        tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2)) = sum_i sqrt(lambda_i)

    where ``lambda_i`` are the eigenvalues of the symmetric positive semi-definite matrix
    ``M = S1^(1/2) S2 S1^(1/2)`` (``S1 S2`` is similar to ``M``, so both have the same eigenvalues).
    Both square roots come from ``numpy.linalg.eigh`` of symmetric matrices, so the value is exact
    for singular and rank-deficient covariances (fewer samples than dimensions) with no
    regularisation; eigenvalues that round-off pushed below 0 count as 0. Round-off can make the
    sum slightly negative for (nearly) equal statistics; the result is clipped at 0.

    The accuracy is that of the eigenvalues: an eigenvalue known to ``delta = D * eps * |M|``
    contributes ``sqrt(delta)`` at worst, so for a rank-deficient ``M`` the trace is exact to about
    ``D * sqrt(D * eps * |M|)``, and to ``D * eps * |M|`` relative when ``M`` is well conditioned.

    Args:
        mu1: (D,) mean; a scalar is read as D = 1.
        sigma1: (D, D) symmetric positive semi-definite covariance; a scalar is read as a 1×1
            variance.
        mu2: (D,) mean.
        sigma2: (D, D) covariance.

    Returns:
        the squared distance, a float >= 0.

    Raises:
        ValueError: shapes that do not match, non-finite entries, or a covariance that is not
            symmetric or has a negative eigenvalue beyond round-off.

    Example:
        >>> frechet_distance([0.0], [[4.0]], [1.0], [[1.0]])  # (0 - 1)^2 + (2 - 1)^2
        2.0

    Reference: Dowson & Landau, J. Multivariate Anal. 12 (1982), eq. (2); Heusel et al., NeurIPS
    2017, eq. (6).
    """
    mu1, sigma1 = _check_statistics(mu1, sigma1, ("mu1", "sigma1"))
    mu2, sigma2 = _check_statistics(mu2, sigma2, ("mu2", "sigma2"))
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"mu1 and mu2 must have the same length; got {mu1.shape[0]} and {mu2.shape[0]}."
        )
    sigma1 = _check_covariance(sigma1, "sigma1")
    sigma2 = _check_covariance(sigma2, "sigma2")
    root1 = _symmetric_root(sigma1)  # (D, D)
    middle = root1 @ sigma2 @ root1  # (D, D)
    middle = 0.5 * (middle + middle.T)  # symmetric up to round-off; eigvalsh reads one triangle
    eigenvalues = np.clip(np.linalg.eigvalsh(middle), 0.0, None)  # (D,)
    diff = mu1 - mu2  # (D,)
    trace_root = float(np.sqrt(eigenvalues).sum())
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root
    return max(float(value), 0.0)


def _batches(images: torch.Tensor | np.ndarray | Iterable, batch_size: int) -> tuple:
    """``(iterable of (B, C, H, W) tensors, number of batches or None)``."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if isinstance(images, torch.Tensor):
        return images.split(batch_size), -(-images.shape[0] // batch_size)
    if isinstance(images, Iterable):
        return images, len(images) if hasattr(images, "__len__") else None
    raise TypeError(
        f"images must be a tensor (N, C, H, W) or an iterable of such batches; "
        f"got {type(images).__name__}."
    )


@torch.no_grad()
def activation_statistics(
    images: torch.Tensor | np.ndarray | Iterable,
    model: torch.nn.Module,
    *,
    batch_size: int = 50,
    device: torch.device | str | None = None,
) -> Statistics:
    """Mean and covariance of ``model``'s features over images, in float64.

    ::

        mu = 1/N sum_n f(x_n),    sigma = 1/(N - 1) sum_n (f(x_n) - mu)(f(x_n) - mu)^T

    Batches are merged with Chan et al.'s pairwise update, so features are never all held at once.

    Args:
        images: (N, C, H, W) images in [0, 1] (tensor or array, split into ``batch_size``
            batches), or an iterable of (B, C, H, W) batches; a batch that is a tuple or list
            (a DataLoader's ``(images, labels)``) contributes its first element.
        model: maps (B, C, H, W) to (B, F) features, e.g. the network of
            :func:`distmatch.evaluation.load_inception`; it is put in eval mode.
        batch_size: images per forward pass when ``images`` is one tensor.
        device: where the model runs (it is moved there); ``None`` keeps the model's device.

    Returns:
        ``(mu, sigma)``: (F,) and (F, F) float64 arrays.

    Raises:
        ValueError: fewer than 2 images, or features that are not (B, F).
        TypeError: ``images`` is neither a tensor nor an iterable.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}.")
    batches, total = _batches(images, batch_size)
    model.eval()
    if device is not None:
        model.to(device)
    else:
        device = next(model.parameters(), torch.empty(0)).device
    count, mean, scatter = 0, None, None
    for batch in tqdm(batches, total=total, desc="Inception features", unit="batch", disable=None):
        if isinstance(batch, tuple | list):
            batch = batch[0]
        features = model(torch.as_tensor(batch).to(device))
        if features.dim() != 2:
            raise ValueError(f"model features must be (B, F); got {tuple(features.shape)}.")
        f = features.double().cpu().numpy()  # (B, F)
        f_mean = f.mean(axis=0)  # (F,)
        centred = f - f_mean  # (B, F)
        f_scatter = centred.T @ centred  # (F, F)
        if mean is None:
            count, mean, scatter = f.shape[0], f_mean, f_scatter
            continue
        n, b = count, f.shape[0]
        delta = f_mean - mean  # (F,)
        mean = mean + delta * (b / (n + b))
        scatter = scatter + f_scatter + np.outer(delta, delta) * (n * b / (n + b))
        count = n + b
    if count < 2:
        raise ValueError(f"images must hold at least 2 images; got {count}.")
    return mean, scatter / (count - 1)


def fid_from_samples(
    images: torch.Tensor | np.ndarray | Iterable,
    reference: Statistics,
    model: torch.nn.Module,
    *,
    batch_size: int = 50,
    device: torch.device | str | None = None,
) -> float:
    """FID of images against reference statistics: ``frechet_distance(*stats(images), *reference)``.

    Args:
        images: generated images, as for :func:`activation_statistics` (``FID_SAMPLES`` of them
            in the protocol).
        reference: ``(mu, sigma)`` of the data set, e.g. from :func:`cached_statistics`.
        model: the feature network, e.g. :func:`distmatch.evaluation.load_inception`.
        batch_size: images per forward pass.
        device: where the model runs.

    Returns:
        the FID, a float >= 0.

    Example:
        >>> model = load_inception(download=True)  # doctest: +SKIP
        >>> stats = lambda: activation_statistics(train_images, model)  # doctest: +SKIP
        >>> ref = cached_statistics("mnist-train", stats)  # doctest: +SKIP
        >>> fid_from_samples(generated, ref, model)  # doctest: +SKIP
    """
    mu, sigma = activation_statistics(images, model, batch_size=batch_size, device=device)
    mu_ref, sigma_ref = reference
    return frechet_distance(mu, sigma, mu_ref, sigma_ref)


def cached_statistics(
    key: str,
    compute: Callable[[], Statistics],
    cache_dir: str | os.PathLike[str] | None = None,
) -> Statistics:
    """``(mu, sigma)`` from ``cache_dir / f"{key}.npz"``, computed and stored on the first call.

    The file holds the arrays ``mu`` and ``sigma`` (``np.savez``; read without pickle) and is
    written atomically, so an interrupted run leaves no partial file.

    Args:
        key: the file name stem, letters, digits, ``.``, ``_`` and ``-`` (e.g. ``"mnist-train"``);
            it must name the data set and everything the statistics depend on.
        compute: called without arguments when the file is missing; returns ``(mu, sigma)``.
        cache_dir: the folder; default ``default_cache_dir() / "fid_stats"``.

    Returns:
        ``(mu, sigma)``: (F,) and (F, F) float64 arrays.

    Raises:
        ValueError: a bad key, or a file or a computed result that is not a valid pair.
    """
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(
            f"key must be letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'; "
            f"got {key!r}."
        )
    if cache_dir is None:
        folder = default_cache_dir() / "fid_stats"
    else:
        folder = Path(cache_dir).expanduser()
    path = folder / f"{key}.npz"
    if path.is_file():
        try:
            stored = np.load(path, allow_pickle=False)
            if not isinstance(stored, np.lib.npyio.NpzFile):  # an .npy array under the .npz name
                raise TypeError(f"an array, not an archive: {type(stored).__name__}")
            with stored:
                mu, sigma = stored["mu"], stored["sigma"]
        except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"'{path}' must be an .npz file with arrays 'mu' and 'sigma'; got an unreadable "
                f"file ({type(err).__name__}). Delete it to recompute."
            ) from None
        logger.info("read FID statistics from %s", path)
        return _check_statistics(mu, sigma, (f"mu in '{path}'", f"sigma in '{path}'"))
    mu, sigma = _check_statistics(*compute(), ("computed mu", "computed sigma"))
    with atomic_path(path) as tmp:
        np.savez(tmp, mu=mu, sigma=sigma)
    logger.info("stored FID statistics in %s", path)
    return mu, sigma
