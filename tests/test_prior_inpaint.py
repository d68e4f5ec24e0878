"""AutoregressivePrior.inpaint (raster-order inpainting) for the PixelCNN and the Transformer: kept
codes never change, no True gives the input back, an all-True mask is plain sampling, full == cached,
greedy inpainting against a Python loop of model calls, and the argument checks."""

import numpy as np
import pytest

import prior

KINDS_AND_METHODS = [
    (prior.PixelCNN, "full"),
    (prior.PixelCNN, "cached"),
    (prior.Transformer, "full"),
    (prior.Transformer, "cached"),
]


@pytest.fixture(scope="module")
def priors(randomise_weights):
    """A tiny conditional PixelCNN and Transformer over 3x4 grids of 6 codes with random weights."""
    pixelcnn = prior.PixelCNN(6, (3, 4), num_classes=2, num_layers=2, filters=8)
    transformer = prior.Transformer(6, (3, 4), num_classes=2, num_layers=1, hidden_dim=8, num_heads=2)
    return {
        prior.PixelCNN: randomise_weights(pixelcnn, scale=0.7, seed=0),
        prior.Transformer: randomise_weights(transformer, scale=0.7, seed=1),
    }


@pytest.fixture(scope="module")
def grids_and_mask():
    generator = np.random.default_rng(0)
    codes = generator.integers(0, 6, size=(5, 3, 4)).astype("int32")
    mask = generator.random((5, 3, 4)) < 0.5
    mask[0] = False  # one grid with nothing to re-sample
    mask[1] = True  # one grid re-sampled whole
    return codes, mask


@pytest.mark.parametrize("kind, method", KINDS_AND_METHODS)
def test_kept_codes_never_change_and_no_true_gives_the_input(priors, grids_and_mask, kind, method):
    codes, mask = grids_and_mask
    labels = np.array([0, 1, 0, 1, 0], "int32")
    completed = priors[kind].inpaint(codes, mask, labels=labels, seed=4, method=method)
    assert completed.dtype == np.int32 and completed.shape == codes.shape
    np.testing.assert_array_equal(completed[~mask], codes[~mask])
    np.testing.assert_array_equal(completed[0], codes[0])
    untouched = priors[kind].inpaint(codes, np.zeros_like(mask), labels=labels, seed=4, method=method)
    np.testing.assert_array_equal(untouched, codes)


@pytest.mark.parametrize("kind", [prior.PixelCNN, prior.Transformer])
def test_full_and_cached_inpaint_alike_and_an_all_true_mask_is_sampling(priors, grids_and_mask, kind):
    codes, mask = grids_and_mask
    model, labels = priors[kind], np.array([1, 0, 1, 0, 1], "int32")
    full = model.inpaint(codes, mask, labels=labels, seed=9, method="full")
    np.testing.assert_array_equal(model.inpaint(codes, mask, labels=labels, seed=9, method="cached"), full)
    everything = model.inpaint(codes, np.ones_like(mask), labels=labels, seed=9, method="full")
    np.testing.assert_array_equal(everything, model.sample(5, labels=labels, seed=9, method="full"))


def test_greedy_inpainting_matches_a_python_loop_of_model_calls(priors, grids_and_mask):
    """At each raster position, the argmax of the logits given the grid so far where the mask is
    True, the given code where it is False."""
    codes, mask = grids_and_mask
    model, labels = priors[prior.PixelCNN], np.array([0, 0, 1, 1, 0], "int32")
    expected = np.zeros_like(codes)
    for row in range(3):
        for col in range(4):
            logits = model({"codes": expected, "labels": labels}).numpy()[:, row, col]
            drawn = np.argmax(logits, axis=-1)
            expected[:, row, col] = np.where(mask[:, row, col], drawn, codes[:, row, col])
    got = model.inpaint(codes, mask, labels=labels, top_k=1, seed=0, method="full")
    np.testing.assert_array_equal(got, expected)


def test_bad_inpainting_arguments_are_refused(priors, grids_and_mask):
    codes, mask = grids_and_mask
    model = priors[prior.PixelCNN]
    with pytest.raises(ValueError, match="mask must be a bool array"):
        model.inpaint(codes, mask.astype(int), labels=0)
    with pytest.raises(ValueError, match="mask must have the shape of the codes"):
        model.inpaint(codes, mask[:2], labels=0)
    with pytest.raises(ValueError, match="codes must lie in"):
        model.inpaint(codes + 6, mask, labels=0)
    with pytest.raises(ValueError, match="labels are required"):
        model.inpaint(codes, mask)
    with pytest.raises(ValueError, match="retrain with --label-dropout"):
        model.inpaint(codes, mask, labels=0, guidance=2.0)
