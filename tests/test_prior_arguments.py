"""prior.arguments: the integer test and the code-grid and label checks."""

import numpy as np
import pytest

from prior.arguments import check_code_grid, check_labels, is_int


@pytest.mark.parametrize(
    "value, expected",
    [(3, True), (np.int64(3), True), (np.uint8(0), True), (True, False), (3.0, False), ("3", False)],
)
def test_is_int_accepts_integers_but_not_booleans(value, expected):
    assert is_int(value) is expected


def test_check_code_grid_returns_int32_codes():
    codes = check_code_grid(np.arange(8, dtype="int64").reshape(2, 2, 2), (2, 2), num_embeddings=8)
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(codes, np.arange(8).reshape(2, 2, 2))


@pytest.mark.parametrize(
    "codes, message",
    [
        (np.zeros((1, 2, 2)), "integer"),
        (np.zeros((1, 2, 3), int), r"shape \(batch, 2, 2\)"),
        (np.zeros((2, 2), int), r"shape \(batch, 2, 2\)"),
        (np.full((1, 2, 2), 4), r"\[0, 4\)"),
        (np.full((1, 2, 2), -1), r"\[0, 4\)"),
    ],
)
def test_check_code_grid_rejects_bad_grids(codes, message):
    with pytest.raises(ValueError, match=message):
        check_code_grid(codes, (2, 2), num_embeddings=4)


def test_check_labels_returns_int32_labels_or_none():
    assert check_labels(None, 2, num_classes=None) is None
    labels = check_labels(np.array([0, 2], "int64"), 2, num_classes=3)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, [0, 2])


@pytest.mark.parametrize(
    "labels, num_classes, message",
    [
        (None, 3, "required"),
        ([0, 1], None, "unconditional"),
        ([0.0, 1.0], 3, "integer"),
        ([[0, 1]], 3, "1-D"),
        ([0], 3, "expected 2 labels"),
        ([0, 3], 3, r"\[0, 3\)"),
        ([-1, 0], 3, r"\[0, 3\)"),
    ],
)
def test_check_labels_rejects_bad_labels(labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels, 2, num_classes)
