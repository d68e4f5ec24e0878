"""Reconstruction quality for pixels in [0, 1]: PSNR and SSIM (Wang et al. 2004) per image, and the
share of fine detail a set of reconstructions keeps (`high_frequency_ratio`)."""

import numpy as np
import tensorflow as tf

BATCH_SIZE = 256
# `high_frequency_ratio` counts spatial frequencies above this fraction of the Nyquist frequency.
HIGH_FREQUENCY_CUTOFF = 0.5
NYQUIST = 0.5  # cycles per pixel


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


def _high_frequency_energy(images, cutoff=HIGH_FREQUENCY_CUTOFF):
    """The spectral energy of float `images` `[N, H, W, C]` above `cutoff` x Nyquist, summed (float64).

    Each image's channels are transformed apart by a 2-D DFT over `(H, W)` (`numpy.fft.fft2`, no
    window); a coefficient at frequencies `(f_y, f_x)` (cycles per pixel, `numpy.fft.fftfreq`) counts
    when its radius `sqrt(f_y**2 + f_x**2)` exceeds `cutoff * 0.5`, and its energy is `|F|**2`. The
    mean of a channel is the zero frequency, which no cutoff > 0 counts.
    """
    images = np.asarray(images, np.float64)
    radius = np.hypot(
        *np.meshgrid(np.fft.fftfreq(images.shape[1]), np.fft.fftfreq(images.shape[2]), indexing="ij")
    )
    high = radius > cutoff * NYQUIST  # (H, W)
    total = 0.0
    for start in range(0, len(images), BATCH_SIZE):
        spectrum = np.fft.fft2(images[start : start + BATCH_SIZE], axes=(1, 2))  # (B, H, W, C)
        total += float(np.sum(np.square(np.abs(spectrum[:, high, :]))))
    return total


def high_frequency_ratio(originals, reconstructions, cutoff=HIGH_FREQUENCY_CUTOFF):
    """How much of the originals' fine detail a set of reconstructions keeps: 1 kept, below 1 blurred.

    The ratio of sums `E(reconstructions) / E(originals)` over the whole set, where `E` is the
    spectral energy above the radial frequency `cutoff x Nyquist` (`cutoff * 0.5` cycles per pixel):
    each channel of each image gets a 2-D DFT over `(H, W)` (no window), and the squared magnitudes
    `|F(f_y, f_x)|**2` of its coefficients with `sqrt(f_y**2 + f_x**2) > cutoff * 0.5` are summed
    over coefficients, channels and images. A channel's mean is the zero frequency, so it never
    counts. A blur lowers the ratio; noise or ringing raise it above 1; it says nothing about
    whether the detail is in the right place (PSNR and SSIM do).

    Args:
        originals: float array `[N, H, W, C]` in [0, 1].
        reconstructions: float array of the same shape.
        cutoff: float in (0, 1]. The band's lower edge as a fraction of the Nyquist frequency.
            Defaults to `HIGH_FREQUENCY_CUTOFF` (0.5: above half Nyquist).

    Returns:
        float >= 0.

    Raises:
        ValueError: arrays of different shapes or not `[N, H, W, C]`, `cutoff` outside (0, 1], or
            originals with no energy above the cutoff (e.g. blank images).

    Example:
    >>> images = np.random.default_rng(0).uniform(size=(2, 8, 8, 1))
    >>> high_frequency_ratio(images, images)
    1.0
    >>> high_frequency_ratio(images, np.full_like(images, 0.5))
    0.0
    """
    originals, reconstructions = _checked_pair(originals, reconstructions)
    if not 0.0 < cutoff <= 1.0:
        raise ValueError(f"cutoff must be a fraction of Nyquist in (0, 1]. Received: cutoff={cutoff}")
    original_energy = _high_frequency_energy(originals, cutoff)
    if original_energy == 0.0:
        raise ValueError(
            "The original images have no detail above the frequency cutoff (blank images?); "
            f"the high-frequency ratio is undefined. Received: cutoff={cutoff}"
        )
    return _high_frequency_energy(reconstructions, cutoff) / original_energy
