"""Class-conditional generators from the sketches of the data's classes.

The classes' sketches come from the file of a labelled data set (``distmatch sketch`` writes them
beside the whole sketch) or from one file per class (``distmatch sketch --by-label``).

Part of :mod:`distmatch.generation`. DP-MERF's setting (Harder et al., AISTATS 2021): the data set
is sketched class by class, ``z_c = (1/N_c) sum_{i in c} phi(x_i)``, all with the same
frequencies, and a generator ``G(u, c)`` takes a code and the one-hot class
(:class:`distmatch.models.Generator` with ``classes = C``). Each step generates a class-balanced
batch (sample ``i`` of class ``i mod C``, ``B / C`` of each) and minimises the class-weighted
squared sketch distance::

    L = sum_c w_c |mean_{i: c_i = c} phi(G(u_i, c)) - z_c|^2,    w_c = N_c / N

each term estimated as :func:`distmatch.sketch.sketch_distance` does (unbiased by default for
images). ``L`` is the squared MMD between the joint laws of (image, class) under the kernel
``k(x, x') [c = c'] / w_c``; a class each generated image must resemble is what makes every
class appear, and what the unconditional generator cannot be asked. Evaluation and sampling
draw the classes with probabilities ``w_c``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch

from ..sketch import Sketch, sketch_distance

__all__ = ["ClassSketches", "load_sketches"]


@dataclasses.dataclass(frozen=True)
class ClassSketches:
    """The per-class sketches of one data set, ordered by label, sharing one feature map.

    Attributes:
        sketches: ``C`` sketches, class index ``c`` first to last.
        labels: the data set's label of each class index (``labels[c]``).
        weights: ``(C,)`` float64 class weights ``N_c / N`` (from the sketches' counts).
    """

    sketches: tuple[Sketch, ...]
    labels: tuple[int, ...]
    weights: torch.Tensor

    @property
    def classes(self) -> int:
        return len(self.sketches)

    def batch_labels(self, positions: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        """``[labels (B_r,), index of class 0, ..., index of class C-1]`` on ``device`` for the
        samples at ``positions`` of a global batch (class of position ``p``: ``p mod C``)."""
        labels = positions % self.classes
        index = [torch.nonzero(labels == c).flatten().to(device) for c in range(self.classes)]
        return [labels.to(device), *index]

    def distance(
        self, x: torch.Tensor, index: Sequence[torch.Tensor], *, estimator: str
    ) -> torch.Tensor:
        """``L = sum_c w_c D_c``: the class-weighted squared sketch distance of this rank's
        samples ``x`` (B_r, D) in sketch coordinates, ``index[c]`` the rows of class ``c``;
        across ranks it is that of the global batch (:func:`distmatch.sketch.sketch_distance`)."""
        total = x.new_zeros(())
        for sketch, rows, weight in zip(self.sketches, index, self.weights.tolist(), strict=True):
            part = sketch_distance(sketch, x[rows], estimator=estimator, across_ranks=True)
            total = total + weight * part
        return total

    def check_batch(self, batch_size: int, last: int, estimator: str) -> None:
        """Refuses batches that leave a class without the samples its estimate needs (2 for the
        unbiased estimator, 1 for the biased one); ``last`` is the size of an epoch's last batch."""
        need = (2 if estimator == "unbiased" else 1) * self.classes
        if min(batch_size, last) < need:
            raise ValueError(
                f"batch_size must give every one of the {self.classes} classes at least "
                f"{need // self.classes} samples ({estimator} estimator): at least {need}, and so "
                f"must an epoch's last batch; got {batch_size} (last batch {last})."
            )


def load_sketches(
    paths: Sequence[str | os.PathLike[str]], *, conditional: bool | None = None
) -> tuple[Sketch, ClassSketches | None]:
    """Reads the sketch files of a run: ``(sketch, classes)``, the whole data set's sketch and,
    for a class-conditional generator, its classes' sketches (else None).

    The classes come from one file that holds them beside the whole (``distmatch sketch`` of a
    labelled data set), or from one file per class (``distmatch sketch --by-label``).
    ``conditional``: None takes the classes where there are some; False never (several class
    files then make the whole sketch); True requires them.

    Raises:
        ValueError: several files of which one holds no class, two hold the same class, or they
            do not fit together (frequencies, scaling, privacy, shape, overlapping rows: as
            :meth:`distmatch.sketch.Sketch.merge`); ``conditional=True`` without classes.
        FileNotFoundError, SketchError: a file is missing or unreadable.
    """
    if isinstance(paths, str | os.PathLike):  # one file
        paths = [paths]
    if not paths:
        raise ValueError("paths must name at least one sketch file; got none.")
    if len(paths) == 1:
        if conditional is False:
            return Sketch.load(paths[0]), None
        pooled, classes = Sketch.load_with_classes(paths[0])  # one feature map for all
        if classes is None:
            if conditional:
                raise ValueError(
                    "a class-conditional generator needs the sketches of the classes: a file of "
                    "a labelled data set made by distmatch sketch, or one file per class (--by-"
                    f"label); got '{paths[0]}', which holds none."
                )
            return pooled, None
        return pooled, _classes(classes)
    loaded = [Sketch.load(path) for path in paths]
    seen: dict[int, str] = {}
    for path, sketch in zip(paths, loaded, strict=True):
        if sketch.label is None:
            raise ValueError(
                "sketch files must each hold one class (distmatch sketch --by-label) to train a "
                f"class-conditional generator; got '{path}', a sketch of no single class."
            )
        if sketch.label in seen:
            raise ValueError(
                f"sketch files must hold distinct classes; got class {sketch.label} in both "
                f"'{seen[sketch.label]}' and '{path}'."
            )
        seen[sketch.label] = str(path)
    pooled = loaded[0].copy()
    for path, sketch in zip(paths[1:], loaded[1:], strict=True):
        try:
            pooled.merge(sketch)
        except ValueError as err:
            raise ValueError(f"sketch '{path}' does not fit '{paths[0]}': {err}") from None
    if conditional is False:
        return pooled, None
    # one feature map for all (the pooled sketch's): moved to a device once
    ordered = sorted(loaded, key=lambda sketch: sketch.label)
    return pooled, _classes([s.copy(features=pooled.features) for s in ordered])


def _classes(sketches: Sequence[Sketch]) -> ClassSketches:
    """The classes' sketches, ordered by label, with their weights ``N_c / N``."""
    counts = torch.tensor([max(s.count, 1) for s in sketches], dtype=torch.float64)
    labels = tuple(int(s.label) for s in sketches)
    return ClassSketches(tuple(sketches), labels, counts / counts.sum())
