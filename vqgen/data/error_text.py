"""Turning a third-party exception into text for a one-line error message."""


def first_line(error):
    """Returns the first line of an exception's message, or its type name if the message is empty.

    NumPy and TFDS messages often span many lines (TFDS lists every dataset it knows); vqgen
    errors are one line, so only the first line of a wrapped exception is quoted.

    Args:
        error: the `BaseException` to describe.

    Returns:
        A str without newlines.

    Example:
    >>> first_line(ValueError("Dataset x not found.\\nAvailable datasets: ..."))
    'Dataset x not found.'
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
