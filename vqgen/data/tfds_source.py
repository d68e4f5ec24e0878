"""Loading a TensorFlow Datasets image dataset into memory as an ImageSet."""

import numpy as np
import tensorflow as tf

from vqgen.data.error_text import first_line
from vqgen.data.image_header import decode_within_limit
from vqgen.data.image_set import ImageSet
from vqgen.settings import DATA_DEFAULTS

TFDS_PREFIX = "tfds:"
# Examples per batch when copying a TFDS split into NumPy (bounded memory per step, few steps).
READ_BATCH_SIZE = 4096
LOCAL_SOURCES_HINT = (
    "use a local source instead: 'digits', a directory of MNIST idx .gz files, a folder of "
    "images, or an .npz/.npy file"
)


def _check_split(name, split, known_splits):
    """Raises ValueError if `split` names a split the dataset does not have (when known)."""
    if not known_splits:
        return
    parts = [part.split("[")[0].strip() for part in split.split("+")]
    unknown = [part for part in parts if part not in known_splits and part != "all"]
    if unknown:
        raise ValueError(
            f"TFDS dataset {name!r} has no split {unknown[0]!r}; use one of "
            f"{sorted(known_splits)}. Received: split={split!r}"
        )


def _prepared_builder(name, data_dir, split, image_size=None):
    """The TFDS builder of `name`, checked and prepared (downloaded if it can be); else ValueError."""
    import tensorflow_datasets as tfds  # imported only when a tfds: source is asked for

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise ValueError(
            f"TFDS has no dataset named {name!r}; pick one from tfds.list_builders() (e.g. "
            f"'tfds:mnist') or {LOCAL_SOURCES_HINT}"
        ) from None
    except (ValueError, AssertionError) as error:
        raise ValueError(
            f"cannot build TFDS dataset {name!r} ({first_line(error)}); use the form "
            f"tfds:NAME[/CONFIG][:VERSION]"
        ) from None
    features = builder.info.features
    if "image" not in features or (image_size is None and None in features["image"].shape):
        raise ValueError(
            f"TFDS dataset {name!r} has no fixed-size 'image' feature (features: "
            f"{sorted(features.keys())}); use an image dataset such as tfds:mnist or tfds:cifar10, or pass "
            f"--image-size H[xW] to scale and crop its images to one size"
        )
    _check_split(name, split, builder.info.splits)
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as error:  # network, mirror and dependency failures vary widely
            raise ValueError(
                f"TFDS dataset {name!r} is not prepared in data_dir={data_dir!r} and cannot be "
                f"downloaded here ({type(error).__name__}: {first_line(error)}); prepare it on a "
                f"machine with internet and pass its data_dir, or {LOCAL_SOURCES_HINT}"
            ) from error
    return builder


