"""The measures of `vqgen.evaluation` against NumPy / scikit-image references on small arrays."""

import math

import keras
import numpy as np
import pytest
from skimage.metrics import structural_similarity

import prior
from vqgen.evaluation import (
    bits_per_code,
    bits_per_dimension,
    build_classifier,
    codebook_usage,
    decoder_bits,
    frechet_distance,
    high_frequency_ratio,
    psnr,
    reconstruction_frechet_distance,
    ssim,
    tuple_usage,
    usage_histogram_picture,
)


@pytest.fixture
def image_pairs():
    rng = np.random.default_rng(0)
    originals = rng.uniform(size=(3, 16, 16, 2)).astype("float32")
    noisy = np.clip(originals + rng.normal(scale=0.1, size=originals.shape), 0, 1).astype("float32")
    return originals, noisy


def test_psnr_matches_numpy(image_pairs):
    originals, noisy = image_pairs
    expected = [
        10 * np.log10(1.0 / np.mean((a.astype("float64") - b) ** 2)) for a, b in zip(originals, noisy)
    ]
    np.testing.assert_allclose(psnr(originals, noisy), expected, rtol=1e-6)
    assert psnr(originals[:1], originals[:1])[0] == np.inf


def test_ssim_matches_scikit_image(image_pairs):
    originals, noisy = image_pairs
    # tf.image.ssim: 11x11 Gaussian window, sigma 1.5, population statistics, valid positions only
    expected = [
        structural_similarity(
            a,
            b,
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        for a, b in zip(originals, noisy)
    ]
    np.testing.assert_allclose(ssim(originals, noisy), expected, atol=2e-3)
    np.testing.assert_allclose(ssim(originals, originals), 1.0, atol=1e-6)


def test_codebook_usage_counts_match_numpy():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 12, size=(50, 4, 4))  # codes 12..15 never used
    usage = codebook_usage(codes, 16)
    expected = np.array([np.sum(codes == k) for k in range(16)])
    np.testing.assert_array_equal(usage["counts"], expected)
    assert usage["codes_used"] == len(np.unique(codes)) and usage["dead_codes"] == 16 - len(np.unique(codes))
    p = expected[expected > 0] / expected.sum()
    assert usage["perplexity"] == pytest.approx(np.exp(-np.sum(p * np.log(p))))
    assert codebook_usage(np.zeros((3, 2, 2), int), 4)["perplexity"] == pytest.approx(1.0)
    assert codebook_usage(np.arange(8) % 4, 4)["perplexity"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="in \\[0, 16\\)"):
        codebook_usage(np.array([16]), 16)
    picture = usage_histogram_picture(usage["counts"], height=20, bar_width=3)
    assert picture.shape == (20, 48, 3) and picture.dtype == np.uint8
    assert (picture[-1, 12 * 3] == (255, 0, 0)).all()  # a dead code: a red tick


def test_tuple_usage_counts_distinct_tuples_of_the_levels():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 4, size=(30, 3, 3, 2))  # 2 levels of K=8, codes 4..7 never used
    tuples = [tuple(row) for row in codes.reshape(-1, 2)]
    usage = tuple_usage(codes, 8)
    assert usage["tuples_used"] == len(set(tuples)) and usage["possible_tuples"] == 64
    assert usage["fraction_used"] == pytest.approx(len(set(tuples)) / 64)
    p = np.array([tuples.count(t) for t in set(tuples)]) / len(tuples)
    assert usage["perplexity"] == pytest.approx(np.exp(-np.sum(p * np.log(p))))
    # Full levels need not make many tuples: level 1 copies level 0
    assert tuple_usage(np.stack([np.arange(8)] * 2, axis=-1), 8)["tuples_used"] == 8


def test_bits_per_code_match_log_prob(randomise_weights):
    model = prior.PixelCNN(num_embeddings=8, grid_shape=(3, 4), num_layers=2, filters=8)
    model.build()
    randomise_weights(model, 0.3, seed=0)
    codes = np.random.default_rng(2).integers(0, 8, size=(5, 3, 4))
    nats = model.log_prob(codes)
    np.testing.assert_allclose(bits_per_code(nats, 12), -nats / math.log(2) / 12, rtol=1e-6)
    # Uniform logits cost exactly log2 K bits per code, log2 K * positions / dims per image dimension
    assert bits_per_code(np.array([-12 * math.log(8)]), 12)[0] == pytest.approx(3.0)
    assert bits_per_dimension(np.array([36.0]), 0.0, 72)[0] == pytest.approx(0.5)


def test_decoder_bits_of_a_discretized_gaussian():
    from scipy.stats import norm

    images = np.array([0, 10, 128, 255], "float64").reshape(1, 2, 2, 1) / 255
    means = np.array([3, 12, 120, 250], "float64").reshape(1, 2, 2, 1) / 255
    sigma = 5 / 255
    cdf = lambda v, m: norm.cdf((v - m) / 5)  # noqa: E731
    values, centres = images.ravel() * 255, means.ravel() * 255
    expected = [
        cdf(0.5, centres[0]),
        cdf(values[1] + 0.5, centres[1]) - cdf(values[1] - 0.5, centres[1]),
        cdf(values[2] + 0.5, centres[2]) - cdf(values[2] - 0.5, centres[2]),
        1 - cdf(254.5, centres[3]),
    ]
    assert decoder_bits(images, means, sigma)[0] == pytest.approx(-np.sum(np.log2(expected)), rel=1e-9)


