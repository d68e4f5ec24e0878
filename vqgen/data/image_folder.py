"""Reading a folder of image files (optionally one sub-folder per class) into an ImageSet."""

import os

import numpy as np
import tensorflow as tf

from vqgen.data.image_conversion import image_transform, set_channels
from vqgen.data.image_header import check_max_image_pixels, read_image_header
from vqgen.data.image_set import ImageSet
from vqgen.settings import DATA_DEFAULTS
from vqgen.storage import folder_names, open_file

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _image_files(directory):
    """Returns the sorted paths of the image files directly inside `directory`."""
    names = sorted(folder_names(directory))
    return [
        os.path.join(directory, name)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS) and not tf.io.gfile.isdir(os.path.join(directory, name))
    ]


def decode_image_file(path, max_pixels=DATA_DEFAULTS.max_image_pixels):
    """Reads one image file (PNG, JPEG, BMP, GIF: first frame) as it is stored.

    The header is read first and an image of more than `max_pixels` pixels is refused undecoded.

    Args:
        path: str, the file.
        max_pixels: int >= 1. The largest height x width accepted.

    Returns:
        uint8 array `[H, W, C]`, C the file's own channels (1 to 4).

    Raises:
        OSError: the file cannot be read.
        ValueError: one line naming the file: it has more than `max_pixels` pixels, or its bytes
            are not an image TensorFlow can decode.

    Example:
    >>> decode_image_file("digit.png").shape  # doctest: +SKIP
    (28, 28, 1)
    """
    read_image_header(path, path, max_pixels)
    with open_file(path) as stream:
        data = stream.read()
    try:
        pixels = tf.io.decode_image(data, dtype=tf.uint8, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        raise ValueError(
            f"cannot decode {path!r} as PNG/JPEG/BMP/GIF; the file is corrupt or mislabelled, "
            f"re-save or remove it"
        ) from None
    return pixels.numpy()


def load_image_folder(directory, max_image_pixels=DATA_DEFAULTS.max_image_pixels):
    """Loads every image of a folder into an ImageSet, labelled by class sub-folder if any.

    Image files (extensions .png, .jpg, .jpeg, .bmp, .gif, any case) are read from `directory`
    itself and from its immediate sub-folders, in sorted order. Every file's header is read first
    (its size and mode, no pixels): a file that is not an image, an image of more than
    `max_image_pixels` pixels, or sizes that differ stop the load before anything is decoded. The
    images are then decoded with `tf.io.decode_image` (the first frame of an animated GIF) and
    converted to the set's channels by the rule of the streamed reader
    (`vqgen.data.image_conversion.set_channels`, `convert_channels`): gray when no file has colour,
    else RGB, alpha composited on white. If every image lies in a sub-folder, the sub-folders are
    classes: label `i` is the `i`-th sub-folder (sorted by name) that holds images. Otherwise the set
    has no labels. Other files are ignored.

    Args:
        directory: str. The folder to read.
        max_image_pixels: int >= 1. The largest height x width of an image. Defaults to the
            `DataSettings` value.

    Returns:
        An `ImageSet` of uint8 `[N, H, W, C]` images, C 1 or 3.

    Raises:
        ValueError: one line: the folder holds no image files, a file cannot be decoded or has more
            than `max_image_pixels` pixels (naming it), or the images differ in size.

    Example:
    >>> pets = load_image_folder("photos")  # photos/cat/*.png, photos/dog/*.png
    >>> pets.num_classes
    2
    """
    max_image_pixels = check_max_image_pixels(max_image_pixels)
    top_level = _image_files(directory)
    class_files = {}
    for name in sorted(folder_names(directory)):
        sub_directory = os.path.join(directory, name)
        files = _image_files(sub_directory) if tf.io.gfile.isdir(sub_directory) else []
        if files:
            class_files[name] = files
    paths = top_level + [path for files in class_files.values() for path in files]
    if not paths:
        raise ValueError(
            f"folder {directory!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in itself or "
            f"its sub-folders; add images or point the source at another folder"
        )
    headers = [read_image_header(path, path, max_image_pixels) for path in paths]
    sizes = [(header.height, header.width) for header in headers]
    for path, size in zip(paths, sizes):
        if size != sizes[0]:
            raise ValueError(
                f"images in {directory!r} differ in size: {paths[0]!r} is {sizes[0][0]}x{sizes[0][1]} but "
                f"{path!r} is {size[0]}x{size[1]}; resize them all to one size"
            )
    image_shape = (*sizes[0], set_channels(header.mode for header in headers))
    transform = image_transform(image_shape, None)
    images = []
    for path in paths:
        pixels = decode_image_file(path, max_image_pixels)
        images.append(pixels if pixels.shape == image_shape else transform(tf.constant(pixels)).numpy())
    labels = None
    if not top_level:
        labels = np.concatenate(
            [np.full(len(files), index) for index, files in enumerate(class_files.values())]
        )
    num_classes = None if labels is None else len(class_files)
    return ImageSet(images=np.stack(images), labels=labels, num_classes=num_classes, name=directory)
