"""distmatch.data on small files written at test time (the real copies: test_data_shared.py)."""

import gzip
import io
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from distmatch.data import (
    DATASETS,
    IMAGE_SIZES,
    DataError,
    ImageFileSet,
    SampleSet,
    TensorSet,
    dataset_names,
    describe,
    load_split,
)

# ------------------------------------------------------------------------------------ file writers


def write_idx(path, array, magic=None, *, gz=None):
    """Writes an IDX ubyte file; gzipped when the name ends in .gz."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 + array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_mnist(folder, n_train=7, n_test=3, *, gz=True, labels=True, seed=0):
    rng = np.random.default_rng(seed)
    ext = ".gz" if gz else ""
    data = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        targets = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        if labels:
            write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", targets)
        data[split] = (images, targets)
    return data


def cifar_records(labels, seed=0):
    """(N, 3073) records: a label byte, then 3072 pixel bytes."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    return np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], pixels], axis=1)


def write_cifar_binary(folder, per_batch=4):
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    tables = {}
    for k, name in enumerate(names):
        table = cifar_records([(k + j) % 10 for j in range(per_batch)], seed=k)
        (folder / name).write_bytes(table.tobytes())
        tables[name] = table
    return tables


def image_bytes(pixels, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def solid(color, width=32, height=32):
    return np.full((height, width, 3), color, dtype=np.uint8)


def framed(width, height, side, *, left=None, top=None):
    """Black image of width x height with a white side x side square, centred by default."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    left = (width - side) // 2 if left is None else left
    top = (height - side) // 2 if top is None else top
    pixels[top : top + side, left : left + side] = 255
    return pixels


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_folder(folder, members):
    for name, data in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def cifar_class_members(prefix=""):
    """Two classes per split; each image one colour, so that decoding can be checked exactly."""
    colors = {
        "train/cat/a.png": (10, 20, 30),
        "train/cat/b.png": (40, 50, 60),
        "train/dog/c.png": (70, 80, 90),
        "test/cat/d.png": (100, 110, 120),
        "test/dog/e.png": (130, 140, 150),
    }
    members = {prefix + name: image_bytes(solid(color)) for name, color in colors.items()}
    members[prefix + "README.txt"] = b"not an image"
    return members, colors


def write_faces(folder, n, width=20, height=24):
    members = {f"faces/{i:03d}.png": image_bytes(solid(i, width, height)) for i in range(n)}
    return write_folder(folder, members)


def one_line_error(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message and message.endswith(".")
    return message


# ------------------------------------------------------------------------------------ registry


def test_dataset_names_are_the_registry_sorted():
    assert dataset_names() == sorted(DATASETS)
    assert set(dataset_names()) == {"digits", "mnist", "fashion_mnist", "cifar10", "celeba", "ffhq"}
    assert IMAGE_SIZES == {"celeba": 64, "ffhq": 1024}


def test_unknown_dataset_error_lists_the_known_names():
    with pytest.raises(
        DataError, match=r"dataset must be one of 'celeba', .*'mnist'.*; got 'svhn'"
    ):
        load_split("svhn", "train")


@pytest.mark.parametrize("split", ["val", "Train", ""])
def test_split_must_be_train_or_test(split):
    with pytest.raises(DataError, match=r"split must be 'train' or 'test'; got") as excinfo:
        load_split("digits", split)
    one_line_error(excinfo)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "celeba", "ffhq"])
def test_file_data_sets_need_data_dir(name):
    with pytest.raises(DataError, match=rf"^{name} needs --data-dir pointing at .*; got none\.$"):
        load_split(name, "train")


def test_mnist_data_dir_message_names_the_idx_files():
    expected = (
        "mnist needs --data-dir pointing at the folder with the IDX files "
        "(train-images-idx3-ubyte.gz, ...); got none."
    )
    with pytest.raises(DataError) as excinfo:
        load_split("mnist", "train")
    assert str(excinfo.value) == expected


def test_missing_data_dir_folder_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=r"data_dir for celeba must be an existing .*nowhere"):
        load_split("celeba", "train", data_dir=missing)


@pytest.mark.parametrize(
    ("name", "size", "match"),
    [
        ("mnist", 32, r"image_size must be None or 28 for mnist"),
        ("digits", 16, r"image_size must be None or 8 for digits"),
        ("celeba", 0, r"image_size must be an int >= 1; got 0"),
        ("ffhq", "64", r"image_size must be an int >= 1; got '64'"),
        ("celeba", True, r"image_size must be an int >= 1; got True"),
    ],
)
def test_image_size_errors(name, size, match, tmp_path):
    with pytest.raises(DataError, match=match) as excinfo:
        load_split(name, "train", data_dir=tmp_path, image_size=size)
    one_line_error(excinfo)


def test_fixed_size_sets_accept_their_own_side():
    assert load_split("digits", "test", image_size=8).sample_shape == (1, 8, 8)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# ------------------------------------------------------------------------------------ digits


def test_digits_split_is_first_1500_rows_then_297():
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert (len(train), len(test)) == (1500, 297)
    assert train.sample_shape == test.sample_shape == (1, 8, 8)
    assert train.is_image and train.name == "digits"
    reference = load_digits()
    x = train.get_batch(torch.arange(1500))
    assert x.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy()[:, 0], reference.images[:1500] / 16)
    np.testing.assert_array_equal(test[0].numpy()[0], reference.images[1500] / 16)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert test.labels.tolist() == reference.target[1500:].tolist()


def test_digits_ignore_data_dir(tmp_path):
    assert len(load_split("digits", "test", data_dir=tmp_path / "absent")) == 297


# ------------------------------------------------------------------------------------ IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    data = write_mnist(tmp_path, gz=gz)
    for split in ("train", "test"):
        images, targets = data[split]
        sample_set = load_split("fashion_mnist", split, data_dir=tmp_path)
        assert isinstance(sample_set, TensorSet)
        assert len(sample_set) == len(images)
        assert sample_set.sample_shape == (1, 28, 28)
        assert sample_set.data.dtype == torch.uint8  # kept compact in memory
        x = sample_set.get_batch(torch.arange(len(images)))
        assert x.dtype == torch.float32
        np.testing.assert_allclose(x.numpy()[:, 0], images / 255, atol=1e-7)
        assert sample_set.labels.tolist() == targets.tolist()


def test_idx_labels_are_optional(tmp_path):
    write_mnist(tmp_path, labels=False)
    sample_set = load_split("mnist", "train", data_dir=tmp_path)
    assert len(sample_set) == 7 and sample_set.labels is None


def test_idx_gz_and_plain_may_be_mixed(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", [3, 4])
    sample_set = load_split("mnist", "test", data_dir=tmp_path)
    assert sample_set.labels.tolist() == [3, 4]


def corrupt_idx(case, folder):
    images = folder / "train-images-idx3-ubyte.gz"
    labels = folder / "train-labels-idx1-ubyte.gz"
    good = np.zeros((3, 28, 28), dtype=np.uint8)
    write_idx(labels, [1, 2, 3])
    if case == "bad magic":
        write_idx(images, good, magic=2049)
    elif case == "size mismatch":
        data = gzip.decompress(write_idx(images, good).read_bytes())
        images.write_bytes(gzip.compress(data[:-5]))
    elif case == "short header":
        images.write_bytes(gzip.compress(b"\x00\x00\x08"))
    elif case == "zero dimension":
        write_idx(images, np.zeros((0, 28, 28)))
    elif case == "bad gzip":
        images.write_bytes(b"this is not gzip data at all")
    elif case == "truncated gzip":
        data = write_idx(images, good).read_bytes()
        images.write_bytes(data[: len(data) // 2])
    elif case == "label count":
        write_idx(images, good)
        write_idx(labels, [1, 2])
    elif case == "labels bad magic":
        write_idx(images, good)
        write_idx(labels, [1, 2, 3], magic=2051)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        (
            "bad magic",
            r"train-images-idx3-ubyte.gz' must be an IDX file with magic number 2051; got 2049",
        ),
        ("size mismatch", r"must hold 2368 bytes as its header \(3, 28, 28\) says; got 2363"),
        ("short header", r"must start with a 16-byte IDX header; got 3 bytes"),
        ("zero dimension", r"must have positive dimensions in its header; got \(0, 28, 28\)"),
        ("bad gzip", r"train-images-idx3-ubyte.gz' must be a valid gzip file; got"),
        ("truncated gzip", r"must be a valid gzip file; got"),
        (
            "label count",
            r"train-labels-idx1-ubyte.gz' must hold one label per image .*\(3\); got 2",
        ),
        ("labels bad magic", r"labels-idx1-ubyte.gz' must be an IDX file with magic number 2049"),
    ],
)
def test_corrupt_idx_files_are_reported(tmp_path, case, match):
    corrupt_idx(case, tmp_path)
    with pytest.raises(DataError, match=match) as excinfo:
        load_split("mnist", "train", data_dir=tmp_path)
    assert str(tmp_path) in one_line_error(excinfo)


def test_missing_idx_file_is_named_with_its_folder(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    assert len(load_split("mnist", "train", data_dir=tmp_path)) == 7
    with pytest.raises(
        DataError,
        match=rf"'{tmp_path}' must contain t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz "
        r"for mnist test; got neither\.",
    ):
        load_split("mnist", "test", data_dir=tmp_path)


def test_idx_data_dir_must_be_a_folder(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((1, 28, 28)))
    with pytest.raises(DataError, match=r"data_dir for mnist must be the folder with the IDX"):
        load_split("mnist", "train", data_dir=path)


# ------------------------------------------------------------------------------------ CIFAR-10


@pytest.mark.parametrize("nested", [True, False])
def test_cifar_binary_skips_the_label_byte_and_reads_planes_in_chw_order(tmp_path, nested):
    folder = tmp_path / "cifar-10-batches-bin" if nested else tmp_path
    tables = write_cifar_binary(folder)
    test = load_split("cifar10", "test", data_dir=tmp_path)
    table = tables["test_batch.bin"]
    assert len(test) == 4 and test.sample_shape == (3, 32, 32)
    assert test.labels.tolist() == table[:, 0].tolist()
    record = table[1, 1:]
    image = test.data[1]  # (3, 32, 32) uint8
    for c, h, w in [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0), (2, 31, 31), (1, 17, 5)]:
        assert int(image[c, h, w]) == record[c * 1024 + h * 32 + w]
    np.testing.assert_allclose(test[1].numpy(), record.reshape(3, 32, 32) / 255, atol=1e-7)


def test_cifar_binary_train_is_the_five_batches_in_order(tmp_path):
    tables = write_cifar_binary(tmp_path, per_batch=3)
    train = load_split("cifar10", "train", data_dir=tmp_path)
    expected = np.concatenate([tables[f"data_batch_{i}.bin"] for i in range(1, 6)])
    assert len(train) == 15
    assert train.labels.tolist() == expected[:, 0].tolist()
    np.testing.assert_array_equal(train.data.reshape(15, -1).numpy(), expected[:, 1:])


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing batch", r"must contain data_batch_3.bin for cifar10 train; got no such file"),
        (
            "partial record",
            r"data_batch_1.bin' must hold whole CIFAR-10 records of 3073 bytes; got 9217",
        ),
        ("empty batch", r"data_batch_1.bin' must hold whole CIFAR-10 records of 3073 bytes; got 0"),
        ("bad label", r"data_batch_2.bin' must have label bytes 0 to 9; got 200"),
    ],
)
def test_corrupt_cifar_binary_is_reported(tmp_path, case, match):
    write_cifar_binary(tmp_path)
    if case == "missing batch":
        (tmp_path / "data_batch_3.bin").unlink()
    elif case == "partial record":
        (tmp_path / "data_batch_1.bin").write_bytes(cifar_records([1, 2, 3]).tobytes()[:-2])
    elif case == "empty batch":
        (tmp_path / "data_batch_1.bin").write_bytes(b"")
    elif case == "bad label":
        (tmp_path / "data_batch_2.bin").write_bytes(cifar_records([1, 200]).tobytes())
    with pytest.raises(DataError, match=match) as excinfo:
        load_split("cifar10", "train", data_dir=tmp_path)
    one_line_error(excinfo)


def test_cifar_python_version_is_refused_without_unpickling(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04 pickle")
    with pytest.raises(
        DataError, match=r"must hold the binary version of CIFAR-10 .*never unpickles"
    ):
        load_split("cifar10", "train", data_dir=tmp_path)


@pytest.mark.parametrize("layout", ["zip", "folder", "folder with zip", "zip with prefix"])
def test_cifar_images_by_class_are_read_from_zip_or_folder(tmp_path, layout):
    members, colors = cifar_class_members("cifar10/" if layout == "zip with prefix" else "")
    if layout == "folder":
        data_dir = write_folder(tmp_path / "images", members)
    elif layout == "folder with zip":
        data_dir = tmp_path / "holder"
        data_dir.mkdir()
        write_zip(data_dir / "cifar.zip", members)
    else:
        data_dir = write_zip(tmp_path / "cifar.zip", members)
    train = load_split("cifar10", "train", data_dir=data_dir)
    test = load_split("cifar10", "test", data_dir=data_dir)
    assert (len(train), len(test)) == (3, 2)
    assert train.sample_shape == (3, 32, 32) and train.data.dtype == torch.uint8
    # Classes are numbered by sorted name over both splits: cat = 0, dog = 1.
    assert train.labels.tolist() == [0, 0, 1] and test.labels.tolist() == [0, 1]
    expected = [c for name, c in colors.items() if name.startswith("train/")]
    for x, color in zip(train.get_batch(torch.arange(3)), expected, strict=True):
        np.testing.assert_allclose(x[:, 5, 7].numpy(), np.array(color) / 255, atol=1e-7)


def test_cifar_images_must_be_32x32(tmp_path):
    members = {
        "train/cat/a.png": image_bytes(solid(0)),
        "train/cat/b.png": image_bytes(solid(0, 64, 48)),
    }
    path = write_zip(tmp_path / "c.zip", members)
    with pytest.raises(
        DataError,
        match=r"'train/cat/b.png' in '.*c.zip' must be a 32x32 image for cifar10; got 64x48",
    ):
        load_split("cifar10", "train", data_dir=path)


def test_cifar_split_without_images_is_reported(tmp_path):
    path = write_zip(tmp_path / "c.zip", {"train/cat/a.png": image_bytes(solid(0))})
    with pytest.raises(
        DataError, match=r"c.zip' must contain images under test/<class>/ for cifar10; got none"
    ):
        load_split("cifar10", "test", data_dir=path)


# ------------------------------------------------------------------------------------ faces


def test_celeba_crop_is_the_central_140_square_of_a_178_wide_image(tmp_path):
    # White exactly where WAE crops (left 19, top 39, side 140), black elsewhere.
    write_folder(tmp_path, {"000001.jpg": image_bytes(framed(178, 218, 140), "PNG")})
    write_folder(tmp_path, {"000002.png": image_bytes(framed(178, 218, 140))})
    for size in (64, 140, 7):
        sample_set = load_split("celeba", "train", data_dir=tmp_path, image_size=size)
        assert isinstance(sample_set, ImageFileSet)
        assert sample_set.sample_shape == (3, size, size)
        x = sample_set[0]
        assert x.shape == (3, size, size) and x.dtype == torch.float32
        assert torch.all(x == 1.0)


def test_celeba_crop_drops_the_border(tmp_path):
    # A 1-pixel wider white square would show as grey edges if the crop were too large.
    pixels = framed(178, 218, 142)
    pixels[40:178, 20:158] = 0  # black centre 138 wide: the 140 crop keeps a 1-px white frame
    write_folder(tmp_path, {"a.png": image_bytes(pixels), "b.png": image_bytes(pixels)})
    x = load_split("celeba", "train", data_dir=tmp_path, image_size=140)[0]
    assert torch.all(x[:, 0, :] == 1.0) and torch.all(x[:, :, 0] == 1.0)
    assert torch.all(x[:, 1:-1, 1:-1] == 0.0)


@pytest.mark.parametrize(("width", "height"), [(60, 40), (40, 60), (40, 40)])
def test_ffhq_crop_is_the_largest_central_square(tmp_path, width, height):
    side = min(width, height)
    write_folder(tmp_path, {f"{i}.png": image_bytes(framed(width, height, side)) for i in range(2)})
    sample_set = load_split("ffhq", "test", data_dir=tmp_path, image_size=8)
    assert len(sample_set) == 1 and sample_set.sample_shape == (3, 8, 8)
    assert torch.all(sample_set[0] == 1.0)


def test_ffhq_resizes_to_1024_by_default(tmp_path):
    write_folder(tmp_path, {f"{i}.png": image_bytes(solid(200, 16, 16)) for i in range(2)})
    sample_set = load_split("ffhq", "train", data_dir=tmp_path)
    assert sample_set.sample_shape == (3, 1024, 1024)
    x = sample_set[0]
    assert x.shape == (3, 1024, 1024)
    assert torch.allclose(x, torch.full_like(x, 200 / 255), atol=1 / 255)


def test_ffhq_resize_uses_lanczos_from_pillow(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(30, 30, 3), dtype=np.uint8)
    write_folder(tmp_path, {"a.png": image_bytes(pixels), "b.png": image_bytes(pixels)})
    x = load_split("ffhq", "train", data_dir=tmp_path, image_size=12)[0]
    expected = np.asarray(Image.fromarray(pixels).resize((12, 12), Image.Resampling.LANCZOS))
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), expected / 255, atol=1e-7)


@pytest.mark.parametrize(("n", "n_test"), [(2, 1), (9, 1), (10, 1), (25, 2), (40, 4)])
def test_face_split_puts_the_last_tenth_by_name_in_test(tmp_path, n, n_test):
    write_faces(tmp_path, n)
    train = load_split("celeba", "train", data_dir=tmp_path, image_size=4)
    test = load_split("celeba", "test", data_dir=tmp_path, image_size=4)
    assert (len(train), len(test)) == (n - n_test, n_test)
    assert train.members + test.members == [f"faces/{i:03d}.png" for i in range(n)]
    # Each image is one grey level, its index, so the order can be read back from the pixels.
    assert round(float(test[0][0, 0, 0]) * 255) == n - n_test


@pytest.mark.parametrize("layout", ["zip", "folder", "folder with zip"])
def test_face_containers_give_the_same_images(tmp_path, layout):
    members = {f"img/{i}.jpg": image_bytes(solid(50 * i, 30, 20), "JPEG") for i in range(3)}
    members["img/._0.jpg"] = b"resource fork"
    members["__MACOSX/img/1.jpg"] = b"resource fork"
    members["img/list.txt"] = b"text"
    if layout == "zip":
        data_dir = write_zip(tmp_path / "faces.zip", members)
    elif layout == "folder":
        data_dir = write_folder(tmp_path / "faces", members)
    else:
        data_dir = tmp_path / "holder"
        data_dir.mkdir()
        write_zip(data_dir / "faces.zip", members)
        (data_dir / "notes.txt").write_text("not images")
    train = load_split("celeba", "train", data_dir=data_dir, image_size=5)
    assert train.members == ["img/0.jpg", "img/1.jpg"]
    assert torch.allclose(train[1], torch.full((3, 5, 5), 50 / 255), atol=3 / 255)


def test_a_folder_of_images_with_a_zip_beside_them_reads_the_images_and_says_so(tmp_path, caplog):
    few = {f"few/{i}.jpg": image_bytes(solid(10 * i), "JPEG") for i in range(2)}
    data_dir = write_folder(tmp_path / "faces", few)
    write_zip(data_dir / "many.zip", {f"{i}.jpg": image_bytes(solid(i), "JPEG") for i in range(9)})
    with caplog.at_level("WARNING", logger="distmatch.data"):
        train = load_split("celeba", "train", data_dir=data_dir, image_size=4)
    assert train.members == ["few/0.jpg"]
    assert "holds 2 images and, beside them, many.zip; reading the images" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="distmatch.data"):
        load_split("celeba", "train", data_dir=data_dir / "many.zip", image_size=4)
    assert not caplog.text


@pytest.mark.parametrize(
    ("case", "match"),
    [
        (
            "not a zip",
            r"'.*faces.zip' must be a folder or a zip file; got a file that is not a readable zip",
        ),
        (
            "empty folder",
            r"must contain JPEG or PNG images \(searched recursively\) or a zip of them for celeba; got none",
        ),
        ("empty zip", r"faces.zip' must contain JPEG or PNG images for celeba; got none"),
        (
            "two zips",
            r"must contain images or a single zip of images for celeba; got 2 zips: a.zip, b.zip",
        ),
        ("one image", r"must hold at least 2 samples to split into train and test; got 1"),
    ],
)
def test_face_container_errors(tmp_path, case, match):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if case == "not a zip":
        data_dir = tmp_path / "faces.zip"
        data_dir.write_bytes(b"PK but not really a zip")
    elif case == "empty zip":
        data_dir = write_zip(tmp_path / "faces.zip", {"readme.txt": b"x"})
    elif case == "two zips":
        write_zip(data_dir / "a.zip", {"x.png": image_bytes(solid(0))})
        write_zip(data_dir / "b.zip", {"x.png": image_bytes(solid(0))})
    elif case == "one image":
        write_folder(data_dir, {"x.png": image_bytes(solid(0))})
    with pytest.raises(DataError, match=match) as excinfo:
        load_split("celeba", "train", data_dir=data_dir)
    assert str(tmp_path) in one_line_error(excinfo)


def test_undecodable_image_names_the_member(tmp_path):
    members = {"img/a.jpg": image_bytes(solid(0), "JPEG"), "img/b.jpg": b"\xff\xd8 truncated"}
    path = write_zip(tmp_path / "faces.zip", members)
    sample_set = load_split("ffhq", "train", data_dir=path, image_size=4)
    assert sample_set[0].shape == (3, 4, 4)
    test = load_split("ffhq", "test", data_dir=path, image_size=4)
    with pytest.raises(
        DataError, match=r"'img/b.jpg' in '.*faces.zip' must be a readable JPEG or PNG image; got"
    ) as excinfo:
        test[0]
    one_line_error(excinfo)


def test_truncated_image_file_names_the_member(tmp_path):
    data = image_bytes(np.random.default_rng(0).integers(0, 256, (40, 40, 3)), "PNG")
    write_folder(tmp_path, {"a.png": data, "b.png": data[: len(data) // 2]})
    test = load_split("ffhq", "test", data_dir=tmp_path, image_size=4)
    with pytest.raises(DataError, match=r"'b.png' in .* must be a readable JPEG or PNG image"):
        test[0]


def test_image_file_set_pickles_without_its_zip_handle(tmp_path):
    members = {f"{i}.png": image_bytes(solid(20 * i)) for i in range(4)}
    sample_set = load_split("celeba", "train", data_dir=write_zip(tmp_path / "f.zip", members))
    before = sample_set[2]
    copy = pickle.loads(pickle.dumps(sample_set))
    assert copy.container._zip is None
    assert torch.equal(copy[2], before)


def test_image_file_set_works_in_dataloader_workers(tmp_path):
    members = {f"{i:02d}.png": image_bytes(solid(10 * i)) for i in range(12)}
    sample_set = load_split(
        "celeba", "train", data_dir=write_zip(tmp_path / "f.zip", members), image_size=4
    )
    sample_set[0]  # opens the zip in this process before the workers fork
    loader = DataLoader(sample_set, batch_size=4, num_workers=2)
    batches = torch.cat(list(loader))
    assert torch.equal(batches, sample_set.get_batch(torch.arange(len(sample_set))))


def test_image_file_set_from_a_folder_takes_all_members(tmp_path):
    write_faces(tmp_path, 3, 8, 8)
    sample_set = ImageFileSet(tmp_path, image_size=8, name="faces", split="train")
    assert len(sample_set) == 3 and sample_set.members[0] == "faces/000.png"


# ------------------------------------------------------------------------------------ .npy


def test_npy_vectors_are_float32_and_split_last_tenth(tmp_path):
    array = np.arange(25 * 3, dtype=np.float64).reshape(25, 3)
    path = tmp_path / "x.npy"
    np.save(path, array)
    train, test = load_split(str(path), "train"), load_split(path, "test")
    assert (len(train), len(test)) == (23, 2)
    assert not train.is_image and train.sample_shape == (3,)
    assert train.name == str(path)
    assert test.data.dtype == torch.float32
    np.testing.assert_array_equal(test.data.numpy(), array[23:])


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.int16, np.float16])
def test_npy_numeric_2d_arrays_are_vectors_without_scaling(tmp_path, dtype):
    array = (np.arange(5 * 4) % 100).reshape(5, 4).astype(dtype)
    np.save(tmp_path / "v.npy", array)
    train = load_split(str(tmp_path / "v.npy"), "train")
    assert (len(train), train.sample_shape, train.data.dtype) == (4, (4,), torch.float32)
    np.testing.assert_array_equal(train.data.numpy(), array[:4].astype(np.float32))


def test_npy_float_images_are_flattened_to_vectors(tmp_path):
    array = np.random.default_rng(0).random((6, 2, 3, 4))
    np.save(tmp_path / "f.npy", array)
    train = load_split(str(tmp_path / "f.npy"), "train")
    assert not train.is_image and train.sample_shape == (24,)
    np.testing.assert_allclose(train.data.numpy(), array[:5].reshape(5, 24), rtol=1e-6)


def test_npy_uint8_3d_is_grayscale_images_scaled_to_unit_range(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (10, 5, 7), dtype=np.uint8)
    np.save(tmp_path / "g.npy", array)
    test = load_split(str(tmp_path / "g.npy"), "test")
    assert test.is_image and test.sample_shape == (1, 5, 7) and len(test) == 1
    np.testing.assert_allclose(test[0].numpy()[0], array[9] / 255, atol=1e-7)
    assert describe(test) == f"{tmp_path / 'g.npy'} test: 1 image 1x5x7"


@pytest.mark.parametrize("channels", [1, 3])
def test_npy_uint8_channels_last_and_first_give_the_same_images(tmp_path, channels):
    nchw = np.random.default_rng(0).integers(0, 256, (4, channels, 6, 5), dtype=np.uint8)
    np.save(tmp_path / "first.npy", nchw)
    np.save(tmp_path / "last.npy", nchw.transpose(0, 2, 3, 1))
    first = load_split(str(tmp_path / "first.npy"), "train")
    last = load_split(str(tmp_path / "last.npy"), "train")
    assert first.sample_shape == last.sample_shape == (channels, 6, 5)
    assert torch.equal(first.data, last.data)


def test_npy_test_sibling_is_the_test_split(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((7, 2), dtype=np.float32))
    np.save(tmp_path / "d_test.npy", np.ones((3, 2), dtype=np.float32))
    train = load_split(str(tmp_path / "d.npy"), "train")
    test = load_split(str(tmp_path / "d.npy"), "test")
    assert (len(train), len(test)) == (7, 3)
    assert torch.all(train.data == 0) and torch.all(test.data == 1)
    assert test.name == str(tmp_path / "d.npy")


def test_npy_image_size_must_match_the_images(tmp_path):
    np.save(tmp_path / "i.npy", np.zeros((4, 8, 8), dtype=np.uint8))
    assert load_split(str(tmp_path / "i.npy"), "train", image_size=8).sample_shape == (1, 8, 8)
    with pytest.raises(DataError, match=r"image_size must be None or the images' own side for"):
        load_split(str(tmp_path / "i.npy"), "train", image_size=16)


def write_bad_npy(case, path):
    if case == "pickled objects":
        np.save(path, np.array([[1, "a"], [2, None]], dtype=object), allow_pickle=True)
    elif case == "strings":
        np.save(path, np.array([["a", "b"], ["c", "d"]]))
    elif case == "complex":
        np.save(path, np.ones((3, 2), dtype=np.complex64))
    elif case == "one dimension":
        np.save(path, np.arange(5.0))
    elif case == "nan":
        array = np.ones((4, 3))
        array[1, 2] = np.nan
        np.save(path, array)
    elif case == "inf":
        np.save(path, np.full((4, 3), np.inf))
    elif case == "float64 overflow":
        np.save(path, np.full((4, 3), 1e300))
    elif case == "one sample":
        np.save(path, np.ones((1, 3)))
    elif case == "four channels":
        np.save(path, np.zeros((4, 4, 5, 4), dtype=np.uint8))
    elif case == "not npy":
        path.write_bytes(b"just some text")
    elif case == "truncated":
        np.save(path, np.ones((4, 3)))
        path.write_bytes(path.read_bytes()[:-8])
    elif case == "zero features":
        np.save(path, np.ones((5, 0)))
    elif case == "empty":
        np.save(path, np.zeros((0, 3)))


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("pickled objects", r"must be a .npy array of numbers, never pickled objects; got"),
        ("strings", r"must hold real numbers; got dtype <U1"),
        ("complex", r"must hold real numbers; got dtype complex64"),
        (
            "one dimension",
            r"must hold an array of shape \(N, D\) or \(N, ...\), one sample per row; got shape \(5,\)",
        ),
        ("nan", r"must hold only finite values \(as float32\); got 1 NaN or inf entries"),
        ("inf", r"must hold only finite values \(as float32\); got 9 NaN or inf entries"),
        (
            "float64 overflow",
            r"must hold only finite values \(as float32\); got 9 NaN or inf entries",
        ),
        ("one sample", r"must hold at least 2 samples to split into train and test; got 1"),
        (
            "four channels",
            r"must hold uint8 images \(N, H, W, C\) or \(N, C, H, W\) with C = 1 or 3; got shape \(4, 4, 5, 4\)",
        ),
        ("not npy", r"must be a .npy file; got a file without the .npy header"),
        ("truncated", r"must be a .npy array of numbers, never pickled objects; got"),
        ("zero features", r"one sample per row; got shape \(5, 0\)"),
        ("empty", r"one sample per row; got shape \(0, 3\)"),
    ],
)
def test_bad_npy_files_are_reported(tmp_path, case, match):
    path = tmp_path / "bad.npy"
    write_bad_npy(case, path)
    with pytest.raises(DataError, match=match) as excinfo:
        load_split(str(path), "train")
    assert str(path) in one_line_error(excinfo)


def test_missing_npy_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"dataset '.*missing.npy' must be an existing .npy file"):
        load_split(str(tmp_path / "missing.npy"), "train")


def test_npy_test_sibling_must_match_the_train_file(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((7, 2), dtype=np.float32))
    np.save(tmp_path / "d_test.npy", np.ones((3, 5), dtype=np.float32))
    with pytest.raises(
        DataError,
        match=r"d_test.npy' must hold samples like '.*d.npy' \(float32, shape \(N, 2\)\); got float32, shape \(3, 5\)",
    ):
        load_split(str(tmp_path / "d.npy"), "test")


# ------------------------------------------------------------------------------------ batches


def make_set(kind, tmp_path):
    if kind == "digits":
        return load_split("digits", "test")
    if kind == "npy vectors":
        np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(30, 4)))
        return load_split(str(tmp_path / "v.npy"), "train")
    if kind == "uint8 images":
        write_cifar_binary(tmp_path)
        return load_split("cifar10", "train", data_dir=tmp_path)
    write_faces(tmp_path, 12, 9, 11)
    return load_split("ffhq", "train", data_dir=tmp_path, image_size=6)


@pytest.mark.parametrize("kind", ["digits", "npy vectors", "uint8 images", "image files"])
def test_get_batch_equals_stacked_items(tmp_path, kind):
    sample_set = make_set(kind, tmp_path)
    assert isinstance(sample_set, SampleSet)
    indices = torch.tensor([3, 0, 3, len(sample_set) - 1])
    batch = sample_set.get_batch(indices)
    assert batch.dtype == torch.float32
    assert batch.shape == (4, *sample_set.sample_shape)
    assert torch.equal(batch, torch.stack([sample_set[int(i)] for i in indices]))
    assert sample_set.get_batch(torch.tensor([], dtype=torch.long)).shape == (
        0,
        *sample_set.sample_shape,
    )
    if sample_set.is_image:
        assert float(batch.min()) >= 0.0 and float(batch.max()) <= 1.0


def test_items_are_copies(tmp_path):
    sample_set = make_set("npy vectors", tmp_path)
    sample_set[0].zero_()
    sample_set.get_batch(torch.tensor([1])).zero_()
    assert sample_set[0].abs().sum() > 0 and sample_set[1].abs().sum() > 0


def test_describe_gives_count_kind_and_shape(tmp_path):
    assert describe(load_split("digits", "train")) == "digits train: 1500 images 1x8x8"
    np.save(tmp_path / "v.npy", np.zeros((10, 8)))
    assert describe(load_split(str(tmp_path / "v.npy"), "train")) == (
        f"{tmp_path / 'v.npy'} train: 9 vectors of dimension 8"
    )
    assert repr(load_split("digits", "test")) == "TensorSet(digits test: 297 images 1x8x8)"


def test_tensor_set_rejects_unsupported_data():
    with pytest.raises(
        DataError,
        match=r"data of x must be \(N, C, H, W\) uint8/float32 images or \(N, D\) float32 vectors; got torch.uint8 of shape \(3, 4\)",
    ):
        TensorSet(torch.zeros(3, 4, dtype=torch.uint8), name="x", split="train")


def test_a_tensor_set_moves_to_a_device_and_serves_batches_from_there():
    from distmatch.data import TensorSet

    images = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    sample_set = TensorSet(images, name="tiny", split="train")
    assert sample_set.nbytes == 160
    before = sample_set.get_batch(torch.tensor([3, 1]))
    assert sample_set.to("cpu") is sample_set
    torch.testing.assert_close(sample_set.get_batch(torch.tensor([3, 1])), before)
    assert before.dtype == torch.float32 and float(before.max()) <= 1.0
