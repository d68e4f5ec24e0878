"""convert_channels, resize_and_crop and --image-size parsing against PIL and NumPy references."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vqgen.data import load_images, stream_images
from vqgen.data.image_conversion import (
    convert_channels,
    image_transform,
    resize_and_crop,
    set_channels,
    to_uint8,
)
from vqgen.settings import parse_image_size


def random_pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.uint8)


def converted(pixels, channels):
    """Our conversion of a `[H, W]` or `[H, W, C]` uint8 array, as uint8 `[H, W, channels]`."""
    values = pixels if pixels.ndim == 3 else pixels[..., np.newaxis]
    return to_uint8(convert_channels(tf.constant(values), channels)).numpy()


def pil_reference(image, channels):
    """PIL: composite on white (if the image has alpha), then RGB or ITU-R 601 gray."""
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, rgba).convert("RGB")
    if channels == 1:
        return np.asarray(flat.convert("L"))[..., np.newaxis]
    return np.asarray(flat)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("channels", [1, 3])
def test_channel_conversions_match_pil_within_one_level(mode, channels):
    pixels = random_pixels((9, 7, len(mode)), seed=len(mode) + channels)
    image = Image.fromarray(pixels if len(mode) > 1 else pixels[..., 0], mode)
    ours = converted(pixels, channels)
    reference = pil_reference(image, channels)
    assert ours.shape == reference.shape == (9, 7, channels)
    assert np.abs(ours.astype(int) - reference).max() <= 1, mode


def test_alpha_is_composited_on_white_and_opaque_pixels_are_kept_exactly():
    rgba = random_pixels((4, 5, 4), seed=3)
    rgba[..., 3] = 255
    rgba[0, 0] = (10, 20, 30, 0)  # fully transparent: white
    ours = converted(rgba, 3)
    np.testing.assert_array_equal(ours[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(ours.reshape(-1, 3)[1:], rgba[..., :3].reshape(-1, 3)[1:])
    gray = random_pixels((3, 3), seed=4)
    np.testing.assert_array_equal(converted(gray, 3), np.repeat(gray[..., np.newaxis], 3, axis=-1))


def hand_made_image(mode, seed):
    """A 6x5 PIL image in `mode` with random pixels (alpha included; a palette image quantised from RGB)."""
    if mode == "P":
        return Image.fromarray(random_pixels((6, 5, 3), seed), "RGB").quantize(16)
    pixels = random_pixels((6, 5, len(mode)), seed)
    return Image.fromarray(pixels if len(mode) > 1 else pixels[..., 0], mode)


@pytest.mark.parametrize(
    "modes, channels",
    [
        (("RGB", "RGBA", "LA", "P", "L"), 3),  # any colour (a palette counts) makes the set RGB
        (("L", "LA"), 1),
        (("RGBA",), 3),
        (("P",), 3),
    ],
)
def test_both_folder_readers_apply_one_channel_rule_matching_pil(tmp_path, modes, channels):
    folder = tmp_path / "images"
    folder.mkdir()
    references = []
    for index, mode in enumerate(modes):
        image = hand_made_image(mode, seed=index)
        image.save(folder / f"{index}_{mode}.png")
        references.append(pil_reference(Image.open(folder / f"{index}_{mode}.png"), channels))
    in_memory = load_images(str(folder)).images
    streamed = stream_images(str(folder)).to_image_set().images
    assert set_channels(modes) == channels
    assert in_memory.shape == streamed.shape == (len(modes), 6, 5, channels)
    np.testing.assert_array_equal(in_memory, streamed)
    assert np.abs(in_memory.astype(int) - np.stack(references)).max() <= 1


def test_set_channels_is_gray_only_without_any_colour():
    assert set_channels(["L", "LA", "1", "I;16"]) == 1
    assert set_channels(["L", "RGB"]) == 3
    assert set_channels(["LA", "P"]) == 3


@pytest.mark.parametrize(
    "source_shape, size",
    [((40, 60), (20, 20)), ((60, 40), (32, 16)), ((30, 45), (48, 48)), ((64, 64), (32, 48))],
)
def test_resize_keeps_the_aspect_ratio_then_crops_the_centre_like_pil(source_shape, size):
    pixels = random_pixels((*source_shape, 3), seed=sum(source_shape))
    ours = to_uint8(resize_and_crop(tf.constant(pixels, tf.float32), size)).numpy()
    height, width = size
    scale = max(height / source_shape[0], width / source_shape[1])
    scaled = (round(source_shape[1] * scale), round(source_shape[0] * scale))  # PIL: (width, height)
    resized = np.asarray(Image.fromarray(pixels).resize(scaled, Image.BILINEAR))
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    reference = resized[top : top + height, left : left + width]
    assert ours.shape == reference.shape == (height, width, 3)
    difference = np.abs(ours.astype(int) - reference)
    assert difference.max() <= 1 and difference.mean() < 0.5


def test_a_crop_without_scaling_is_exact_numpy_slicing():
    pixels = random_pixels((32, 50, 1), seed=5)
    ours = to_uint8(resize_and_crop(tf.constant(pixels, tf.float32), (32, 32))).numpy()
    np.testing.assert_array_equal(ours, pixels[:, 9:41])


def test_image_transform_passes_matching_images_through_and_converts_others():
    transform = image_transform((8, 8, 3), (8, 8))
    ready = random_pixels((8, 8, 3), seed=6)
    np.testing.assert_array_equal(transform(tf.constant(ready)).numpy(), ready)
    gray_large = random_pixels((16, 24, 1), seed=7)
    assert transform(tf.constant(gray_large)).shape == (8, 8, 3)


@pytest.mark.parametrize("text, expected", [("64", (64, 64)), ("48x64", (48, 64)), ("32X16", (32, 16))])
def test_image_size_parses_h_or_h_by_w(text, expected):
    assert parse_image_size(text) == expected


@pytest.mark.parametrize("text", ["0", "x64", "64x", "64x48x3", "-8", "big"])
def test_bad_image_sizes_are_refused(text):
    with pytest.raises(ValueError, match="H or HxW"):
        parse_image_size(text)
