"""The Fréchet distance between two sets of feature vectors (Heusel et al. 2017, "GANs Trained by a
Two Time-Scale Update Rule"; FID when the features are Inception's): the 2-Wasserstein distance
between Gaussians fitted to each set."""

import numpy as np


def feature_statistics(features):
    """Mean and covariance of a feature set.

    Args:
        features: float array `[N, F]`, N >= 2.

    Returns:
        `(mean [F], covariance [F, F])`, float64, the covariance with `N - 1` in the denominator.
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be an [N, F] array with N >= 2. Received: shape={features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _symmetric_sqrt(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a, features_b):
    """`|m_a - m_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))` between Gaussians fitted to two sets.

    The trace of `(C_a C_b)^(1/2)` is computed as that of the symmetric `(S C_b S)^(1/2)` with
    `S = C_a^(1/2)` (same eigenvalues), by eigendecompositions of symmetric matrices only, so it
    stays real and needs no `scipy.linalg.sqrtm`.

    Args:
        features_a: float array `[N, F]`.
        features_b: float array `[M, F]`.

    Returns:
        float >= 0 (a set against itself gives 0 up to rounding).

    Example:
    >>> frechet_distance(features, features)  # doctest: +SKIP
    0.0
    """
    mean_a, covariance_a = feature_statistics(features_a)
    mean_b, covariance_b = feature_statistics(features_b)
    root_a = _symmetric_sqrt(covariance_a)
    cross = _symmetric_sqrt(root_a @ covariance_b @ root_a)
    distance = np.sum(np.square(mean_a - mean_b)) + np.trace(covariance_a + covariance_b - 2.0 * cross)
    return float(max(distance, 0.0))
