"""make_image_grid / save_image_grid / save_comparison_grid against grids assembled by hand."""

import os

import numpy as np
import pytest
import tensorflow as tf

from vqgen.runs.image_grid import make_image_grid, save_comparison_grid, save_image_grid

GREY = 128


def hand_grid(cells, rows, columns, height, width, channels, padding):
    """Places `cells[(row, column)]` (uint8 tiles) on a grey canvas with explicit loops."""
    canvas = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        GREY,
        np.uint8,
    )
    for (row, column), tile in cells.items():
        top = padding + row * (height + padding)
        left = padding + column * (width + padding)
        canvas[top : top + height, left : left + width] = tile
    return canvas


def random_tiles(count, height, width, channels, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, channels)).astype(np.uint8)


def read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_grid_matches_hand_placement_with_blank_cells():
    tiles = random_tiles(5, 2, 3, 1)
    grid = make_image_grid(tiles / 255.0, columns=3, padding=1)
    expected = hand_grid({(i // 3, i % 3): tiles[i] for i in range(5)}, 2, 3, 2, 3, 1, 1)
    assert grid.dtype == np.uint8
    np.testing.assert_array_equal(grid, expected)


def test_row_lengths_start_a_row_per_group_and_fill_short_rows_with_blank_cells():
    tiles = random_tiles(5, 2, 3, 1, seed=3)
    grid = make_image_grid(tiles, padding=1, row_lengths=[2, 1, 2])  # 3 columns: the longest row's
    places = [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    expected = hand_grid({place: tiles[i] for i, place in enumerate(places)}, 3, 2, 2, 3, 1, 1)
    np.testing.assert_array_equal(grid, expected)
    wider = make_image_grid(tiles, columns=3, padding=1, row_lengths=[2, 1, 2])
    np.testing.assert_array_equal(wider, hand_grid(dict(zip(places, tiles)), 3, 3, 2, 3, 1, 1))


def test_default_columns_make_a_square_grid_and_rgb_without_padding_tiles_exactly():
    tiles = random_tiles(4, 3, 2, 3, seed=1)
    grid = make_image_grid(tiles.astype(np.float64) / 255.0, padding=0)
    expected = np.block([[[tiles[0]], [tiles[1]]], [[tiles[2]], [tiles[3]]]])
    np.testing.assert_array_equal(grid, expected)
    # 10 images: ceil(sqrt(10)) = 4 columns, ceil(10 / 4) = 3 rows of 4 + 2 pixels, plus a frame.
    assert make_image_grid(np.zeros((10, 4, 4, 1))).shape == (3 * 6 + 2, 4 * 6 + 2, 1)


def test_float_pixels_round_to_nearest_level():
    pixels = np.array([0.0, 0.2, 0.5, 1.0, 1.4 / 255.0, 1.6 / 255.0]).reshape(1, 1, 6, 1)
    grid = make_image_grid(pixels, padding=0)
    np.testing.assert_array_equal(grid[0, :, 0], [0, 51, 128, 255, 1, 2])


def test_saved_png_holds_the_grid_and_no_temporary_file_is_left(tmp_path):
    tiles = random_tiles(3, 4, 5, 3, seed=2)
    path = tmp_path / "new_folder" / "grid.png"
    save_image_grid(str(path), tiles / 255.0, columns=2, padding=2)
    expected = hand_grid({(i // 2, i % 2): tiles[i] for i in range(3)}, 2, 2, 4, 5, 3, 2)
    np.testing.assert_array_equal(read_png(path), expected)
    save_image_grid(path, tiles[:1] / 255.0, padding=0)  # overwrite in place
    np.testing.assert_array_equal(read_png(path), tiles[0])
    assert os.listdir(path.parent) == ["grid.png"]


def test_failed_replace_leaves_neither_target_nor_temporary(tmp_path, monkeypatch):
    def refuse(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_image_grid(tmp_path / "grid.png", np.zeros((1, 2, 2, 1)))
    assert os.listdir(tmp_path) == []


def test_comparison_grid_alternates_rows_of_originals_and_reconstructions(tmp_path):
    originals, reconstructions = random_tiles(3, 2, 2, 1, seed=3), random_tiles(3, 2, 2, 1, seed=4)
    path = tmp_path / "compare.png"
    save_comparison_grid(path, originals / 255.0, reconstructions / 255.0, columns=2, padding=1)
    cells = {}
    for i in range(3):
        cells[(2 * (i // 2), i % 2)] = originals[i]
        cells[(2 * (i // 2) + 1, i % 2)] = reconstructions[i]
    np.testing.assert_array_equal(read_png(path), hand_grid(cells, 4, 2, 2, 2, 1, 1))


def test_comparison_grid_default_columns_are_roughly_square(tmp_path):
    path = tmp_path / "compare.png"
    save_comparison_grid(path, np.zeros((8, 3, 3, 1)), np.ones((8, 3, 3, 1)), padding=0)
    picture = read_png(path)  # ceil(sqrt(16)) = 4 columns, 2 pairs of rows
    assert picture.shape == (12, 12, 1)
    np.testing.assert_array_equal(picture[3:6, :, 0], 255)


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (np.zeros((2, 3, 3)), {}, "shape"),
        (np.zeros((2, 3, 3, 2)), {}, "shape"),
        (np.zeros((0, 3, 3, 1)), {}, "non-empty"),
        (np.full((1, 3, 3, 1), np.nan), {}, "non-finite"),
        (np.full((1, 3, 3, 1), 2.0), {}, r"outside \[0, 1\]"),
        (np.zeros((1, 3, 3, 1)), {"columns": 0}, "columns must be"),
        (np.zeros((1, 3, 3, 1)), {"padding": -1}, "padding must be"),
        (np.zeros((3, 3, 3, 1)), {"row_lengths": [2]}, "row_lengths must be"),
        (np.zeros((3, 3, 3, 1)), {"row_lengths": [2, 1, 0]}, "row_lengths must be"),
        (np.zeros((3, 3, 3, 1)), {"row_lengths": [3], "columns": 2}, "row_lengths must be"),
    ],
)
def test_bad_grid_arguments_raise(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_image_grid(images, **kwargs)


def test_bad_save_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="must end in .png"):
        save_image_grid(tmp_path / "grid.jpg", np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="same shape"):
        save_comparison_grid(tmp_path / "c.png", np.zeros((2, 2, 2, 1)), np.zeros((3, 2, 2, 1)))
    assert os.listdir(tmp_path) == []
