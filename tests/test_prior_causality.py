"""Causality of PixelCNN by perturbation, independent of how it is built."""

import numpy as np
import pytest

import prior
from random_weights import randomise_weights

ROWS, COLS, K = 5, 5, 6


def randomised_prior(num_classes=None, seed=0, grid_shape=(ROWS, COLS), num_layers=3, kernel_size=5):
    """A small prior with every weight, biases included, redrawn at random.

    No connection is then silently zero. By default (3 blocks, kernel 5) the
    receptive field covers the whole 5x5 grid: each earlier position is in
    range.
    """
    model = prior.PixelCNN(
        K,
        grid_shape,
        num_classes=num_classes,
        num_layers=num_layers,
        filters=8,
        kernel_size=kernel_size,
    )
    model.build()
    return randomise_weights(model, scale=0.5, seed=seed)


def perturbation_effects(model, labels=None):
    """effect[p, r, c] = max |change of logits at (r, c)| when code p changes."""
    rows, cols = model.grid_shape
    rng = np.random.default_rng(1)
    base = rng.integers(0, K, size=(rows * cols,))
    grids = np.repeat(base[None], rows * cols + 1, axis=0)
    for position in range(rows * cols):
        grids[position + 1, position] = (base[position] + 1 + rng.integers(0, K - 1)) % K
    grids = grids.reshape(-1, rows, cols).astype("int32")
    inputs = grids if labels is None else {"codes": grids, "labels": np.full(len(grids), labels)}
    logits = model(inputs).numpy()
    return np.abs(logits[1:] - logits[:1]).max(axis=-1).reshape(rows * cols, rows, cols)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_logits_depend_exactly_on_earlier_positions(num_classes):
    model = randomised_prior(num_classes)
    effects = perturbation_effects(model, labels=None if num_classes is None else 2)
    for target in range(ROWS * COLS):
        row, col = divmod(target, COLS)
        later = effects[target:, row, col]
        earlier = effects[:target, row, col]
        assert np.all(later == 0.0), f"codes at/after {(row, col)} leak into its logits"
        assert np.all(earlier > 1e-4), (
            f"earlier positions {np.flatnonzero(earlier <= 1e-4)} do not reach {(row, col)}"
        )


def test_blind_spot_positions_above_right_reach_the_current_one():
    model = randomised_prior()
    effects = perturbation_effects(model)
    # (1, 4) is above and right of (2, 1): the blind spot of a plain masked PixelCNN.
    assert effects[1 * COLS + 4, 2, 1] > 1e-4
    assert effects[0 * COLS + 4, 3, 0] > 1e-4


def test_labels_change_logits_everywhere():
    model = randomised_prior(num_classes=3)
    codes = np.random.default_rng(2).integers(0, K, size=(1, ROWS, COLS)).astype("int32")
    first = model({"codes": codes, "labels": np.array([0])}).numpy()
    second = model({"codes": codes, "labels": np.array([1])}).numpy()
    assert np.all(np.abs(first - second).max(axis=-1) > 1e-4)


def test_receptive_field_covers_the_documented_window():
    # 2 blocks of kernel 3: n = 2. Documented: every earlier code up to n + 1
    # rows above and n columns to either side, and n columns left on the row.
    span = 2
    model = randomised_prior(grid_shape=(7, 7), num_layers=2, kernel_size=3)
    effects = perturbation_effects(model)
    for row, col in [(3, 3), (4, 2), (6, 6), (5, 0)]:
        for other_row in range(max(0, row - span - 1), row + 1):
            for other_col in range(max(0, col - span), min(7, col + span + 1)):
                if other_row == row and other_col >= col:
                    continue
                assert effects[other_row * 7 + other_col, row, col] > 1e-4, (
                    f"{(other_row, other_col)} should reach {(row, col)}"
                )
        later = effects[row * 7 + col :, row, col]
        assert np.all(later == 0.0)
