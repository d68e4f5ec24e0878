"""Argument checks shared by the prior's layers and model."""

import numbers


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
