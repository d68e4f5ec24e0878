"""`stream_images`: a source string as an `ImageStream` read lazily (folders, `.npy`, TFDS)."""

import os

import numpy as np
import tensorflow as tf

from vqgen.data.image_conversion import common_image_shape, image_transform
from vqgen.data.image_header import (
    check_decodable,
    check_max_image_pixels,
    decode_within_limit,
    read_image_header,
)
from vqgen.data.image_set import ImageSet
from vqgen.data.image_stream import ImageStream
from vqgen.data.sources import load_images
from vqgen.data.tfds_source import TFDS_PREFIX, stream_tfds
from vqgen.data.tfrecord_source import is_tfrecord_source, stream_tfrecords
from vqgen.settings import DATA_DEFAULTS
from vqgen.storage import folder_names, is_remote

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# Listing a folder of more files than this shows a progress bar.
PROGRESS_FROM = 2000


def check_conversion_options(image_size, channels):
    """Returns `image_size` as `(H, W)` (or None) after checking it and `channels`, or raises ValueError."""
    if channels is not None and channels not in (1, 3):
        raise ValueError(
            f"channels must be 1 (gray) or 3 (RGB), or None to keep them. Received: channels={channels!r}"
        )
    if image_size is None:
        return None
    sizes = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(sizes) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise ValueError(f"image_size must be a positive int or (H, W). Received: image_size={image_size!r}")
    return tuple(int(s) for s in sizes)


def _image_files(directory):
    """Sorted names of the image files directly inside `directory` (any `tf.io.gfile` path)."""
    return [
        name
        for name in sorted(folder_names(directory))
        if name.lower().endswith(IMAGE_EXTENSIONS) and not tf.io.gfile.isdir(os.path.join(directory, name))
    ]


def list_image_folder(directory):
    """Lists a folder once: relative paths (sorted) and class labels from its sub-folders.

    Images directly in `directory` and in its immediate sub-folders are listed. When every image lies
    in a sub-folder, the sub-folders are classes: label `i` is the `i`-th sub-folder by name. Hidden
    sub-folders (`.name`) are ignored.

    Returns:
        `(relative paths, labels int32 [N] or None, class names)`.

    Raises:
        ValueError: no images, or a class sub-folder without images.
    """
    top_level = _image_files(directory)
    folders = [
        name
        for name in sorted(folder_names(directory))
        if not name.startswith(".") and tf.io.gfile.isdir(os.path.join(directory, name))
    ]
    class_files = {name: _image_files(os.path.join(directory, name)) for name in folders}
    paths = top_level + [f"{name}/{file}" for name, files in class_files.items() for file in files]
    if not paths:
        raise ValueError(
            f"folder {directory!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in itself or "
            f"its sub-folders; add images or point the source at another folder"
        )
    if top_level:
        return paths, None, []
    empty = [name for name, files in class_files.items() if not files]
    if empty:
        raise ValueError(
            f"class folder {os.path.join(directory, empty[0])!r} holds no images; add images to it or "
            f"remove it (each sub-folder of {directory!r} is a class)"
        )
    labels = np.concatenate(
        [np.full(len(files), index, np.int32) for index, files in enumerate(class_files.values())]
    )
    return paths, labels, list(class_files)


def _read_headers(directory, paths, max_pixels, verbose):
    """Reads every file's header (not its pixels): `(sizes [N, 2], Pillow modes)`, or raises ValueError."""
    import keras

    progress = (
        keras.utils.Progbar(len(paths), unit_name="file") if verbose and len(paths) > PROGRESS_FROM else None
    )
    if progress is not None:
        print(f"Listing {len(paths):,} images in {directory}")
    sizes = np.zeros((len(paths), 2), np.int64)
    modes = []
    for index, path in enumerate(paths):
        full_path = os.path.join(directory, path)
        header = read_image_header(full_path, full_path, max_pixels)
        check_decodable(header, full_path)
        sizes[index] = header.height, header.width
        modes.append(header.mode)
        if progress is not None and (index + 1) % 500 == 0 and index + 1 < len(paths):
            progress.update(index + 1)
    if progress is not None:
        progress.update(len(paths), finalize=True)
    return sizes, modes


