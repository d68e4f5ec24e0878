"""Reading MNIST-format idx files (`train-images-idx3-ubyte.gz`, ...) into ImageSets."""

import gzip
import os
import zlib

import numpy as np
import tensorflow as tf

from vqgen.data.image_set import ImageSet
from vqgen.storage import open_file

# idx type codes (third header byte) -> big-endian element dtype, per LeCun's MNIST page.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# split name -> file-name prefix used by MNIST and Fashion-MNIST.
IDX_SPLIT_PREFIXES = {"train": "train", "test": "t10k"}


def read_idx_file(path):
    """Reads one idx file (optionally gzip-compressed) into a NumPy array.

    The idx format (LeCun et al., the MNIST distribution format) is a 4-byte magic number - two
    zero bytes, a type code, the number of dimensions - then one big-endian uint32 per dimension,
    then the raw big-endian data. Every part is validated: the magic bytes, the type code, and that
    the data length matches the dimensions exactly.

    Args:
        path: str. An idx file; names ending in `.gz` are decompressed.

    Returns:
        An `np.ndarray` of the stored shape, in native byte order (uint8 for MNIST files).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is not valid gzip, is truncated, or has a bad header.

    Example:
    >>> images = read_idx_file("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    >>> images.shape, images.dtype
    ((10000, 28, 28), dtype('uint8'))
    """
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"idx file {path!r} does not exist; check the path")
    try:
        with open_file(path) as stored:
            data = stored.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f"idx file {path!r} is corrupt or truncated ({error}); download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path!r} is not an idx file (its first bytes are not 00 00 <type> <ndim>); point "
            f"the source at MNIST-format files"
        )
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"idx file {path!r} has an invalid header (type code 0x{type_code:02x}, {ndim} "
            f"dimensions); the file is corrupt, download it again"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"idx file {path!r} is truncated inside its header; download it again")
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        problem = "is truncated" if actual < expected else "has trailing bytes"
        raise ValueError(
            f"idx file {path!r} {problem}: its header {shape} needs {expected} data bytes but it "
            f"has {actual}; download it again"
        )
    values = np.frombuffer(data, dtype, count=int(np.prod(shape)), offset=header_size)
    return values.reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx_file(directory, stem):
    """Returns the path of `stem.gz` or `stem` in `directory`, or None if neither exists."""
    for name in (f"{stem}.gz", stem):
        path = os.path.join(directory, name)
        if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
            return path
    return None


def load_idx_directory(directory, split="train"):
    """Loads a directory of MNIST-format idx files (e.g. MNIST or Fashion-MNIST) as an ImageSet.

    Reads `{prefix}-images-idx3-ubyte[.gz]` and, if present, `{prefix}-labels-idx1-ubyte[.gz]`,
    where the prefix is `train` for `split="train"` and `t10k` for `split="test"` (the names of
    the original distributions). `num_classes` is `max(label) + 1`.

    Args:
        directory: str. The directory holding the idx files.
        split: str. `"train"` or `"test"`.

    Returns:
        An `ImageSet` of uint8 `[N, H, W, 1]` images, with int32 labels if the labels file exists.

    Raises:
        FileNotFoundError: if the images file for the split is missing.
        ValueError: for an unknown split, a corrupt file, an images file that is not 3-D uint8,
            or a labels file that does not hold one uint8 label per image.

    Example:
    >>> fashion = load_idx_directory("/usr/share/datasets/fashion-mnist", split="test")
    >>> fashion.image_shape, fashion.num_classes
    ((28, 28, 1), 10)
    """
    if split not in IDX_SPLIT_PREFIXES:
        raise ValueError(
            f"an idx directory has the splits 'train' and 'test'; pass one of them. Received: split={split!r}"
        )
    prefix = IDX_SPLIT_PREFIXES[split]
    images_path = _find_idx_file(directory, f"{prefix}-images-idx3-ubyte")
    if images_path is None:
        raise FileNotFoundError(
            f"{directory!r} has no {prefix}-images-idx3-ubyte.gz for split={split!r}; add the file "
            f"or choose another split"
        )
    images = read_idx_file(images_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path!r} must hold uint8 images [N, H, W]; it holds {images.dtype} "
            f"{images.shape}. Use an MNIST-format images file"
        )
    labels_path = _find_idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    labels = None
    if labels_path is not None:
        labels = read_idx_file(labels_path)
        if labels.ndim != 1 or labels.dtype != np.uint8 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"{labels_path!r} must hold {images.shape[0]} uint8 labels (one per image); it "
                f"holds {labels.dtype} {labels.shape}. Use the labels file that matches the images"
            )
    return ImageSet(images=images, labels=labels, num_classes=None, name=directory)
