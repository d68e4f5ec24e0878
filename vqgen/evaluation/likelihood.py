"""The prior's likelihood in the units papers report: bits per code and bits per image dimension.

- Bits per code: `-log2 p(codes) / positions`, with `log p(codes)` the prior's exact
  autoregressive log-likelihood of a code grid (`log_prob`, nats) and `positions` the grid's
  cells (`h * w * d` for residual VQ).
- Bits per image dimension, an upper bound on `-log2 p(x) / (H W C)` for 8-bit images: the encoder
  picks one code grid `z(x)`, and `p(x) = sum_z p(z) p(x | z) >= p(z(x)) p(x | z(x))`, so
  `-log2 p(z(x)) - log2 p(x | z(x))` bounds the image's code length. `p(x | z)` is a discretized
  Gaussian around the decoder's output (each 8-bit value owns the interval of width 1/255 around
  it, the end values extend to infinity) with one scale `sigma` for the whole dataset (the root
  mean squared reconstruction error of the training split, its maximum-likelihood value).
  The prior's share alone, `-log2 p(z(x)) / (H W C)`, is reported beside it.
"""

import math

import numpy as np
from scipy.special import ndtr

LN2 = math.log(2.0)
# Smallest probability of one 8-bit value under the decoder's distribution (a guard against log 0).
MIN_PROBABILITY = 1e-12


def bits_per_code(log_prob_nats, positions):
    """Bits per code of each grid from its log-likelihood in nats.

    Args:
        log_prob_nats: float array `[N]`, `log p(codes)` of each grid (the prior's `log_prob`).
        positions: int. Codes per grid.

    Returns:
        float64 array `[N]`.

    Example:
    >>> bits_per_code(np.array([-math.log(256) * 49]), 49)
    array([8.])
    """
    return -np.asarray(log_prob_nats, np.float64) / LN2 / positions


def decoder_scale(images, reconstructions):
    """The decoder's Gaussian scale: the root mean squared reconstruction error (floored at 1/255)."""
    difference = np.asarray(images, np.float64) - np.asarray(reconstructions, np.float64)
    return max(float(np.sqrt(np.mean(np.square(difference)))), 1.0 / 255.0)


def decoder_bits(images, reconstructions, sigma):
    """`-log2 p(x | z)` of each image under a discretized Gaussian around its reconstruction.

    Args:
        images: float array `[N, H, W, C]` in [0, 1]; rounded to 8-bit values `k / 255`.
        reconstructions: float array of the same shape, the decoder's output.
        sigma: float > 0. The Gaussian's scale in [0, 1] pixel units.

    Returns:
        float64 array `[N]`, bits per image.
    """
    values = np.round(np.asarray(images, np.float64) * 255.0)
    means = np.asarray(reconstructions, np.float64) * 255.0
    scale = sigma * 255.0
    upper = np.where(values >= 255.0, 1.0, ndtr((values + 0.5 - means) / scale))
    lower = np.where(values <= 0.0, 0.0, ndtr((values - 0.5 - means) / scale))
    probabilities = np.maximum(upper - lower, MIN_PROBABILITY)
    return -np.sum(np.log2(probabilities), axis=tuple(range(1, values.ndim)))


def bits_per_dimension(prior_bits, decoder_bits_per_image, dimensions):
    """Bits per image dimension of each image: `(prior bits + decoder bits) / (H W C)`.

    Args:
        prior_bits: float array `[N]`, `-log2 p(z(x))` per image.
        decoder_bits_per_image: float array `[N]` (`decoder_bits`), or 0 for the prior's share only.
        dimensions: int. `H * W * C`.

    Returns:
        float64 array `[N]`.
    """
    return (np.asarray(prior_bits, np.float64) + np.asarray(decoder_bits_per_image, np.float64)) / dimensions
