"""Metrics of an autoencoder's generated samples: FID and the Parzen-window log-likelihood.

Samples are decoded prior draws ``x = decode(z)``, ``z ~ N(0, I)``, clamped to the pixel range
[0, 1] of the data.

- **FID** (Heusel et al., 2017): the Fréchet distance between Gaussians fitted to InceptionV3 pool
  features of ``samples`` generated images (10,000 by default) and of the test split::

      FID = |mu_g - mu_d|^2 + tr(S_g + S_d - 2 (S_g S_d)^(1/2))

  The test split's statistics are cached on disk (:func:`distmatch.evaluation.cached_statistics`), keyed by
  the data set, split, size, shape and a fingerprint of its content.
- **Parzen-window log-likelihood** (the GMMN/GAN protocol): a Gaussian kernel density estimate on the
  generated samples, bandwidth chosen on a validation split (the last images of the training split)
  over the grid 0.10 ... 0.29, mean log-likelihood of the test split in nats, with its standard error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch

from .._core import check_positive_int
from ._fid import FID_SAMPLES, activation_statistics, cached_statistics, frechet_distance
from ._parzen import PARZEN_BANDWIDTHS, parzen_log_likelihood, select_parzen_bandwidth

__all__ = ["autoencoder_fid", "autoencoder_parzen", "decoded_samples", "statistics_key"]

PARZEN_SAMPLES = 10_000  # generated samples of the density estimate, as in the GMMN protocol
PARZEN_VALIDATION = 1_000  # last training images used to choose the bandwidth


def decoded_samples(
    model: torch.nn.Module,
    num: int,
    *,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
) -> Iterator[torch.Tensor]:
    """Yields ``num`` decoded N(0, I) draws in batches, clamped to [0, 1], on CPU (the options
    are checked at the call, before the first batch is asked for)."""
    check_positive_int(batch_size, "batch_size")
    return _decoded(model, num, generator, device, batch_size)


@torch.no_grad()
def _decoded(model, num: int, generator, device, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, num, batch_size):
        b = min(batch_size, num - start)
        z = torch.randn(b, model.latent_dim, generator=generator)
        yield model.decode(z.to(device)).clamp_(0.0, 1.0).cpu()


class _Batches:
    """A split's samples as an iterable of batches with a length (for progress bars)."""

    def __init__(self, data, batch_size: int, limit: int | None = None) -> None:
        self.data, self.batch_size = data, batch_size
        self.size = len(data) if limit is None else min(limit, len(data))

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for start in range(0, self.size, self.batch_size):
            end = min(start + self.batch_size, self.size)
            yield self.data.get_batch(torch.arange(start, end))


class _Generated:
    def __init__(self, model, num: int, generator, device, batch_size: int) -> None:
        self.args = (model, num)
        self.options = {"generator": generator, "device": device, "batch_size": batch_size}
        self.batches = -(-num // batch_size)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[torch.Tensor]:
        return decoded_samples(*self.args, **self.options)


def statistics_key(data) -> str:
    """The cache key of a split's FID statistics: name, split, size, shape, content fingerprint.

    The fingerprint hashes the first, middle and last samples, so a partial or changed copy of a
    data set never reuses another copy's statistics.
    """
    n = len(data)
    probe = data.get_batch(torch.tensor(sorted({0, n // 2, n - 1})))
    digest = hashlib.sha1(probe.numpy().tobytes()).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(data.name)).strip("._-")
    shape = "x".join(str(s) for s in data.sample_shape)
    return f"{name or 'data'}-{data.split}-{n}-{shape}-{digest}"


def autoencoder_fid(
    model: torch.nn.Module,
    test,
    inception: torch.nn.Module,
    *,
    samples: int = FID_SAMPLES,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    cache_dir=None,
    batch_size: int = 50,
) -> float:
    """FID between ``samples`` decoded prior draws and the test split (statistics cached).

    Args:
        model: the autoencoder (``decode``, ``latent_dim``).
        test: the test split (a :class:`distmatch.data.SampleSet` of images).
        inception: the feature network, from :func:`distmatch.evaluation.load_inception`.
        samples: generated images (10,000 in the standard protocol).
        generator: randomness of the prior draws.
        device: where both networks run.
        cache_dir: folder of the cached statistics (default: the user cache).
        batch_size: images per Inception forward pass.

    Returns:
        the FID, >= 0.

    Raises:
        ValueError: the data are not images, or ``samples`` < 2.
    """
    if not test.is_image:
        raise ValueError(f"FID needs image data; got vectors of shape {test.sample_shape}.")
    if samples < 2:
        raise ValueError(f"FID needs at least 2 generated samples; got {samples}.")
    reference = cached_statistics(
        statistics_key(test),
        lambda: activation_statistics(_Batches(test, batch_size), inception, device=device),
        cache_dir,
    )
    generated = _Generated(model, samples, generator, device, batch_size)
    mu, sigma = activation_statistics(generated, inception, device=device)
    return frechet_distance(mu, sigma, *reference)


def autoencoder_parzen(
    model: torch.nn.Module,
    train,
    test,
    *,
    samples: int = PARZEN_SAMPLES,
    validation: int = PARZEN_VALIDATION,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    bandwidths=PARZEN_BANDWIDTHS,
) -> dict[str, float]:
    """Parzen-window log-likelihood of the test split under decoded prior draws.

    Args:
        model: the autoencoder.
        train: the training split; its last ``validation`` samples choose the bandwidth.
        test: the test split, scored.
        samples: generated samples of the density estimate.
        validation: training samples used to choose the bandwidth.
        generator: randomness of the prior draws.
        device: where the decoder runs.
        bandwidths: the grid of bandwidths.

    Returns:
        ``parzen_log_likelihood`` (nats, mean over the test split), ``parzen_std_error`` and
        ``parzen_bandwidth``.
    """
    generated = torch.cat(list(decoded_samples(model, samples, generator=generator, device=device)))
    flat = generated.flatten(1)  # (S, D)
    held = min(validation, len(train))
    val = train.get_batch(torch.arange(len(train) - held, len(train))).flatten(1)
    bandwidth, _ = select_parzen_bandwidth(flat, val, bandwidths)
    scored = torch.cat(list(_Batches(test, 1000))).flatten(1)
    estimate = parzen_log_likelihood(flat, scored, bandwidth)
    return {
        "parzen_log_likelihood": estimate.mean,
        "parzen_std_error": estimate.std_error,
        "parzen_bandwidth": bandwidth,
    }
