"""The measures of `vqgen.evaluation` against NumPy / scikit-image references on small arrays."""

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

import prior
from vqgen.evaluation import (
    bits_per_code,
    bits_per_dimension,
    codebook_usage,
    decoder_bits,
    frechet_distance,
    psnr,
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
