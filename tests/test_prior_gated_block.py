"""GatedBlock: configuration, validation, the stacks' causal structure and the incremental steps."""

import numpy as np
import pytest

import prior


def test_get_config_round_trip():
    block = prior.GatedBlock(filters=6, kernel_size=5, first_block=True, num_classes=3, name="b")
    config = block.get_config()
    assert {k: config[k] for k in ("filters", "kernel_size", "first_block", "num_classes")} == dict(
        filters=6, kernel_size=5, first_block=True, num_classes=3
    )
    assert prior.GatedBlock.from_config(config).get_config() == config


def test_vertical_row_sees_rows_at_and_above_and_horizontal_sees_only_the_left():
    block = prior.GatedBlock(filters=4, kernel_size=3, first_block=True)
    rng = np.random.default_rng(0)
    block.build((None, 5, 5, 4))
    block.set_weights([rng.normal(size=w.shape).astype("float32") for w in block.get_weights()])
    base = rng.normal(size=(1, 5, 5, 4)).astype("float32")
    changed = base.copy()
    changed[0, 2, 2] += 1.0  # perturb one pixel of both stacks' inputs
    before, after = block(base, base), block(changed, changed)
    vertical_change = np.abs(np.asarray(after[0]) - np.asarray(before[0]))[0].max(axis=-1)
    horizontal_change = np.abs(np.asarray(after[1]) - np.asarray(before[1]))[0].max(axis=-1)
    # A (2, 3) vertical kernel over rows r-1..r: output rows 2 and 3, columns 1..3 only.
    expected_vertical = np.zeros((5, 5), bool)
    expected_vertical[2:4, 1:4] = True
    assert np.all(vertical_change[~expected_vertical] == 0.0)
    assert np.all(vertical_change[expected_vertical] > 0.0)
    # Horizontal: only later raster positions change (the first block excludes the centre).
    flat = horizontal_change.ravel()
    assert np.all(flat[: 2 * 5 + 3] == 0.0) and flat[2 * 5 + 3] > 0.0


def run_steps(block, vertical, horizontal, labels):
    """Runs the block's incremental steps over whole grids, row by row and column by column.

    Returns `(vertical, horizontal, skip)` NumPy arrays assembled from the step outputs, to
    compare with `block(vertical, horizontal, labels)`.
    """
    batch, rows, cols, filters = vertical.shape
    vertical_rows, horizontal_rows, skip_rows = [], [], []
    cache, contribution_row = block.initial_vertical_cache(batch, cols)
    for row in range(rows):
        history = block.initial_horizontal_history(batch)
        outputs, skips = [], []
        for column in range(cols):
            if block.first_block:  # consumes the previous column's input (zeros at column 0)
                block_input = (
                    np.zeros((batch, 1, 1, filters), "float32")
                    if column == 0
                    else horizontal[:, row : row + 1, column - 1 : column]
                )
            else:
                block_input = horizontal[:, row : row + 1, column : column + 1]
            history, output, skip = block.horizontal_step(
                history, block_input, contribution_row[:, :, column : column + 1], labels
            )
            outputs.append(np.asarray(output))
            skips.append(np.asarray(skip))
        horizontal_rows.append(np.concatenate(outputs, axis=2))
        skip_rows.append(np.concatenate(skips, axis=2))
        cache, contribution_row, output_row = block.vertical_step(cache, vertical[:, row : row + 1], labels)
        vertical_rows.append(np.asarray(output_row))
    return tuple(np.concatenate(parts, axis=1) for parts in (vertical_rows, horizontal_rows, skip_rows))


@pytest.mark.parametrize(
    "first_block, kernel_size, num_classes",
    [(True, 3, None), (False, 3, None), (True, 5, 3), (False, 5, 3), (False, 7, None)],
)
def test_steps_over_a_grid_reproduce_the_full_call(randomise_weights, first_block, kernel_size, num_classes):
    batch, rows, cols, filters = 2, 4, 5, 6
    block = prior.GatedBlock(filters, kernel_size, first_block=first_block, num_classes=num_classes)
    block.build((None, rows, cols, filters))
    randomise_weights(block, scale=0.5, seed=kernel_size)
    rng = np.random.default_rng(1)
    vertical = rng.normal(size=(batch, rows, cols, filters)).astype("float32")
    horizontal = rng.normal(size=(batch, rows, cols, filters)).astype("float32")
    labels = None if num_classes is None else np.array([0, 2], "int32")
    expected = [np.asarray(output) for output in block(vertical, horizontal, labels)]
    for stepped, full in zip(run_steps(block, vertical, horizontal, labels), expected):
        assert stepped.shape == full.shape == (batch, rows, cols, filters)
        np.testing.assert_allclose(stepped, full, atol=1e-5, rtol=0)


def test_state_shapes_do_not_depend_on_the_row_or_column(randomise_weights):
    block = prior.GatedBlock(4, 5, first_block=False)
    block.build((None, 3, 6, 4))
    cache, contribution_row = block.initial_vertical_cache(2, 6)
    assert tuple(contribution_row.shape) == (2, 1, 6, 8)
    new_cache, new_contribution_row, output_row = block.vertical_step(cache, np.ones((2, 1, 6, 4), "float32"))
    assert new_cache.shape == cache.shape and new_contribution_row.shape == contribution_row.shape
    assert tuple(output_row.shape) == (2, 1, 6, 4)
    history = block.initial_horizontal_history(2)
    new_history, output, skip = block.horizontal_step(
        history, np.ones((2, 1, 1, 4), "float32"), contribution_row[:, :, :1]
    )
    assert new_history.shape == history.shape
    assert tuple(output.shape) == tuple(skip.shape) == (2, 1, 1, 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filters=0, kernel_size=3), "filters"),
        (dict(filters=4, kernel_size=2), "kernel_size"),
        (dict(filters=4, kernel_size=3, num_classes=0), "num_classes"),
        (dict(filters=True, kernel_size=3), "filters"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        prior.GatedBlock(**kwargs)
