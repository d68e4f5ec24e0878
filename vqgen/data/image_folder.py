"""Reading a folder of image files (optionally one sub-folder per class) into an ImageSet."""

import os

import numpy as np
import tensorflow as tf

from vqgen.data.image_set import ImageSet

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _image_files(directory):
    """Returns the sorted paths of the image files directly inside `directory`."""
    names = sorted(os.listdir(directory))
    return [
        os.path.join(directory, name)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(directory, name))
    ]


def decode_image_file(path):
    """Reads one image file (PNG, JPEG, BMP, GIF: first frame) as it is stored.

    Args:
        path: str, the file.

    Returns:
        uint8 array `[H, W, C]`, C the file's own channels (1 to 4).

    Raises:
        OSError: the file cannot be read.
        ValueError: its bytes are not an image TensorFlow can decode.

    Example:
    >>> decode_image_file("digit.png").shape  # doctest: +SKIP
    (28, 28, 1)
    """
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        pixels = tf.io.decode_image(data, dtype=tf.uint8, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        raise ValueError(
            f"cannot decode {path!r} as PNG/JPEG/BMP/GIF; the file is corrupt or mislabelled, "
            f"re-save or remove it"
        ) from None
    return pixels.numpy()


def load_image_folder(directory):
    """Loads every image of a folder into an ImageSet, labelled by class sub-folder if any.

    Image files (extensions .png, .jpg, .jpeg, .bmp, .gif, any case) are read from `directory`
    itself and from its immediate sub-folders, in sorted order, and decoded with
    `tf.io.decode_image` (the first frame of an animated GIF). If every image lies in a
    sub-folder, the sub-folders are classes: label `i` is the `i`-th sub-folder (sorted by name)
    that holds images. Otherwise the set has no labels. Other files are ignored.

    Args:
        directory: str. The folder to read.

    Returns:
        An `ImageSet` of uint8 `[N, H, W, C]` images.

    Raises:
        ValueError: if the folder holds no image files, an image cannot be decoded, or the images
            differ in size or channel count (or have a channel count other than 1 or 3).

    Example:
    >>> pets = load_image_folder("photos")  # photos/cat/*.png, photos/dog/*.png
    >>> pets.num_classes
    2
    """
    top_level = _image_files(directory)
    class_files = {}
    for name in sorted(os.listdir(directory)):
        sub_directory = os.path.join(directory, name)
        files = _image_files(sub_directory) if os.path.isdir(sub_directory) else []
        if files:
            class_files[name] = files
    paths = top_level + [path for files in class_files.values() for path in files]
    if not paths:
        raise ValueError(
            f"folder {directory!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in itself or "
            f"its sub-folders; add images or point the source at another folder"
        )
    images = []
    for path in paths:
        pixels = decode_image_file(path)
        if images and pixels.shape != images[0].shape:
            raise ValueError(
                f"images in {directory!r} differ in size: {paths[0]!r} is {images[0].shape} but "
                f"{path!r} is {pixels.shape}; resize them all to one size"
            )
        images.append(pixels)
    labels = None
    if not top_level:
        labels = np.concatenate(
            [np.full(len(files), index) for index, files in enumerate(class_files.values())]
        )
    num_classes = None if labels is None else len(class_files)
    return ImageSet(images=np.stack(images), labels=labels, num_classes=num_classes, name=directory)
