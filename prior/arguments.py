"""Argument checks shared by the prior's layers, model and samplers."""

import numbers

import numpy as np

# The largest finite float32: a temperature or guidance above it would become inf in the compiled samplers.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_int(value):
    """Whether `value` is an integer (Python or NumPy), booleans excluded.

    Args:
        value: any object.

    Returns:
        bool.

    Example:

    >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
    (True, True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_code_grid(codes, grid_shape, num_embeddings):
    """Validates a batch of code grids: integer dtype, grid shape and code range.

    Args:
        codes: array-like `(batch, rows, cols)`.
        grid_shape: tuple `(rows, cols)` the grids must have.
        num_embeddings: int, the number `K` of codes; values must lie in `[0, K)`.

    Returns:
        The codes as an int32 NumPy array.

    Raises:
        ValueError: for non-integer codes, a shape other than `(batch, rows, cols)` or a code
            outside `[0, K)`.

    Example:

    >>> check_code_grid([[[0, 1], [2, 3]]], (2, 2), num_embeddings=4).dtype
    dtype('int32')
    """
    codes = np.asarray(codes)
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be an integer array; received dtype={codes.dtype}")
    if codes.ndim != 3 or codes.shape[1:] != tuple(grid_shape):
        raise ValueError(
            f"codes must have shape (batch, {grid_shape[0]}, {grid_shape[1]}) to match "
            f"grid_shape; received shape={codes.shape}"
        )
    if codes.size and (codes.min() < 0 or codes.max() >= num_embeddings):
        raise ValueError(
            f"codes must lie in [0, {num_embeddings}) (num_embeddings); received values in "
            f"[{codes.min()}, {codes.max()}]"
        )
    return codes.astype(np.int32)


def check_labels(labels, count, num_classes):
    """Validates the class labels of `count` grids for a prior with `num_classes` classes.

    Args:
        labels: array-like `(count,)` of ints in `[0, num_classes)`, or None.
        count: int, the number of grids the labels go with.
        num_classes: int, or None for an unconditional prior (which takes no labels).

    Returns:
        The labels as an int32 NumPy array, or None for an unconditional prior.

    Raises:
        ValueError: labels missing for a conditional prior or given to an unconditional one,
            not a 1-D integer array, a count other than `count`, or a label outside
            `[0, num_classes)`.

    Example:

    >>> check_labels([0, 2], count=2, num_classes=3)
    array([0, 2], dtype=int32)
    """
    if labels is None:
        if num_classes is not None:
            raise ValueError(
                f"labels are required: this prior is class-conditional (num_classes={num_classes})"
            )
        return None
    if num_classes is None:
        raise ValueError("labels were given but this prior is unconditional (num_classes=None); drop labels")
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D integer array; received dtype={labels.dtype}, shape={labels.shape}"
        )
    if labels.shape[0] != count:
        raise ValueError(f"expected {count} labels (one per grid); received {labels.shape[0]}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}); received values in [{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int32)


def check_inpaint_mask(mask, codes_shape):
    """Validates an inpainting mask: booleans of the code grids' shape, True = re-sample.

    Args:
        mask: array-like of bools `(batch, rows, cols)`.
        codes_shape: tuple, the shape of the code grids the mask goes with.

    Returns:
        The mask as a bool NumPy array.

    Raises:
        ValueError: for a non-boolean mask or one whose shape differs from `codes_shape`.

    Example:

    >>> check_inpaint_mask([[[True, False]]], (1, 1, 2)).dtype
    dtype('bool')
    """
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be a bool array (True = re-sample); received dtype={mask.dtype}")
    if mask.shape != tuple(codes_shape):
        raise ValueError(
            f"mask must have the shape of the codes, {tuple(codes_shape)}; received shape={mask.shape}"
        )
    return mask
