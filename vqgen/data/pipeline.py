"""`to_dataset`: an ImageSet as a batched, cached, prefetched `tf.data.Dataset`."""

import numpy as np
import tensorflow as tf

from vqgen.data.image_set import ImageSet


def pixels_to_float(pixels):
    """Returns a batch of uint8 (0..255) or float32 (0..1) pixels as float32 in [0, 1].

    Args:
        pixels: uint8 or float32 tensor.

    Returns:
        float32 tensor of the same shape.
    """
    if pixels.dtype == tf.uint8:
        return tf.cast(pixels, tf.float32) / 255.0
    return pixels


def to_dataset(images, batch_size, shuffle=False, seed=None, with_labels=False):
    """Returns a `tf.data.Dataset` of float32 image batches (and labels) from an ImageSet.

    The pipeline is `from_tensor_slices -> cache -> shuffle (optional) -> batch -> map(to
    float32 / 255) -> prefetch(AUTOTUNE)`. The uint8 pixels are cached and shuffled (4x less
    memory than float32), and the conversion runs once per batch, vectorized, rather than once
    per image. The shuffle buffer holds the whole set (a uniform shuffle), reshuffles every epoch,
    and for a fixed `seed` gives the same sequence of epoch orders on every run. The last batch
    may be smaller than `batch_size`.

    Args:
        images: `ImageSet` to serve (must be non-empty).
        batch_size: int >= 1. Images per batch.
        shuffle: bool. Whether to shuffle the images. Defaults to `False` (source order).
        seed: int >= 0 or None. Shuffle seed; None gives a different order on every run.
        with_labels: bool. If True, elements are `(images, labels)`; requires labels.

    Returns:
        A `tf.data.Dataset` whose elements are float32 `[b, H, W, C]` batches in [0, 1], or
        `(images, labels)` pairs with int32 `[b]` labels when `with_labels=True`.

    Raises:
        ValueError: if `images` is not a non-empty `ImageSet`, `batch_size` or `seed` is invalid,
            or `with_labels=True` for a set without labels.

    Example:
    >>> batches = to_dataset(load_images("digits"), batch_size=32, shuffle=True, seed=0)
    >>> next(iter(batches)).shape
    TensorShape([32, 28, 28, 1])
    """
    if not isinstance(images, ImageSet):
        raise ValueError(
            f"to_dataset needs an ImageSet (from load_images). Received: images={type(images).__name__}"
        )
    if len(images) == 0:
        raise ValueError(
            f"ImageSet {images.name!r} is empty; nothing to serve (use a validation_fraction > 0 "
            f"or skip the empty set)"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1. Received: batch_size={batch_size!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be an int >= 0 or None. Received: seed={seed!r}")
    if with_labels and images.labels is None:
        raise ValueError(
            f"ImageSet {images.name!r} has no labels; pass with_labels=False or load a labelled source"
        )
    if with_labels:
        dataset = tf.data.Dataset.from_tensor_slices((images.images, images.labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices(images.images)
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(int(batch_size))
    if with_labels:
        dataset = dataset.map(lambda pixels, labels: (pixels_to_float(pixels), labels))
    else:
        dataset = dataset.map(pixels_to_float)
    return dataset.prefetch(tf.data.AUTOTUNE)


def epoch_batches(elements, batch_size, seed, first_epoch, epochs, transform=None):
    """Shuffled batches for epochs `first_epoch .. epochs-1`, each epoch's order set by `(seed, epoch)`.

    Unlike `Dataset.shuffle(reshuffle_each_iteration=True)`, whose sequence of orders restarts
    when a new pipeline is built, the order of epoch `e` here depends only on the seed and `e`:
    a training resumed at epoch `e` sees exactly the batches an uninterrupted one would have.

    Args:
        elements: array, or tuple/dict of arrays with the same first dimension N.
        batch_size: int >= 1. The last batch of an epoch may be smaller.
        seed: int. Shuffle seed.
        first_epoch: int. The first epoch to serve (0-based).
        epochs: int. One past the last epoch to serve.
        transform: optional function applied to every batch (e.g. uint8 pixels to float).

    Returns:
        `(dataset, steps_per_epoch)`: a `tf.data.Dataset` of exactly
        `(epochs - first_epoch) * steps_per_epoch` batches, for `fit(..., steps_per_epoch=...)`.

    Example:
    >>> data, steps = epoch_batches(codes, 64, seed=0, first_epoch=3, epochs=10)
    >>> model.fit(data, steps_per_epoch=steps, initial_epoch=3, epochs=10)  # doctest: +SKIP
    """
    tensors = tf.nest.map_structure(tf.constant, elements)
    count = int(tf.nest.flatten(tensors)[0].shape[0])
    steps_per_epoch = -(-count // int(batch_size))

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(int(batch_size))
            .map(lambda rows: tf.nest.map_structure(lambda t: tf.gather(t, rows), tensors))
        )

    dataset = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    if transform is not None:
        dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE), steps_per_epoch
