"""Reconstruction quality per image: PSNR and SSIM (Wang et al. 2004) for pixels in [0, 1]."""

import numpy as np
import tensorflow as tf

BATCH_SIZE = 256


def _checked_pair(originals, reconstructions):
    originals = np.asarray(originals, np.float32)
    reconstructions = np.asarray(reconstructions, np.float32)
    if originals.ndim != 4 or originals.shape != reconstructions.shape:
        raise ValueError(
            "originals and reconstructions must be [N, H, W, C] arrays of the same shape. "
            f"Received: shapes {originals.shape} and {reconstructions.shape}"
        )
    return originals, reconstructions


def psnr(originals, reconstructions):
    """Peak signal-to-noise ratio of each image, in dB, for pixels in [0, 1].

    `10 log10(1 / MSE)` with the mean squared error over the image's pixels and channels; an exact
    reconstruction gives `inf`.

    Args:
        originals: float array `[N, H, W, C]` in [0, 1].
        reconstructions: float array of the same shape.

    Returns:
        float64 array `[N]`.

    Example:
    >>> psnr(np.zeros((1, 4, 4, 1)), np.full((1, 4, 4, 1), 0.1))
    array([20.])
    """
    originals, reconstructions = _checked_pair(originals, reconstructions)
    difference = originals.astype(np.float64) - reconstructions.astype(np.float64)
    mse = np.mean(np.square(difference), axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / mse)


def ssim(originals, reconstructions):
    """Structural similarity of each image by `tf.image.ssim` (11x11 Gaussian window, sigma 1.5).

    The window is shrunk to the image's smaller side for images under 11 pixels.

    Args:
        originals: float array `[N, H, W, C]` in [0, 1].
        reconstructions: float array of the same shape.

    Returns:
        float32 array `[N]`, 1 for identical images.

    Example:
    >>> ssim(images, images)  # doctest: +SKIP
    array([1., 1.], dtype=float32)
    """
    originals, reconstructions = _checked_pair(originals, reconstructions)
    filter_size = min(11, originals.shape[1], originals.shape[2])
    return np.concatenate(
        [
            tf.image.ssim(
                originals[start : start + BATCH_SIZE],
                reconstructions[start : start + BATCH_SIZE],
                max_val=1.0,
                filter_size=filter_size,
            ).numpy()
            for start in range(0, len(originals), BATCH_SIZE)
        ]
        or [np.zeros([0], np.float32)]
    )
