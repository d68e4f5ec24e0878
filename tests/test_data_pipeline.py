"""to_dataset: dtype, range, batching, labels and seeded reshuffling of the tf.data pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from vqgen.data import ImageSet, to_dataset


def indexed_set(count, labelled=True):
    """An ImageSet whose image i is filled with the value i, optionally labelled 7 * i mod 11."""
    pixels = np.repeat(np.arange(count, dtype=np.uint8), 6).reshape(count, 2, 3, 1)
    labels = (np.arange(count) * 7) % 11 if labelled else None
    return ImageSet(pixels, labels, 11 if labelled else None, "indexed")


def epoch_ids(dataset):
    """The image ids (pixel value * 255) in the order one pass over `dataset` yields them."""
    ids = [np.rint(batch[:, 0, 0, 0].numpy() * 255).astype(int) for batch in dataset]
    return np.concatenate(ids)


def test_batches_are_float_unit_range_in_source_order():
    pixels = np.random.default_rng(0).integers(0, 256, size=(10, 3, 3, 3)).astype(np.uint8)
    batches = list(to_dataset(ImageSet(pixels, None, None, "random"), batch_size=4))
    assert [tuple(batch.shape) for batch in batches] == [(4, 3, 3, 3), (4, 3, 3, 3), (2, 3, 3, 3)]
    assert all(batch.dtype == tf.float32 for batch in batches)
    served = np.concatenate([batch.numpy() for batch in batches])
    np.testing.assert_allclose(served, pixels.astype(np.float64) / 255.0, rtol=0, atol=1e-7)


def test_float_images_pass_through_unchanged():
    pixels = np.random.default_rng(1).random((5, 2, 2, 1)).astype(np.float32)
    served = np.concatenate(list(to_dataset(ImageSet(pixels, None, None, "floats"), 2)))
    np.testing.assert_array_equal(served, pixels)


def test_labels_stay_paired_with_their_images_when_shuffled():
    images = indexed_set(23)
    for batch_images, batch_labels in to_dataset(images, 5, shuffle=True, seed=1, with_labels=True):
        ids = np.rint(batch_images[:, 0, 0, 0].numpy() * 255).astype(int)
        assert batch_labels.dtype == tf.int32
        np.testing.assert_array_equal(batch_labels.numpy(), (ids * 7) % 11)


def test_seeded_shuffle_is_reproducible_and_reshuffles_each_epoch():
    images = indexed_set(40, labelled=False)
    first = to_dataset(images, 8, shuffle=True, seed=5)
    second = to_dataset(images, 8, shuffle=True, seed=5)
    first_epochs = [epoch_ids(first) for _ in range(2)]
    second_epochs = [epoch_ids(second) for _ in range(2)]
    for epoch in first_epochs:
        assert sorted(epoch) == list(range(40))  # a permutation: nothing lost or repeated
    assert not np.array_equal(first_epochs[0], np.arange(40))
    assert not np.array_equal(first_epochs[0], first_epochs[1])  # reshuffled per epoch
    for a, b in zip(first_epochs, second_epochs):
        np.testing.assert_array_equal(a, b)  # same seed, same sequence of orders
    other = epoch_ids(to_dataset(images, 8, shuffle=True, seed=6))
    assert not np.array_equal(other, first_epochs[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size must be"),
        ({"batch_size": True}, "batch_size must be"),
        ({"batch_size": 2.0}, "batch_size must be"),
        ({"batch_size": 2, "seed": -3}, "seed must be"),
        ({"batch_size": 2, "with_labels": True}, "has no labels"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        to_dataset(indexed_set(4, labelled=False), **kwargs)


def test_empty_set_and_wrong_type_raise():
    empty = ImageSet(np.zeros((0, 2, 2, 1), np.uint8), None, None, "empty")
    with pytest.raises(ValueError, match="is empty"):
        to_dataset(empty, 2)
    with pytest.raises(ValueError, match="needs an ImageSet"):
        to_dataset(np.zeros((4, 2, 2, 1)), 2)
