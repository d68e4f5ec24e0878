"""Tiling image batches into one picture and writing it as a PNG file."""

import math

import numpy as np
import tensorflow as tf

from vqgen.data.float_images import to_float_images
from vqgen.runs.atomic_file import write_bytes_atomically

# Value (0..255) of the padding lines and of empty grid cells: mid grey, visible against both
# the black background of MNIST-like images and white backgrounds.
BACKGROUND_VALUE = 128


def _checked_tiles(images, name="images"):
    """Returns `[N, H, W, C]` images (float in [0, 1] or uint8) as uint8 tiles, or raises."""
    pixels = np.asarray(images)
    if pixels.ndim != 4 or pixels.shape[3] not in (1, 3) or pixels.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty [N, H, W, C] array with C 1 or 3; reshape them. "
            f"Received: shape={pixels.shape}"
        )
    return np.round(to_float_images(pixels) * 255.0).astype(np.uint8)


def _check_layout(columns, padding):
    """Raises ValueError unless `columns` is None or an int >= 1 and `padding` an int >= 0."""
    if columns is not None and (
        isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1
    ):
        raise ValueError(f"columns must be an int >= 1 or None. Received: columns={columns!r}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be an int >= 0. Received: padding={padding!r}")


def _rows_of_tiles(tiles, columns):
    """Returns uint8 tiles `[N, H, W, C]` as `[rows, columns, H, W, C]`, blank cells last."""
    rows = math.ceil(tiles.shape[0] / columns)
    blank_shape = (rows * columns - tiles.shape[0],) + tiles.shape[1:]
    blank = np.full(blank_shape, BACKGROUND_VALUE, np.uint8)
    return np.concatenate([tiles, blank]).reshape((rows, columns) + tiles.shape[1:])


def _rows_of_given_lengths(tiles, row_lengths, columns):
    """Returns uint8 tiles `[N, H, W, C]` as `[len(row_lengths), columns, H, W, C]`: row `r` holds the
    next `row_lengths[r]` tiles, then blank cells (`columns` None: the longest row's length);
    raises ValueError for lengths that do not fit."""
    lengths = list(row_lengths)
    if (
        not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in lengths)
        or sum(lengths) != tiles.shape[0]
        or (columns is not None and max(lengths) > columns)
    ):
        raise ValueError(
            f"row_lengths must be ints >= 1 summing to the {tiles.shape[0]} images, none above "
            f"columns={columns}; pass one length per row. Received: row_lengths={row_lengths!r}"
        )
    columns = max(lengths) if columns is None else int(columns)
    starts = np.cumsum([0] + lengths[:-1])
    return np.stack(
        [_rows_of_tiles(tiles[start : start + n], columns)[0] for start, n in zip(starts, lengths)]
    )


def _assemble(cells, padding):
    """Returns a uint8 canvas of `[rows, columns, H, W, C]` cells with `padding` lines around."""
    rows, columns, height, width, channels = cells.shape
    padded = np.pad(
        cells,
        ((0, 0), (0, 0), (padding, 0), (padding, 0), (0, 0)),
        constant_values=BACKGROUND_VALUE,
    )
    canvas = padded.transpose(0, 2, 1, 3, 4).reshape(
        rows * (height + padding), columns * (width + padding), channels
    )
    return np.pad(canvas, ((0, padding), (0, padding), (0, 0)), constant_values=BACKGROUND_VALUE)


def make_image_grid(images, columns=None, padding=2, row_lengths=None):
    """Tiles a batch of images into one uint8 picture, row by row.

    Image `i` goes to row `i // columns`, column `i % columns`; with `row_lengths`, row `r` holds
    the next `row_lengths[r]` images instead (e.g. one row per class). Tiles are separated, and the
    picture framed, by `padding`-pixel lines of mid grey (128); cells left empty at the end of a
    row are grey too. Float pixels in [0, 1] map to `round(255 * value)`.

    Args:
        images: `[N, H, W, C]` array, C 1 or 3, of float pixels in [0, 1] (or uint8 0..255).
        columns: int >= 1 or None. Tiles per row; None gives `ceil(sqrt(N))` (a square-ish grid),
            or `max(row_lengths)` when those are given.
        padding: int >= 0. Width in pixels of the lines between and around the tiles.
        row_lengths: sequence of ints >= 1 summing to N, or None. Images in each row, in order.

    Returns:
        A uint8 `np.ndarray` `[rows * (H + padding) + padding, columns * (W + padding) + padding,
        C]` with `rows = ceil(N / columns)`, or `len(row_lengths)`.

    Raises:
        ValueError: for images that are not a non-empty `[N, H, W, C]` array with C 1 or 3, pixel
            values outside [0, 1] or non-finite, or invalid `columns`/`padding`/`row_lengths`.

    Example:
    >>> make_image_grid(np.zeros((5, 28, 28, 1)), columns=3).shape
    (62, 92, 1)
    >>> make_image_grid(np.zeros((5, 28, 28, 1)), row_lengths=[2, 1, 2]).shape
    (92, 62, 1)
    """
    _check_layout(columns, padding)
    tiles = _checked_tiles(images)
    if row_lengths is not None:
        return _assemble(_rows_of_given_lengths(tiles, row_lengths, columns), int(padding))
    if columns is None:
        columns = math.ceil(math.sqrt(tiles.shape[0]))
    return _assemble(_rows_of_tiles(tiles, int(columns)), int(padding))


