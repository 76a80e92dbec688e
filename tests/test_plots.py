import numpy as np
import pytest
import torch
from PIL import Image

from distmatch.models import build_autoencoder
from distmatch.report import image_grid, save_autoencoder_figures, save_image_grid


def test_image_grid_places_each_image_in_its_cell():
    images = torch.zeros(3, 1, 2, 2)
    images[1] = 1.0  # the second cell is white
    grid = image_grid(images, ncol=2, pad=1, min_cell=2)
    assert grid.shape == (1 + 2 * 3, 1 + 2 * 3, 3) and grid.dtype == np.uint8
    assert (grid[1:3, 1:3] == 0).all()  # first image black
    assert (grid[1:3, 4:6] == 255).all()  # second image white
    assert (grid[4:6, 1:3] == 0).all()  # third image, second row


def test_small_images_are_enlarged_by_an_integer_factor():
    grid = image_grid(torch.rand(1, 3, 8, 8), ncol=1, pad=0, min_cell=48)
    assert grid.shape == (48, 48, 3)


def test_bad_image_shape():
    with pytest.raises(
        ValueError, match=r"images must be \(N, C, H, W\) with C in 1, 3; got \(2, 2, 8, 8\)"
    ):
        image_grid(torch.rand(2, 2, 8, 8), ncol=2)


def test_save_image_grid_writes_a_png(tmp_path):
    save_image_grid(torch.rand(5, 3, 4, 4), tmp_path / "g.png", ncol=3)
    assert Image.open(tmp_path / "g.png").format == "PNG"
    assert not list(tmp_path.glob(".*.tmp*"))  # no temporary file left behind


class _Images:
    is_image, sample_shape = True, (1, 8, 8)

    def __len__(self):
        return 10

    def get_batch(self, index):
        return torch.rand(len(index), 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_autoencoder_figures_are_written_and_reproducible(tmp_path):
    model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=3)
    paths = save_autoencoder_figures(model, _Images(), tmp_path / "a", seed=1)
    assert sorted(p.name for p in paths) == [
        "interpolations.png",
        "reconstructions.png",
        "samples.png",
    ]
    save_autoencoder_figures(model, _Images(), tmp_path / "b", seed=1)
    for path in paths:
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
