"""distmatch.data on the real copies in ../shared/data (skipped where they are absent)."""

import pytest
import torch

from distmatch.data import ImageFileSet, describe, load_split

from conftest import SHARED_DATA


def shared(*parts):
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def test_mnist_has_60000_train_and_10000_test_images():
    folder = shared("mnist")
    train = load_split("mnist", "train", data_dir=folder)
    test = load_split("mnist", "test", data_dir=folder)
    assert describe(train) == "mnist train: 60000 images 1x28x28"
    assert describe(test) == "mnist test: 10000 images 1x28x28"
    assert train.labels[0] == 5
    assert torch.bincount(train.labels).tolist()[:2] == [5923, 6742]
    x = train.get_batch(torch.arange(0, 60000, 97))
    assert x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


def test_fashion_mnist_has_6000_train_images_per_class():
    folder = shared("fashion-mnist")
    train = load_split("fashion_mnist", "train", data_dir=folder)
    test = load_split("fashion_mnist", "test", data_dir=folder)
    assert (len(train), len(test)) == (60000, 10000)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10


def test_cifar10_jpeg_zip_gives_1000_images_per_class():
    folder = shared("cifar10")
    train = load_split("cifar10", "train", data_dir=folder)  # the zip inside the folder
    assert describe(train) == "cifar10 train: 10000 images 3x32x32"
    assert train.data.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [1000] * 10
    x = train.get_batch(torch.arange(0, 10000, 500))
    assert 0.0 <= float(x.min()) < 0.1 and 0.9 < float(x.max()) <= 1.0


def test_celeba_zip_splits_8000_faces_7200_and_800():
    path = shared("celeba", "celeba-aligned-89x109-000001-008000.zip")
    train = load_split("celeba", "train", data_dir=path)
    test = load_split("celeba", "test", data_dir=path)
    assert isinstance(test, ImageFileSet)
    assert (len(train), len(test)) == (7200, 800)
    assert train.members[0] == "img_89x109/000001.jpg"
    assert test.members[-1] == "img_89x109/008000.jpg"
    x = test.get_batch(torch.tensor([0, 799]))
    assert x.shape == (2, 3, 64, 64)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.std()) > 0.05


def test_celeba_folder_of_aligned_178x218_faces(caplog):
    # The celeba folder holds images (img_align_celeba_178x218/) and a zip: images come first,
    # with a warning that names the zip.
    folder = shared("celeba")
    shared("celeba", "img_align_celeba_178x218")
    with caplog.at_level("WARNING", logger="distmatch.data"):
        train = load_split("celeba", "train", data_dir=folder, image_size=32)
    assert (
        "holds 32 images and, beside them, celeba-aligned-89x109-000001-008000.zip" in caplog.text
    )
    test = load_split("celeba", "test", data_dir=folder, image_size=32)
    assert (len(train), len(test)) == (29, 3)
    assert train.members[0] == "img_align_celeba_178x218/000001.jpg"
    assert train[0].shape == (3, 32, 32)


def test_ffhq_two_faces_split_one_and_one():
    folder = shared("ffhq")
    train = load_split("ffhq", "train", data_dir=folder)
    test = load_split("ffhq", "test", data_dir=folder, image_size=64)
    assert (len(train), len(test)) == (1, 1)
    assert train.sample_shape == (3, 1024, 1024)
    assert train.members == ["01223.png"] and test.members == ["gfpgan-tests-gt-00000000_512.png"]
    x = test[0]
    assert x.shape == (3, 64, 64) and float(x.std()) > 0.05
