"""ImageSet validation/standardization and to_float_images, checked against NumPy arithmetic."""

import numpy as np
import pytest

from vqgen.data import ImageSet, to_float_images


def test_rank_three_images_gain_a_channel_axis_and_keep_their_pixels():
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    images = ImageSet(pixels, None, None, "arange")
    assert images.images.shape == (2, 3, 4, 1)
    assert images.image_shape == (3, 4, 1)
    assert len(images) == 2
    np.testing.assert_array_equal(images.images[..., 0], pixels)


def test_integer_and_float_arrays_are_standardized():
    integers = np.array([[[[0], [255]]], [[[7], [128]]]], dtype=np.int64)
    as_uint8 = ImageSet(integers, np.array([1, 0]), None, "ints")
    assert as_uint8.images.dtype == np.uint8
    np.testing.assert_array_equal(as_uint8.images, integers)
    assert as_uint8.labels.dtype == np.int32
    assert as_uint8.num_classes == 2  # inferred as max(label) + 1

    floats = np.linspace(0.0, 1.0, 2 * 5 * 5 * 3).reshape(2, 5, 5, 3)  # float64
    as_float32 = ImageSet(floats, None, None, "floats")
    assert as_float32.images.dtype == np.float32
    np.testing.assert_allclose(as_float32.images, floats, atol=1e-7)


def test_explicit_num_classes_is_kept_and_repr_is_short():
    images = ImageSet(np.zeros((3, 2, 2, 1), np.uint8), np.array([0, 1, 1]), 10, "zeros")
    assert images.num_classes == 10
    assert repr(images) == (
        "ImageSet(name='zeros', images=uint8[3, 2, 2, 1], labels=int32[3], num_classes=10)"
    )


@pytest.mark.parametrize(
    "pixels, message",
    [
        (np.zeros((4, 4), np.uint8), "shape"),
        (np.zeros((1, 2, 2, 1, 1), np.uint8), "shape"),
        (np.zeros((1, 2, 2, 2), np.uint8), "channels"),
        (np.zeros((1, 2, 2, 4), np.uint8), "channels"),
        (np.zeros((1, 0, 2, 1), np.uint8), "zero height or width"),
        (np.full((1, 2, 2, 1), np.nan, np.float32), "non-finite"),
        (np.full((1, 2, 2, 1), np.inf, np.float64), "non-finite"),
        (np.full((1, 2, 2, 1), 255.0, np.float32), r"outside \[0, 1\].*divide by 255"),
        (np.full((1, 2, 2, 1), -0.5, np.float32), r"outside \[0, 1\]"),
        (np.full((1, 2, 2, 1), 256, np.int32), "outside 0..255"),
        (np.zeros((1, 2, 2, 1), np.bool_), "dtype=bool"),
    ],
)
def test_bad_images_raise_one_line_value_errors(pixels, message):
    with pytest.raises(ValueError, match=message) as error:
        ImageSet(pixels, None, None, "bad")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "labels, num_classes, message",
    [
        (np.array([0, 1]), None, r"shape \[3\]"),
        (np.array([[0, 1, 2]]), None, r"shape \[3\]"),
        (np.array([0.0, 1.0, 2.0]), None, "integer class ids"),
        (np.array([0, -1, 2]), None, ">= 0"),
        (np.array([0, 1, 5]), 5, "< num_classes=5"),
        (np.array([0, 1, 1]), 0, "positive int"),
        (None, 10, "only meaningful with labels"),
    ],
)
def test_bad_labels_raise_value_errors(labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        ImageSet(np.zeros((3, 2, 2, 1), np.uint8), labels, num_classes, "bad")


def test_empty_name_is_refused():
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        ImageSet(np.zeros((1, 2, 2, 1), np.uint8), None, None, "")


def test_to_float_images_divides_uint8_by_255_and_passes_unit_floats():
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 4, 4, 1)).astype(np.uint8)
    converted = to_float_images(pixels)
    assert converted.dtype == np.float32
    np.testing.assert_allclose(converted, pixels.astype(np.float64) / 255.0, rtol=0, atol=1e-7)

    unit = np.array([0.0, 0.25, 1.0])
    np.testing.assert_array_equal(to_float_images(unit), unit.astype(np.float32))
    assert to_float_images(unit).dtype == np.float32


@pytest.mark.parametrize(
    "pixels, message",
    [
        (np.array([0.5, np.nan]), "non-finite"),
        (np.array([0.5, 1.5]), r"outside \[0, 1\]"),
        (np.array([1, 2], dtype=np.int64), "dtype=int64"),
    ],
)
def test_to_float_images_rejects_bad_pixels(pixels, message):
    with pytest.raises(ValueError, match=message):
        to_float_images(pixels)
