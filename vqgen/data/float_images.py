"""Conversion of uint8 or float pixel arrays to float32 images in [0, 1]."""

import numpy as np


def check_float_pixels(pixels, name="images"):
    """Raises ValueError unless every value of a float array is finite and within [0, 1].

    Float images in vqgen are intensities in [0, 1]; a NaN, an infinity or a value on the 0..255
    scale is a data bug that would otherwise surface much later as a diverging loss.

    Args:
        pixels: floating-point `np.ndarray` of any shape.
        name: str. What the array is, for the error message (e.g. a source name).

    Raises:
        ValueError: if a value is NaN or infinite, or lies outside [0, 1].

    Example:
    >>> check_float_pixels(np.array([0.0, 0.5, 1.0]))
    """
    if pixels.size == 0:
        return
    if not np.all(np.isfinite(pixels)):
        bad = int(np.size(pixels) - np.count_nonzero(np.isfinite(pixels)))
        raise ValueError(
            f"{name} contain {bad} non-finite pixel values (NaN or inf); clean or drop those "
            f"images before loading them"
        )
    low, high = float(pixels.min()), float(pixels.max())
    if low < 0.0 or high > 1.0:
        hint = "; divide by 255 if they are on the 0..255 scale" if high <= 255.0 else ""
        raise ValueError(
            f"{name} have float pixels outside [0, 1] (min={low}, max={high}); rescale them "
            f"to [0, 1] or store them as uint8 0..255{hint}"
        )


def to_float_images(images):
    """Returns images as float32 intensities in [0, 1].

    uint8 pixels are divided by 255; floating-point pixels must already be in [0, 1] (they are
    checked, then cast to float32). The shape is unchanged.

    Args:
        images: `np.ndarray` (or array-like) of uint8 or floating-point pixels, any shape
            (usually `[N, H, W, C]`).

    Returns:
        A float32 `np.ndarray` of the same shape with values in [0, 1].

    Raises:
        ValueError: for another dtype (e.g. int64 or bool), or float values that are non-finite
            or outside [0, 1].

    Example:
    >>> to_float_images(np.array([[0, 51, 255]], dtype=np.uint8))
    array([[0. , 0.2, 1. ]], dtype=float32)
    """
    pixels = np.asarray(images)
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / np.float32(255)
    if np.issubdtype(pixels.dtype, np.floating):
        check_float_pixels(pixels)
        return pixels.astype(np.float32)
    raise ValueError(
        f"images must be uint8 (0..255) or float (0..1); convert them with .astype(np.uint8) "
        f"or scale them to [0, 1]. Received: dtype={pixels.dtype}"
    )
