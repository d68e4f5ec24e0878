"""GatedBlock: configuration, validation and the stacks' causal structure."""

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