def test_frechet_distance_of_a_set_to_itself_is_zero_and_grows_with_a_shift():
    features = np.random.default_rng(3).normal(size=(400, 16))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)
    # Equal covariances: the distance is the squared distance of the means
    assert frechet_distance(features, features + 2.0) == pytest.approx(16 * 4.0, rel=1e-6)
    rescaled = features * 3.0  # covariance 9x: tr(C + 9C - 2 * 3C) = 4 tr(C)
    expected = 4 * np.trace(np.cov(features, rowvar=False)) + np.sum(features.mean(0) ** 2 * 4)
    assert frechet_distance(features, rescaled) == pytest.approx(expected, rel=1e-6)


def _frechet_by_scipy(a, b):
    """`|m_a - m_b|^2 + tr(C_a + C_b - 2 sqrtm(C_a C_b))`, the textbook formula (FID's reference code)."""
    from scipy import linalg

    covariance_a, covariance_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(covariance_a @ covariance_b).real
    mean_term = np.sum((a.mean(0) - b.mean(0)) ** 2)
    return mean_term + np.trace(covariance_a + covariance_b - 2 * root)


def test_frechet_distance_matches_the_scipy_formula_for_unlike_covariances():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) + 0.5
    assert frechet_distance(a, b) == pytest.approx(_frechet_by_scipy(a, b), rel=1e-6)


def test_reconstruction_frechet_distance_compares_the_classifiers_features(randomise_weights):
    classifier = randomise_weights(
        build_classifier((8, 8, 1), 3, feature_dim=5), 0.3, seed=2
    )  # no dead feature
    rng = np.random.default_rng(5)
    originals = rng.uniform(size=(60, 8, 8, 1)).astype("float32")
    reconstructions = np.clip(originals + rng.normal(scale=0.2, size=originals.shape), 0, 1).astype("float32")
    assert reconstruction_frechet_distance(classifier, originals, originals) == pytest.approx(0.0, abs=1e-8)
    # By hand: the features layer of the classifier, then the textbook formula
    features = keras.Model(classifier.inputs, classifier.get_layer("features").output)
    expected = _frechet_by_scipy(
        np.asarray(features([originals]), np.float64), np.asarray(features([reconstructions]), np.float64)
    )
    assert expected > 1e-3
    assert reconstruction_frechet_distance(classifier, originals, reconstructions) == pytest.approx(
        expected, rel=1e-4
    )


def _high_band_energy_by_dft_matrices(images, cutoff):
    """The energy above `cutoff` x Nyquist of each channel's 2-D DFT, written out: DFT matrices,
    and the frequency of index k of an axis of n samples is min(k, n - k) / n cycles per pixel."""
    total = 0.0
    _, height, width, _ = images.shape
    rows = np.exp(-2j * np.pi * np.outer(np.arange(height), np.arange(height)) / height)
    columns = np.exp(-2j * np.pi * np.outer(np.arange(width), np.arange(width)) / width)
    for image in images.astype(np.float64):
        for channel in np.moveaxis(image, -1, 0):
            spectrum = rows @ channel @ columns.T
            for u in range(height):
                for v in range(width):
                    radius = np.hypot(min(u, height - u) / height, min(v, width - v) / width)
                    if radius > cutoff * 0.5:
                        total += abs(spectrum[u, v]) ** 2
    return total


def _box_blur(images):
    """The 3x3 mean of each pixel's neighbourhood (edges repeated)."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = images.shape[1:3]
    return sum(padded[:, y : y + height, x : x + width] for y in range(3) for x in range(3)) / 9


@pytest.mark.parametrize("cutoff", [0.5, 0.8])
def test_high_frequency_ratio_matches_dft_matrices(cutoff):
    rng = np.random.default_rng(6)
    originals = rng.uniform(size=(3, 12, 10, 2))  # not square: the two axes' frequencies differ
    changed = np.clip(originals + rng.normal(scale=0.3, size=originals.shape), 0, 1)
    changed[..., 1] *= 0.5  # channels weigh differently: a ratio of sums, not a mean of ratios
    expected = _high_band_energy_by_dft_matrices(changed, cutoff) / _high_band_energy_by_dft_matrices(
        originals, cutoff
    )
    assert high_frequency_ratio(originals, changed, cutoff=cutoff) == pytest.approx(expected, rel=1e-5)


def test_high_frequency_ratio_is_one_for_the_same_images_below_for_a_blur_above_for_noise():
    rng = np.random.default_rng(7)
    originals = rng.uniform(size=(4, 16, 16, 3)).astype("float32")
    assert high_frequency_ratio(originals, originals) == 1.0
    assert high_frequency_ratio(originals, originals + 0.2) == pytest.approx(1.0)  # brightness: no detail
    assert high_frequency_ratio(originals, _box_blur(originals)) < 0.5
    noisy = originals + rng.normal(scale=0.2, size=originals.shape).astype("float32")
    assert high_frequency_ratio(originals, noisy) > 1.1
    with pytest.raises(ValueError, match="no detail above the frequency cutoff"):
        high_frequency_ratio(np.full_like(originals, 0.3), originals)
    with pytest.raises(ValueError, match="cutoff"):
        high_frequency_ratio(originals, originals, cutoff=0.0)