def _examples(builder, name, split, max_image_pixels):
    """The split's examples in stored order, numbered, each `"image"` decoded under the pixel limit.

    TFDS stores an `Image` feature as encoded PNG/JPEG bytes; they are read undecoded
    (`SkipDecoding`) and decoded by `decode_within_limit`, so an image of more than
    `max_image_pixels` pixels fails the pipeline naming its example, without being decoded. Other
    image features are decoded by TFDS.

    Returns:
        A Dataset of `(position, example)`.
    """
    import tensorflow_datasets as tfds

    feature = builder.info.features["image"]
    if not isinstance(feature, tfds.features.Image) or feature.dtype != tf.uint8:
        return builder.as_dataset(split=split, shuffle_files=False).enumerate()
    examples = builder.as_dataset(
        split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
    ).enumerate()
    depth = feature.shape[-1] or 0  # as TFDS decodes it: the feature's channels (0: the file's own)

    def decoded(position, example):
        label = tf.strings.join(["example ", tf.strings.as_string(position), f" of {TFDS_PREFIX}{name}"])
        image = decode_within_limit(example["image"], label, max_image_pixels, channels=depth)
        return position, {**example, "image": tf.ensure_shape(image, feature.shape)}

    return examples.map(decoded, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def load_tfds(name, data_dir=None, split="train", max_image_pixels=DATA_DEFAULTS.max_image_pixels):
    """Loads a TFDS image dataset split fully into memory as an ImageSet.

    Builds the dataset with `tfds.builder(name, data_dir=data_dir)` (what `tfds.load` does),
    downloads and prepares it if it is not yet in `data_dir`, and copies the `"image"` feature
    (and the `"label"` feature, if it is a class label) into NumPy arrays; `num_classes` comes
    from the dataset info. Meant for small datasets such as `mnist`, `fashion_mnist` and
    `cifar10`, whose images all have one size.

    Args:
        name: str. A TFDS name, `NAME[/CONFIG][:VERSION]`, e.g. `"mnist"` or `"cifar10:3.0.2"`.
        data_dir: str or None. Where TFDS keeps prepared data; None uses TFDS's default
            (`~/tensorflow_datasets`).
        split: str. A TFDS split expression, e.g. `"train"`, `"test"`, `"train[:10%]"`.
        max_image_pixels: int >= 1. The largest height x width of an image, checked in its encoded
            header before it is decoded. Defaults to the `DataSettings` value.

    Returns:
        An `ImageSet` of uint8 images named `"tfds:NAME"`.

    Raises:
        ValueError: for an unknown dataset or split, a dataset without a fixed-size `"image"`
            feature, or a dataset that is not in `data_dir` and cannot be downloaded here.

    Example:
    >>> cifar = load_tfds("cifar10", data_dir="/data/tfds", split="test")
    >>> cifar.image_shape, cifar.num_classes
    ((32, 32, 3), 10)
    """
    import tensorflow_datasets as tfds  # imported only when a tfds: source is asked for

    builder = _prepared_builder(name, data_dir, split)
    features = builder.info.features
    label = features["label"] if "label" in features else None
    has_labels = isinstance(label, tfds.features.ClassLabel)
    keys = ("image", "label") if has_labels else ("image",)
    examples = _examples(builder, name, split, max_image_pixels)
    examples = examples.map(lambda position, example: tuple(example[key] for key in keys))
    batches = list(tfds.as_numpy(examples.batch(READ_BATCH_SIZE)))
    if not batches:
        raise ValueError(f"TFDS split {split!r} of {name!r} holds no examples; choose a non-empty split")
    arrays = [np.concatenate([batch[index] for batch in batches]) for index in range(len(keys))]
    return ImageSet(
        images=arrays[0],
        labels=arrays[1] if has_labels else None,
        num_classes=label.num_classes if has_labels else None,
        name=TFDS_PREFIX + name,
    )


def stream_tfds(
    name,
    data_dir=None,
    split="train",
    image_size=None,
    channels=None,
    shuffle_buffer=10000,
    max_image_pixels=DATA_DEFAULTS.max_image_pixels,
):
    """A TFDS split as an `ImageStream`, read from TFDS's files with `as_dataset` (no NumPy copy).

    The examples are read in the order TFDS stores them (`shuffle_files=False`), numbered, and
    converted in the pipeline (`image_size`, `channels`); the stream's split into train and
    validation keeps an example by a seeded hash of its number. The number of examples comes from
    the dataset info, or from one pass over the split that skips decoding the images when TFDS
    allows it.

    Args:
        name: str. A TFDS name, as for `load_tfds`.
        data_dir: str or None. TFDS data folder.
        split: str. A TFDS split expression.
        image_size: `(H, W)` or None. Scale and centre-crop; required for datasets of mixed sizes.
        channels: 1, 3 or None (the dataset's own).
        shuffle_buffer: int. Images held for shuffling (the split is read in order).
        max_image_pixels: int >= 1. The largest height x width of an image, checked in its encoded
            header before it is decoded (see `load_tfds`).

    Returns:
        An `ImageStream`.

    Raises:
        ValueError: as `load_tfds`, or an empty split.
    """
    import tensorflow_datasets as tfds  # imported only when a tfds: source is asked for

    from vqgen.data.image_conversion import image_transform
    from vqgen.data.image_stream import ImageStream

    builder = _prepared_builder(name, data_dir, split, image_size)
    features = builder.info.features
    label = features["label"] if "label" in features else None
    has_labels = isinstance(label, tfds.features.ClassLabel)
    height, width, depth = features["image"].shape
    if image_size is not None:
        height, width = image_size
    image_shape = (height, width, channels or depth)
    transform = image_transform(image_shape, image_size)
    count = _example_count(builder, split)
    if count == 0:
        raise ValueError(f"TFDS split {split!r} of {name!r} holds no examples; choose a non-empty split")

    def sequence(positions, order):  # read whole, in order: ImageStream keeps `positions`
        return _examples(builder, name, split, max_image_pixels).map(
            lambda position, example: (
                position,
                transform(example["image"]),
                tf.cast(example["label"], tf.int32) if has_labels else tf.constant(0, tf.int32),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    return ImageStream(
        TFDS_PREFIX + name,
        image_shape,
        label.num_classes if has_labels else None,
        count,
        positions=np.arange(count, dtype=np.int64),
        keys=lambda positions: [str(p) for p in positions],
        sequence=sequence,
        shuffle_buffer=shuffle_buffer,
    )


def _example_count(builder, split):
    """Examples in `split`: from the dataset info when it knows, else by one pass without decoding."""
    try:
        count = builder.info.splits[split].num_examples
    except (KeyError, ValueError, TypeError, AttributeError):
        count = 0
    if count:
        return int(count)
    import tensorflow_datasets as tfds

    try:
        examples = builder.as_dataset(
            split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
        )
    except (TypeError, ValueError):
        examples = builder.as_dataset(split=split, shuffle_files=False)
    return int(examples.reduce(np.int64(0), lambda total, _: total + 1).numpy())
