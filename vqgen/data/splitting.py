"""Deterministic train/validation splitting of an ImageSet."""

import numpy as np

from vqgen.data.image_set import ImageSet


def _subset(images, indices):
    """Returns the images (and labels) of `images` at `indices`, keeping name and num_classes."""
    return ImageSet(
        images=images.images[indices],
        labels=None if images.labels is None else images.labels[indices],
        num_classes=images.num_classes,
        name=images.name,
    )


def split_images(images, validation_fraction=0.1, seed=0):
    """Splits an ImageSet into disjoint training and validation parts after a seeded shuffle.

    The images are permuted with `np.random.default_rng(seed)` (so the split is the same on every
    run and machine for a given seed) and the first `round(N * validation_fraction)` - at least
    one when the fraction is positive - become the validation part. The shuffle matters: sources
    such as `"digits"` come sorted by class. Both parts keep the source's `name` and
    `num_classes`.

    Args:
        images: `ImageSet` to split.
        validation_fraction: float in [0, 1). Share of images held out; 0 gives an empty
            validation part. Defaults to `0.1`.
        seed: int >= 0. Seed of the shuffle. Defaults to `0`.

    Returns:
        `(train, validation)`: two `ImageSet`s that together hold every image exactly once.

    Raises:
        ValueError: if `images` is not an `ImageSet`, the fraction is outside [0, 1) or would leave
            no training image, or the seed is not a non-negative int.

    Example:
    >>> train, validation = split_images(load_images("digits"), validation_fraction=0.1)
    >>> len(train), len(validation)
    (4500, 500)
    """
    if not isinstance(images, ImageSet):
        raise ValueError(
            f"split_images needs an ImageSet (from load_images). Received: images={type(images).__name__}"
        )
    if (
        isinstance(validation_fraction, bool)
        or not isinstance(validation_fraction, (int, float))
        or not 0.0 <= validation_fraction < 1.0
    ):
        raise ValueError(
            f"validation_fraction must be a number in [0, 1). "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0. Received: seed={seed!r}")
    count = len(images)
    validation_count = round(count * validation_fraction)
    if validation_fraction > 0:
        validation_count = max(1, validation_count)
    if validation_count >= count:
        raise ValueError(
            f"validation_fraction={validation_fraction} of {count} images leaves no training "
            f"images; lower the fraction or load more images"
        )
    order = np.random.default_rng(seed).permutation(count)
    return _subset(images, order[validation_count:]), _subset(images, order[:validation_count])
