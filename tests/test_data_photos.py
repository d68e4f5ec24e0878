"""The embedded `photos` source: seeded crops equal the photographs' own pixels."""

import os

import numpy as np
import pytest

from vqgen.data import load_images
from vqgen.data.photos import (
    PHOTO_FILES,
    PHOTOS_CROPS_PER_PHOTO,
    crop_offsets,
    load_photos,
    parse_photos_source,
    photos_directory,
)

skimage_io = pytest.importorskip("skimage.io")


@pytest.fixture(scope="module")
def reference_photos():
    """The photographs decoded by scikit-image's own reader (imageio), RGB uint8."""
    return [skimage_io.imread(os.path.join(photos_directory(), name))[..., :3] for name, _ in PHOTO_FILES]


def test_crops_equal_source_pixels(reference_photos):
    images, labels, offsets = load_photos(size=32, crops_per_photo=3)
    assert images.shape == (3 * len(PHOTO_FILES), 32, 32, 3) and images.dtype == np.uint8
    for image, label, (index, top, left) in zip(images, labels, offsets):
        assert label == index
        np.testing.assert_array_equal(image, reference_photos[index][top : top + 32, left : left + 32])


def test_every_photo_is_rgb_and_large_enough(reference_photos):
    for (name, smallest_side), photo in zip(PHOTO_FILES, reference_photos):
        assert photo.ndim == 3 and photo.shape[2] == 3, name
        assert min(photo.shape[:2]) == smallest_side, name
        # A real colour photograph, not gray stored as RGB.
        assert np.abs(photo[..., 0].astype(int) - photo[..., 2]).mean() > 1.0, name


def test_offsets_are_seeded_and_cover_the_photo():
    shapes = [(131, 140), (135, 129)]
    first = crop_offsets(shapes, 128, crops_per_photo=200, seed=5)
    np.testing.assert_array_equal(first, crop_offsets(shapes, 128, crops_per_photo=200, seed=5))
    assert not np.array_equal(first, crop_offsets(shapes, 128, crops_per_photo=200, seed=6))
    for index, (height, width) in enumerate(shapes):
        mine = first[first[:, 0] == index]
        assert mine[:, 1].min() == 0 and mine[:, 1].max() == height - 128
        assert mine[:, 2].min() == 0 and mine[:, 2].max() == width - 128


def test_load_images_photos_default_and_sized():
    default = load_images("photos")
    assert default.image_shape == (128, 128, 3)
    assert len(default) == PHOTOS_CROPS_PER_PHOTO * len(PHOTO_FILES)
    assert default.num_classes == len(PHOTO_FILES) and default.name == "photos"
    assert np.bincount(default.labels).tolist() == [PHOTOS_CROPS_PER_PHOTO] * len(PHOTO_FILES)
    images, _, _ = load_photos(size=128)
    np.testing.assert_array_equal(default.images, images)
    small = load_images("photos:16")
    assert small.image_shape == (16, 16, 3) and small.name == "photos:16"


@pytest.mark.parametrize("source", ["photos:", "photos:7", "photos:301", "photos:12x12", "photos:-4"])
def test_bad_photos_sizes_are_refused(source):
    with pytest.raises(ValueError, match="photos:SIZE"):
        parse_photos_source(source)


def test_photos_has_one_split():
    with pytest.raises(ValueError, match="single split"):
        load_images("photos", split="test")
