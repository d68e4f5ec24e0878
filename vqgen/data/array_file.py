"""Reading images (and optional labels) from a NumPy `.npz` or `.npy` file into an ImageSet."""

import zipfile
import zlib

import numpy as np

from vqgen.data.error_text import first_line
from vqgen.data.image_set import ImageSet
from vqgen.storage import open_file

IMAGE_KEYS = ("images", "x")
LABEL_KEYS = ("labels", "y")


def _read_arrays(path):
    """Returns `(images or None, labels or None, stored names)` from an .npz or .npy file."""
    with open_file(path) as stream:
        if not path.lower().endswith(".npz"):
            return np.load(stream, allow_pickle=False), None, ["images"]
        with np.load(stream, allow_pickle=False) as archive:
            found = [
                next((archive[key] for key in keys if key in archive.files), None)
                for keys in (IMAGE_KEYS, LABEL_KEYS)
            ]
            return found[0], found[1], sorted(archive.files)


def load_array_file(path):
    """Loads images from an `.npz` archive or an `.npy` array as an ImageSet.

    An `.npz` archive holds the images under the key `images` (or `x`) and optionally integer
    labels under `labels` (or `y`); `num_classes` is then `max(label) + 1`. An `.npy` file holds
    the images alone. Images are `[N, H, W]` or `[N, H, W, C]` with C 1 or 3, as uint8 0..255,
    other integers in 0..255, or floats in [0, 1] (see `ImageSet`). Pickled object arrays are
    refused.

    Args:
        path: str. A file ending in `.npz` or `.npy`, local or any `tf.io.gfile` URL.

    Returns:
        An `ImageSet` (uint8 or float32 images).

    Raises:
        ValueError: if the file is truncated, corrupt or pickled, the archive lacks an images
            array, or the arrays are invalid as images/labels.

    Example:
    >>> np.savez("tiny.npz", images=np.zeros((2, 4, 4), np.uint8), labels=np.array([0, 1]))
    >>> load_array_file("tiny.npz").image_shape
    (4, 4, 1)
    """
    try:
        images, labels, names = _read_arrays(path)
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(
            f"cannot read {path!r} ({first_line(error)}); the file is truncated, corrupt or "
            f"pickled, save it again with numpy.save or numpy.savez"
        ) from None
    if images is None:
        raise ValueError(
            f"{path!r} has no array named 'images' or 'x' (it holds {names}); save the images "
            f"under the key 'images'"
        )
    return ImageSet(images=images, labels=labels, num_classes=None, name=path)
