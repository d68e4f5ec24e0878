"""Loading a TensorFlow Datasets image dataset into memory as an ImageSet."""

import numpy as np

from vqgen.data.error_text import first_line
from vqgen.data.image_set import ImageSet

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


def load_tfds(name, data_dir=None, split="train"):
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
    if "image" not in features or None in features["image"].shape:
        raise ValueError(
            f"TFDS dataset {name!r} has no fixed-size 'image' feature (features: "
            f"{sorted(features.keys())}); use an image dataset such as tfds:mnist or tfds:cifar10"
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
    label = features["label"] if "label" in features else None
    has_labels = isinstance(label, tfds.features.ClassLabel)
    keys = ("image", "label") if has_labels else ("image",)
    examples = builder.as_dataset(split=split, shuffle_files=False)
    examples = examples.map(lambda example: tuple(example[key] for key in keys))
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