def stream_image_folder(
    directory, image_size=None, channels=None, verbose=1, max_image_pixels=DATA_DEFAULTS.max_image_pixels
):
    """A folder of images as an `ImageStream`: listed once, decoded in the pipeline.

    Each file's header is read once (with a progress bar for large folders) to check that it is an
    image TensorFlow decodes of at most `max_image_pixels` pixels and to learn its size and whether
    it has colour; the pixels are decoded only inside `tf.data`, batch by batch, after the header's
    pixel count is checked again there (`decode_within_limit`: a file replaced since the listing is
    not decoded at full size either). Formats: PNG, JPEG, BMP, GIF (first frame) and WebP, in
    one folder at once; gray, gray+alpha, palette, RGB and RGBA images are converted to the set's
    channels (see `vqgen.data.image_conversion.convert_channels`).

    Args:
        directory: str. The folder.
        image_size: `(H, W)` or None. Scale and centre-crop every image to it; None requires one size.
        channels: 1, 3 or None (`set_channels`: 3 if any image has colour, else 1).
        verbose: int. 0 hides the listing's progress bar.
        max_image_pixels: int >= 1. The largest height x width of an image. Defaults to the
            `DataSettings` value.

    Returns:
        An `ImageStream`.

    Raises:
        ValueError: no images, an empty class folder, a file that is not a decodable image or has
            more than `max_image_pixels` pixels (named), or mixed sizes without `image_size` (the
            message suggests it).
    """
    max_image_pixels = check_max_image_pixels(max_image_pixels)
    paths, labels, class_names = list_image_folder(directory)
    sizes, modes = _read_headers(directory, paths, max_image_pixels, verbose)
    image_shape = common_image_shape(directory, paths, sizes, modes, image_size, channels)
    transform = image_transform(image_shape, image_size)
    full_paths = np.array([os.path.join(directory, path) for path in paths])
    file_paths = tf.constant(full_paths)

    def read_element(position):
        path = tf.gather(file_paths, position)
        return transform(decode_within_limit(tf.io.read_file(path), path, max_image_pixels))

    return ImageStream(
        directory,
        image_shape,
        len(class_names) if labels is not None else None,
        len(paths),
        positions=np.arange(len(paths), dtype=np.int64),
        read_element=read_element,
        labels=labels,
        keys=lambda positions: [paths[p] for p in positions],
        files=full_paths,
    )


def stream_array_file(path, image_size=None, channels=None):
    """A uint8 `.npy` file memory-mapped as an `ImageStream` (rows read as needed).

    Only uint8 arrays `[N, H, W]` or `[N, H, W, C]` (C 1 or 3) are mapped; float `.npy` files and
    `.npz` archives (which cannot be mapped) are loaded into memory by `load_images`.

    Returns:
        An `ImageStream`, or None when the file is not a mappable uint8 array.
    """
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None  # load_images reports the problem with its usual message
    if (
        array.dtype != np.uint8
        or array.ndim not in (3, 4)
        or (array.ndim == 4 and array.shape[3] not in (1, 3))
    ):
        return None
    if array.ndim == 3:
        array = array[..., np.newaxis]
    count, height, width, depth = array.shape
    if image_size is not None:
        height, width = image_size
    image_shape = (height, width, channels or depth)
    transform = image_transform(image_shape, image_size)

    def read_row(position):
        return np.asarray(array[int(position)])

    def read_element(position):
        pixels = tf.numpy_function(read_row, [position], tf.uint8, stateful=False)
        return transform(tf.ensure_shape(pixels, array.shape[1:]))

    return ImageStream(
        path,
        image_shape,
        None,
        count,
        positions=np.arange(count, dtype=np.int64),
        read_element=read_element,
        keys=lambda positions: [str(p) for p in positions],
    )


def _converted_image_set(images, image_size, channels):
    """An in-memory ImageSet with `image_size`/`channels` applied (small sets only)."""
    if image_size is None and (channels is None or channels == images.image_shape[2]):
        return images
    height, width = image_size or images.image_shape[:2]
    image_shape = (height, width, channels or images.image_shape[2])
    transform = image_transform(image_shape, image_size)
    pixels = images.images
    if pixels.dtype != np.uint8:
        pixels = np.rint(pixels * 255).astype(np.uint8)
    converted = tf.data.Dataset.from_tensor_slices(pixels).map(transform).batch(1024)
    return ImageSet(
        np.concatenate([batch.numpy() for batch in converted]), images.labels, images.num_classes, images.name
    )


