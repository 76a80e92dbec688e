"""Latent compressive learning: CL-GN in the latent space of a trained autoencoder.

Part of :mod:`distmatch.generation`.

1. One pass over the training split encodes each chunk and adds its features to a sketch of the
   latent codes (the codes are never all held, never written).
2. A small latent generator ``g(u)``, ``u ~ N(0, I)``, is trained from that sketch alone, on the
   unbiased squared sketch distance (:func:`distmatch.sketch.sketch_distance`). The CL-GN
   objective (the batch's distance itself) has a floor of about ``1/sqrt(batch)`` that its early
   stopping cannot see past and rewards batches of alike codes: with it the run stopped after 3
   epochs with samples crowded onto a few digits. Without the bias the loss keeps falling and
   the samples cover every digit (``docs/reproduction.md``).
3. Samples are ``decode(g(u))``: the sketch brings CL-GN to images. For labelled images the
   result carries the classifier metric of 2,000 decoded samples
   (:func:`distmatch.evaluation.classifier_metrics`).

Coordinates: the codes are divided by the largest norm among the first ``probe`` training codes
(about the unit ball, as CL-GN scales its data), stored in the sketch and undone when sampling. The
frequencies are those of image sketches (:data:`distmatch.sketch.IMAGE_LAW`, bandwidth by the median
heuristic on the probe codes, :func:`distmatch.sketch.median_bandwidth`) unless given: Keriven et
al.'s sketch-based fit gives the per-coordinate spread of the codes, a kernel far too narrow in 20
dimensions (the samples then crowded onto three digits). Writes ``OUT/sketch.npz``, ``OUT/test_codes.npy`` (held-out codes for the generator's
evaluation), the generator run ``OUT/run``, ``OUT/samples.png`` and ``OUT/result.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import sketch as sk
from .._core import atomic_path, check_seed, resolve_device
from ..data import load_split
from ..evaluation import (
    classifier_metrics,
    load_autoencoder,
    load_classifier,
    load_generator,
    reference_summary,
)
from ..report import save_image_grid
from ..runs import RunDir, RunError
from ._config import GeneratorConfig
from ._loop import train_generator

__all__ = ["fit_latent_sketch"]

PROBE = 5000  # codes that fix the scale and the bandwidth


@torch.no_grad()
def _encoded(model, data, batch_size: int, device, limit: int | None = None) -> Iterator:
    size = len(data) if limit is None else min(limit, len(data))
    for start in range(0, size, batch_size):
        x = data.get_batch(torch.arange(start, min(start + batch_size, size)))
        yield model.encode(x.to(device)).double().cpu()


def fit_latent_sketch(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    n_frequencies: int = 2000,
    law: str = sk.IMAGE_LAW,
    bandwidth: float | None = None,
    epochs: int = 25,
    arch: str = "mlp",
    batch_size: int = 1000,
    latent_codes: int | None = 100_000,
    seed: int = 0,
    data_dir: str | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Sketches the latent codes of ``run``'s training split and fits a generator to the sketch.

    Args:
        run: a run folder of ``distmatch train``.
        out: the output folder (default ``RUN/latent``); a finished generator run there is reused,
            an unfinished one resumed.
        n_frequencies: m of the latent sketch.
        law: the frequency law (default that of image sketches, :data:`distmatch.sketch.IMAGE_LAW`).
        bandwidth: kernel bandwidth in the scaled coordinates; ``None``: the median heuristic of
            :func:`distmatch.sketch.median_bandwidth`.
        epochs, arch, batch_size, latent_codes, seed: of the generator training
            (:class:`distmatch.generation.GeneratorConfig`).
        data_dir: where the data set is now (default: as trained).
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: progress bars.

    Returns:
        the generator run's summary, with ``bandwidth``, ``scale``, ``samples`` (the figure) and,
        for labelled images, ``decoded_cfd``, ``decoded_classes_covered``, ... (the classifier
        metric of 2,000 decoded samples).
    """
    seed = check_seed(seed)
    dev = resolve_device(device)
    record, model = load_autoencoder(run, device=dev)
    config = record["config"]
    where = data_dir if data_dir is not None else config["data_dir"]
    train = load_split(config["dataset"], "train", data_dir=where, image_size=config["image_size"])
    test = load_split(config["dataset"], "test", data_dir=where, image_size=config["image_size"])
    folder = Path(out) if out is not None else Path(run) / "latent"
    if (folder / "config.json").is_file():  # its own run is folder/run
        raise RunError(
            f"out must be a folder of fit-latent-sketch's outputs; '{folder}' holds a run of its "
            "own (config.json)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    sketch_path = folder / "sketch.npz"
    if sketch_path.is_file():
        latent = sk.Sketch.load(sketch_path)
    else:
        probe = torch.cat(list(_encoded(model, train, batch_size, dev, PROBE)))  # (P, D)
        scale = float(probe.norm(dim=1).max())
        gen = torch.Generator().manual_seed(seed)
        width = bandwidth or sk.median_bandwidth(probe / scale, law=law, generator=gen)
        features = sk.FourierFeatures(
            model.latent_dim, n_frequencies, law=law, bandwidth=width, generator=gen
        )
        latent = sk.sketch_dataset(
            _encoded(model, train, batch_size, dev), features, scale=scale, progress=progress
        )
        latent.save(sketch_path)
    codes_path = folder / "test_codes.npy"
    if not codes_path.is_file():
        test_codes = torch.cat(list(_encoded(model, test, batch_size, dev))).float().numpy()
        with atomic_path(codes_path) as tmp:
            np.save(tmp, test_codes)
    generator_run = RunDir(folder / "run")
    if generator_run.summary.is_file():
        summary = generator_run.read_json(generator_run.summary)
    else:
        generator_config = GeneratorConfig(
            objective="sketch",
            sketch=str(sketch_path),
            eval_data=str(codes_path),
            arch=arch,
            batch_size=batch_size,
            latent_codes=latent_codes,
            estimator="unbiased",  # no reward for alike codes, no floor under the loss
            min_delta=1e-5,
            epochs=epochs,
            seed=seed,
            device=device,
        )
        summary = train_generator(
            generator_config,
            generator_run.root,
            resume=generator_run.checkpoint.is_file(),
            progress=progress,
        )
    _, latent_generator, unscale = load_generator(generator_run.root, device=dev)
    with torch.no_grad():
        u = torch.randn(
            2000, latent_generator.latent_dim, generator=torch.Generator().manual_seed(seed)
        )
        codes = unscale(latent_generator(u.to(dev)).double()).float()
        images = torch.cat([model.decode(c.to(dev)).clamp(0, 1).cpu() for c in codes.split(500)])
    samples = folder / "samples.png"
    metrics = {}
    if test.is_image:
        save_image_grid(images[:100], samples, ncol=10, title="decoded samples")
        if train.labels is not None:
            classifier = load_classifier(train, progress=progress)
            reference = reference_summary(classifier, test.get_batch(torch.arange(len(test))))
            metrics = classifier_metrics(classifier, images, reference)
    result = {
        **summary,
        **{f"decoded_{k}": v for k, v in metrics.items()},
        "bandwidth": float(latent.features.bandwidth),
        "scale": float(latent.scale),
        "samples": str(samples) if test.is_image else None,
    }
    with atomic_path(folder / "result.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result
