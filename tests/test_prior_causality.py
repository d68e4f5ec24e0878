"""Causality of PixelCNN by perturbation, independent of how it is built."""

import numpy as np
import pytest

import prior

ROWS, COLS, K = 5, 5, 6


def randomised_prior(num_classes=None, seed=0):
    """A small prior whose receptive field covers the whole 5x5 grid.

    Every weight, biases included, is redrawn so no connection is silently
    zero. 3 blocks with kernel 5 reach 6 columns left, 6 columns right on the
    rows above and every row above, so each earlier position is in range.
    """
    model = prior.PixelCNN(
        K, (ROWS, COLS), num_classes=num_classes, num_layers=3, filters=8, kernel_size=5
    )
    model.build()
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


def perturbation_effects(model, labels=None):
    """effect[p, r, c] = max |change of logits at (r, c)| when code p changes."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, K, size=(ROWS * COLS,))
    grids = np.repeat(base[None], ROWS * COLS + 1, axis=0)
    for position in range(ROWS * COLS):
        grids[position + 1, position] = (base[position] + 1 + rng.integers(0, K - 1)) % K
    grids = grids.reshape(-1, ROWS, COLS).astype("int32")
    inputs = grids if labels is None else {"codes": grids, "labels": np.full(len(grids), labels)}
    logits = model(inputs).numpy()
    return np.abs(logits[1:] - logits[:1]).max(axis=-1).reshape(ROWS * COLS, ROWS, COLS)


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
