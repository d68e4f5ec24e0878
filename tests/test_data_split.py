"""split_images: sizes, disjointness, determinism and label bookkeeping."""

import numpy as np
import pytest

from vqgen.data import ImageSet, load_images, split_images


def indexed_set(count):
    """An ImageSet whose image i is filled with the value i and labelled i % 4."""
    pixels = np.repeat(np.arange(count, dtype=np.uint8), 4).reshape(count, 2, 2, 1)
    return ImageSet(pixels, np.arange(count) % 4, 4, "indexed")


def image_ids(images):
    return images.images[:, 0, 0, 0].astype(int)


def test_split_is_a_disjoint_cover_with_labels_following_images():
    full = indexed_set(50)
    train, validation = split_images(full, validation_fraction=0.2, seed=3)
    assert (len(train), len(validation)) == (40, 10)
    ids = np.concatenate([image_ids(train), image_ids(validation)])
    assert sorted(ids) == list(range(50))  # every image exactly once
    for part in (train, validation):
        np.testing.assert_array_equal(part.labels, image_ids(part) % 4)
        assert part.num_classes == 4 and part.name == "indexed"
    assert not np.array_equal(image_ids(validation), np.arange(10))  # shuffled, not a prefix


def test_split_is_deterministic_per_seed():
    full = indexed_set(50)
    first = [image_ids(part) for part in split_images(full, 0.2, seed=7)]
    again = [image_ids(part) for part in split_images(full, 0.2, seed=7)]
    other = [image_ids(part) for part in split_images(full, 0.2, seed=8)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_zero_and_tiny_fractions():
    full = indexed_set(5)
    train, validation = split_images(full, validation_fraction=0.0)
    assert len(train) == 5 and len(validation) == 0
    train, validation = split_images(full, validation_fraction=0.01)
    assert len(train) == 4 and len(validation) == 1


@pytest.mark.parametrize(
    "fraction, seed, message",
    [
        (1.0, 0, "validation_fraction must be"),
        (-0.1, 0, "validation_fraction must be"),
        (float("nan"), 0, "validation_fraction must be"),
        (True, 0, "validation_fraction must be"),
        ("0.1", 0, "validation_fraction must be"),
        (0.1, -1, "seed must be"),
        (0.1, 1.5, "seed must be"),
    ],
)
def test_bad_arguments_raise(fraction, seed, message):
    with pytest.raises(ValueError, match=message):
        split_images(indexed_set(10), validation_fraction=fraction, seed=seed)


def test_too_few_images_and_wrong_type_raise():
    with pytest.raises(ValueError, match="leaves no training images"):
        split_images(indexed_set(1), validation_fraction=0.5)
    with pytest.raises(ValueError, match="needs an ImageSet"):
        split_images(np.zeros((4, 2, 2, 1)))


def test_digits_validation_part_covers_every_class():
    # The embedded digits come sorted by class; an unshuffled tail would be all nines.
    train, validation = split_images(load_images("digits"), validation_fraction=0.1, seed=0)
    assert (len(train), len(validation)) == (4500, 500)
    assert set(validation.labels.tolist()) == set(range(10))
