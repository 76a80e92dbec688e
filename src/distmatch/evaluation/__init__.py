"""Evaluation: the MoW paper's metrics, sample metrics (FID, Parzen), generators' held-out metrics,
and trained networks rebuilt from their run folders.

- :func:`evaluate_autoencoder`: ``rec_error``, ``wae_distance``, ``cw_distance`` on a test split,
  as the MoW paper's reference code computes them.
- :func:`frechet_distance`, :func:`activation_statistics`, :func:`cached_statistics`,
  :func:`fid_from_samples`: FID with the Inception network of :func:`load_inception` (weights
  given as a file).
- :func:`parzen_log_likelihood` and its bandwidth selection (the GMMN protocol).
- :func:`autoencoder_fid`, :func:`autoencoder_parzen`: decoded prior samples of a trained run.
- :func:`load_classifier`, :func:`classifier_metrics`: the offline image metric (a small
  classifier trained once on the labelled training split: Fréchet distance in its features and
  class coverage).
- :func:`evaluate_generator`: held-out MMD, sliced W2 and toy log-likelihood of generated samples.
- :func:`load_autoencoder`, :func:`load_generator`: the trained networks of run folders.
"""

from ._classifier import (
    CLASSIFIER_EPOCHS,
    ImageClassifier,
    classifier_metrics,
    load_classifier,
    reference_summary,
    train_classifier,
)
from ._fid import (
    FID_SAMPLES,
    activation_statistics,
    cached_statistics,
    fid_from_samples,
    frechet_distance,
)
from ._generators import EVAL_KERNEL, evaluate_generator
from ._inception import (
    FIDInceptionV3,
    InceptionWeightsError,
    default_cache_dir,
    load_inception,
)
from ._paper import cw_distance, encode_all, evaluate_autoencoder, wae_distance
from ._parzen import (
    PARZEN_BANDWIDTHS,
    ParzenEstimate,
    parzen_log_density,
    parzen_log_likelihood,
    select_parzen_bandwidth,
)
from ._samples import autoencoder_fid, autoencoder_parzen, decoded_samples, statistics_key
from ._trained import load_autoencoder, load_generator

__all__ = [
    "CLASSIFIER_EPOCHS",
    "EVAL_KERNEL",
    "FID_SAMPLES",
    "PARZEN_BANDWIDTHS",
    "FIDInceptionV3",
    "ImageClassifier",
    "InceptionWeightsError",
    "ParzenEstimate",
    "activation_statistics",
    "autoencoder_fid",
    "autoencoder_parzen",
    "cached_statistics",
    "classifier_metrics",
    "cw_distance",
    "decoded_samples",
    "default_cache_dir",
    "encode_all",
    "evaluate_autoencoder",
    "evaluate_generator",
    "fid_from_samples",
    "frechet_distance",
    "load_autoencoder",
    "load_classifier",
    "load_generator",
    "load_inception",
    "parzen_log_density",
    "parzen_log_likelihood",
    "reference_summary",
    "select_parzen_bandwidth",
    "statistics_key",
    "train_classifier",
    "wae_distance",
]