def stream_images(
    source,
    data_dir=None,
    split="train",
    image_size=None,
    channels=None,
    shuffle_buffer=10000,
    verbose=1,
    max_image_pixels=DATA_DEFAULTS.max_image_pixels,
    tfrecord_image_key=DATA_DEFAULTS.tfrecord_image_key,
    tfrecord_label_key=DATA_DEFAULTS.tfrecord_label_key,
):
    """Opens an image source as an `ImageStream`, reading lazily where the source allows it.

    Paths may be local or any URL `tf.io.gfile` reads (`gs://`, `s3://` with its plugin, `hdfs://`,
    `ram://`); see `vqgen.storage`.

    - a folder of images: streamed (see `stream_image_folder`);
    - TFRecord files (a glob whose last part holds `.tfrecord`): streamed (see
      `vqgen.data.tfrecord_source.stream_tfrecords`);
    - a local uint8 `.npy` file: memory-mapped (a remote one is loaded into memory);
    - `"tfds:NAME"`: streamed from TFDS's own files with `as_dataset` (see
      `vqgen.data.tfds_source.stream_tfds`), shuffled through a buffer of `shuffle_buffer` images;
    - everything else `load_images` accepts (the embedded digits and photos, idx folders, `.npz`,
      float `.npy`): loaded into memory as before (they are small or cannot be mapped).

    Args:
        source: str. Any source `load_images` accepts.
        data_dir: str or None. TFDS data folder.
        split: str. As for `load_images`.
        image_size: int, `(H, W)` or None. Scale (aspect ratio kept) and centre-crop every image.
        channels: 1, 3 or None. Convert every image to gray or RGB (alpha composited on white).
        shuffle_buffer: int. Images in the shuffle buffer of a TFDS or TFRecord source.
        verbose: int. 0 hides progress bars.
        max_image_pixels: int >= 1. The largest height x width of an encoded image (image folders,
            TFDS, TFRecords), checked in its header before it is decoded. Defaults to the
            `DataSettings` value.
        tfrecord_image_key: str. The feature of a TFRecord source holding the encoded image.
        tfrecord_label_key: str. The feature of a TFRecord source holding the integer label.

    Returns:
        An `ImageStream`.

    Raises:
        FileNotFoundError / ValueError: as `load_images`, plus the folder errors of
            `stream_image_folder` and bad `image_size`/`channels`.

    Example:
    >>> stream = stream_images("faces/", image_size=(64, 64), channels=3)
    >>> stream.image_shape
    (64, 64, 3)
    """
    image_size = check_conversion_options(image_size, channels)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    stream = None
    if isinstance(source, str) and source.startswith(TFDS_PREFIX) and source[len(TFDS_PREFIX) :]:
        stream = stream_tfds(
            source[len(TFDS_PREFIX) :],
            data_dir,
            split,
            image_size,
            channels,
            shuffle_buffer,
            max_image_pixels,
        )
        stream.name = source
    elif is_tfrecord_source(source) and data_dir is None and split == "train":
        stream = stream_tfrecords(
            os.path.expanduser(source),
            image_size,
            channels,
            shuffle_buffer,
            verbose,
            max_image_pixels,
            tfrecord_image_key,
            tfrecord_label_key,
        )
    elif isinstance(source, str) and data_dir is None and split == "train":
        path = os.path.expanduser(source)
        is_folder = tf.io.gfile.isdir(path)
        if is_folder and not any("-idx3-ubyte" in name for name in folder_names(path)):
            stream = stream_image_folder(path, image_size, channels, verbose, max_image_pixels)
        elif not is_folder and path.lower().endswith(".npy") and not is_remote(path) and os.path.isfile(path):
            stream = stream_array_file(path, image_size, channels)
    if stream is None:
        loaded = load_images(source, data_dir=data_dir, split=split, max_image_pixels=max_image_pixels)
        return ImageStream.from_image_set(_converted_image_set(loaded, image_size, channels))
    if len(stream) == 0:
        raise ValueError(f"source {source!r} holds no images; use a non-empty dataset")
    return stream