def _write_png(path, picture):
    """Atomically writes a uint8 `[H, W, C]` picture to `path` as a PNG, creating its folder."""
    if not str(path).lower().endswith(".png"):
        raise ValueError(f"the output path must end in .png; rename it. Received: path={path!r}")
    write_bytes_atomically(path, tf.io.encode_png(picture).numpy())


def save_image_grid(path, images, columns=None, padding=2, row_lengths=None):
    """Writes a batch of images as one PNG grid (see `make_image_grid` for the layout).

    The PNG (grayscale for C=1, RGB for C=3, encoded by `tf.io.encode_png`) is first written to
    a temporary file in the destination folder and then moved onto `path` with `os.replace`, so
    readers never see a half-written file. Missing parent folders are created.

    Args:
        path: str or path-like ending in `.png`. The file to (over)write.
        images: `[N, H, W, C]` array, C 1 or 3, of float pixels in [0, 1] (or uint8 0..255).
        columns: int >= 1 or None. Tiles per row; None gives `ceil(sqrt(N))`.
        padding: int >= 0. Width in pixels of the grey lines between and around the tiles.
        row_lengths: sequence of ints >= 1 summing to N, or None. Images in each row, in order.

    Raises:
        ValueError: for a path not ending in `.png`, or invalid images/layout (see
            `make_image_grid`).

    Example:
    >>> save_image_grid("runs/samples.png", decoded_samples, columns=8)
    """
    _write_png(path, make_image_grid(images, columns=columns, padding=padding, row_lengths=row_lengths))


def save_comparison_grid(path, originals, reconstructions, columns=None, padding=2):
    """Writes originals and their reconstructions as one PNG, in alternating rows.

    Rows come in pairs: a row of `columns` originals, then directly below it the reconstructions
    of the same images in the same columns; the next pair continues with the next `columns`
    images. Cells left over in the last pair are grey. Written atomically like
    `save_image_grid`.

    Args:
        path: str or path-like ending in `.png`. The file to (over)write.
        originals: `[N, H, W, C]` array, C 1 or 3, of float pixels in [0, 1] (or uint8).
        reconstructions: array of the same shape as `originals`.
        columns: int >= 1 or None. Images per row; None gives `ceil(sqrt(2 * N))`, which makes
            the picture roughly square.
        padding: int >= 0. Width in pixels of the grey lines between and around the tiles.

    Raises:
        ValueError: if the two arrays differ in shape, or for invalid images, layout or path.

    Example:
    >>> save_comparison_grid("runs/reconstructions.png", batch, vqvae.predict(batch))
    """
    _check_layout(columns, padding)
    original_tiles = _checked_tiles(originals, name="originals")
    reconstructed_tiles = _checked_tiles(reconstructions, name="reconstructions")
    if original_tiles.shape != reconstructed_tiles.shape:
        raise ValueError(
            f"originals and reconstructions must have the same shape; pass one reconstruction "
            f"per original. Received: shapes {original_tiles.shape} and "
            f"{reconstructed_tiles.shape}"
        )
    if columns is None:
        columns = math.ceil(math.sqrt(2 * original_tiles.shape[0]))
    pairs = np.stack(
        [_rows_of_tiles(tiles, int(columns)) for tiles in (original_tiles, reconstructed_tiles)],
        axis=1,
    )
    cells = pairs.reshape((-1,) + pairs.shape[2:])
    _write_png(path, _assemble(cells, int(padding)))
