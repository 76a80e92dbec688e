"""What a run shows a reader: figures (PNG, drawn with matplotlib's object API, no display needed)
and one self-contained HTML page per run folder (:func:`write_report`)."""

from ._figures import (
    save_curves,
    save_generator_curves,
    save_histograms,
    save_scatter,
    save_sketch_density,
    save_training_curves,
)
from ._grids import (
    chunk_size,
    decode_chunked,
    image_grid,
    save_autoencoder_figures,
    save_image_grid,
    save_interpolations,
    save_reconstructions,
)
from ._html import ReportWarning
from ._page import write_report

__all__ = [
    "ReportWarning",
    "chunk_size",
    "decode_chunked",
    "image_grid",
    "save_autoencoder_figures",
    "save_curves",
    "save_generator_curves",
    "save_histograms",
    "save_image_grid",
    "save_interpolations",
    "save_reconstructions",
    "save_scatter",
    "save_sketch_density",
    "save_training_curves",
    "write_report",
]
