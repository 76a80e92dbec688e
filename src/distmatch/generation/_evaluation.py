"""What a generator run evaluates after each epoch, and the figures it draws.

Part of :mod:`distmatch.generation`. Evaluation reads held-out data, never the training data's
sketch or pass: for the toys, fresh draws; for ``.npy`` vectors, the file's test rows; for images,
the test split of the sketch's data set, scored by the offline classifier metric
(:func:`distmatch.evaluation.classifier_metrics`; its classifier is trained once on the labelled
training split and cached). It is kept a small part of a run's time: a fixed budget of points,
figures that depend on the sketch alone drawn once, and the test split's summary computed once.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch

from ..data import load_split, load_vectors, read_npy
from ..evaluation import (
    classifier_metrics,
    evaluate_generator,
    load_classifier,
    reference_summary,
)
from ..report import save_generator_curves, save_histograms, save_image_grid, save_sketch_density

__all__ = ["FIGURE_POINTS", "GRID_IMAGES", "HeldOut"]

log = logging.getLogger("distmatch.generation")

FIGURE_POINTS = 10_000  # generated points in the 2-D histogram figure
GRID_IMAGES = 100  # generated images in the sample grid
DENSITY_RESOLUTION = 120  # grid side of the sketch-density figure (2-D sketches)
REFERENCE_IMAGES = 10_000  # test images summarised for the classifier metric


class HeldOut:
    """The held-out data of a run and how its samples are scored and drawn.

    Args:
        source: a toy, a data set name, a folder of images or a ``.npy`` file; None: no metrics.
        data_dir: where a registered data set's files are.
        sample_shape: ``(D,)`` or ``(C, H, W)`` of the generator's samples.
        center, scale: the sketch coordinates ``(x - center) / scale`` of vectors.
        points: held-out points for vector metrics.
        seed: of fresh toy draws.
        what: the objective, named in errors ("sketch", "mmd").
        device: where the metrics are computed (the run's device: on a GPU a CPU evaluation
            would take most of a short run's time).
        whole: vectors from a ``.npy`` file given for the evaluation alone (``--eval-data``):
            every row, not its test split.
    """

    def __init__(
        self, source, data_dir, sample_shape, center, scale, points: int, seed: int, what,
        device: torch.device | str = "cpu", whole: bool = False,
    ):  # fmt: skip
        self.sample_shape, self.center, self.scale = tuple(sample_shape), center, scale
        self.device = torch.device(device)
        self.images = len(self.sample_shape) == 3
        self.toy, self.points, self.classifier, self.reference = None, None, None, None
        if source is None:
            return
        if self.images:
            self._image_reference(source, data_dir)
            return
        if whole and str(source).endswith(".npy"):
            heldout = read_npy(Path(source).expanduser()).flatten(1).double()
        else:
            heldout, self.toy = load_vectors(  # fresh toy draws, else the test split
                source, n=max(points, 10_000), seed=seed, split="test", data_dir=data_dir
            )  # fmt: skip
        if len(heldout) < 2:
            raise ValueError(
                f"the held-out data of '{source}' must hold at least 2 points for the evaluation; "
                f"got {len(heldout)} (the test split is the last tenth of a .npy file, or the "
                "rows of NAME_test.npy beside it)."
            )
        dim = self.sample_shape[0]
        if heldout.shape[1] != dim:
            raise ValueError(
                f"eval_data must have the dimension of the {what}'s data (D={dim}); got "
                f"'{source}' of dimension {heldout.shape[1]}."
            )
        self.points = ((heldout - center) / scale).float()  # (Q, D) sketch coordinates
        self.points_on_device = self.points.to(self.device).double()  # (Q, D)

    def _image_reference(self, source: str, data_dir: str | None) -> None:
        test = load_split(source, "test", data_dir=data_dir)
        if tuple(test.sample_shape) != self.sample_shape:
            raise ValueError(
                f"eval_data must hold images of shape {self.sample_shape}; got '{source}' of "
                f"shape {test.sample_shape}."
            )
        train = load_split(source, "train", data_dir=data_dir)
        if train.labels is None:
            log.warning("%s has no labels: no classifier metric for its samples", source)
            return
        self.classifier = load_classifier(train, progress=False)
        if self.device.type != "cpu":  # a copy: the cached classifier stays on the CPU
            self.classifier = copy.deepcopy(self.classifier).to(self.device)
        n = min(len(test), REFERENCE_IMAGES)
        self.reference = reference_summary(self.classifier, test.get_batch(torch.arange(n)))

    def unscale(self, x: torch.Tensor) -> torch.Tensor:
        """Sketch coordinates of vectors back to the data's own (images are pixels already)."""
        return x if self.images else x.double() * self.scale + self.center

    def metrics(
        self, samples: torch.Tensor, gen: torch.Generator, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """The held-out metrics of ``samples`` (images, or vectors in sketch coordinates);
        ``labels``: the data set's label each sample was generated for (conditional runs)."""
        if self.images:
            if self.classifier is None:
                return {}
            return classifier_metrics(self.classifier, samples.float(), self.reference, labels)
        if self.points is None:
            return {}
        samples = samples.to(self.device).double()  # (P, D)
        return evaluate_generator(samples, self.points_on_device, self.unscale, self.toy, gen)

    def figures(self, samples, folder: Path, sketch, metrics_rows, loss_label: str) -> None:
        """Sample grid (images) or histograms beside held-out data (vectors), the sketch's
        density (2-D sketches; drawn once, it depends on the sketch alone) and the curves."""
        if self.images:
            grid = samples[:GRID_IMAGES].float()
            save_image_grid(grid, folder / "samples.png", ncol=10, title="generated samples")
        else:
            data = self.unscale(self.points).numpy() if self.points is not None else None
            save_histograms(data, self.unscale(samples).numpy(), folder / "histograms.png")
            density = folder / "sketch_density.png"
            if sketch is not None and sketch.features.dim == 2 and not density.exists():
                save_sketch_density(sketch, density, resolution=DENSITY_RESOLUTION)
        save_generator_curves(metrics_rows, folder / "curves.png", loss_label=loss_label)
