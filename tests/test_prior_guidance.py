"""prior.guidance and the CodePrior side of classifier-free guidance: drop_labels (rates 0 and 1 exact,
an intermediate rate by a binomial bound), guided_logits against NumPy, the guidance check, the
"no label" row of the label embeddings and label dropout only when training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import prior
from prior.guidance import check_guidance, drop_labels, guided_logits


def test_drop_labels_rate_0_and_1_are_exact():
    labels = np.arange(10, dtype="int32") % 4
    seeds = keras.random.SeedGenerator(0)
    np.testing.assert_array_equal(np.asarray(drop_labels(labels, 0.0, 4, seeds)), labels)
    np.testing.assert_array_equal(np.asarray(drop_labels(labels, 1.0, 4, seeds)), np.full(10, 4))


def test_drop_labels_intermediate_rate_is_binomial_and_keeps_the_rest():
    count, rate = 20_000, 0.3
    labels = np.arange(count, dtype="int32") % 7
    dropped = np.asarray(drop_labels(labels, rate, 7, keras.random.SeedGenerator(1)))
    replaced = dropped == 7
    # Kept labels are unchanged; the share replaced is within 5 standard deviations of the rate
    np.testing.assert_array_equal(dropped[~replaced], labels[~replaced])
    assert abs(replaced.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / count)


def test_guided_logits_matches_numpy():
    generator = np.random.default_rng(0)
    conditional = generator.normal(size=(3, 5)).astype("float32")
    unconditional = generator.normal(size=(3, 5)).astype("float32")
    for scale in (0.0, 1.0, 2.5):
        expected = unconditional + scale * (conditional - unconditional)
        got = np.asarray(guided_logits(conditional, unconditional, scale))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), 1e39, "2", True, None])
def test_check_guidance_refuses_a_bad_scale(bad):
    with pytest.raises(ValueError, match="guidance must be a finite number >= 0"):
        check_guidance(bad, num_classes=10, label_dropout=0.1)


def test_check_guidance_refuses_priors_without_the_no_label_class():
    assert check_guidance(1, num_classes=None, label_dropout=0.0) == 1.0
    assert check_guidance(0, num_classes=10, label_dropout=0.1) == 0.0
    with pytest.raises(ValueError, match="unconditional"):
        check_guidance(2.0, num_classes=None, label_dropout=0.0)
    with pytest.raises(ValueError, match="retrain with --label-dropout 0.1"):
        check_guidance(2.0, num_classes=10, label_dropout=0.0)


@pytest.mark.parametrize("kind", [prior.PixelCNN, prior.Transformer])
def test_label_dropout_adds_the_no_label_row_and_round_trips(kind):
    small = {"num_layers": 1} | (
        {"filters": 4} if kind is prior.PixelCNN else {"hidden_dim": 8, "num_heads": 2}
    )
    plain = kind(6, (2, 2), num_classes=3, **small)
    guided = kind(6, (2, 2), num_classes=3, label_dropout=0.2, **small)
    assert (plain.label_rows, plain.supports_guidance, plain.no_label) == (3, False, None)
    assert (guided.label_rows, guided.supports_guidance, guided.no_label) == (4, True, 3)
    # A config without label_dropout (saved before the option) builds the plain model
    config = plain.get_config()
    del config["label_dropout"]
    assert kind.from_config(config).count_params() == plain.count_params()
    assert kind.from_config(guided.get_config()).label_dropout == 0.2
    assert guided.count_params() > plain.count_params()
    with pytest.raises(ValueError, match="labels must lie in \\[0, 3\\)"):
        plain.check_sampling_arguments(2, 1.0, labels=3, seed=0)
    labels, _ = guided.check_sampling_arguments(2, 1.0, labels=3, seed=0, guidance=2.0)
    np.testing.assert_array_equal(labels, [3, 3])


def test_label_dropout_needs_labels_and_a_rate_in_range():
    with pytest.raises(ValueError, match="needs a class-conditional prior"):
        prior.PixelCNN(6, (2, 2), label_dropout=0.1, num_layers=1, filters=4)
    with pytest.raises(ValueError, match="label_dropout must be a float in \\[0, 1\\)"):
        prior.PixelCNN(6, (2, 2), num_classes=3, label_dropout=1.0, num_layers=1, filters=4)


def test_labels_are_dropped_only_when_training():
    """With rate ~1 every training label is the "no label" class: the training logits equal those of
    an inference call given label 3, while an inference call keeps the labels it is given."""
    model = prior.PixelCNN(6, (2, 3), num_classes=3, label_dropout=0.999999, num_layers=1, filters=4)
    codes = np.random.default_rng(0).integers(0, 6, size=(4, 2, 3)).astype("int32")
    labels = np.array([0, 1, 2, 0], "int32")
    no_label = np.full(4, 3, "int32")
    trained = model({"codes": codes, "labels": labels}, training=True)
    np.testing.assert_allclose(trained, model({"codes": codes, "labels": no_label}), atol=1e-6)
    inferred = model({"codes": codes, "labels": labels})
    assert not np.allclose(inferred, model({"codes": codes, "labels": no_label}))


# ---------------------------------------------------------------------- guided sampling, every loop

NUM_CLASSES = 3
KINDS_AND_METHODS = [
    (prior.PixelCNN, "full"),
    (prior.PixelCNN, "cached"),
    (prior.Transformer, "full"),
    (prior.Transformer, "cached"),
]


@pytest.fixture(scope="module")
def guided_priors(randomise_weights):
    """A tiny PixelCNN and Transformer over 3x3 grids of 5 codes, 3 classes, label dropout, random weights."""
    pixelcnn = prior.PixelCNN(5, (3, 3), num_classes=NUM_CLASSES, label_dropout=0.1, num_layers=2, filters=8)
    transformer = prior.Transformer(
        5, (3, 3), num_classes=NUM_CLASSES, label_dropout=0.1, num_layers=1, hidden_dim=8, num_heads=2
    )
    return {
        prior.PixelCNN: randomise_weights(pixelcnn, scale=0.7, seed=0),
        prior.Transformer: randomise_weights(transformer, scale=0.7, seed=1),
    }


def guided_greedy_reference(model, labels, guidance):
    """Greedy decoding from `u + s (c - u)` by a Python loop of two plain model calls per position."""
    rows, cols = model.grid_shape
    grids = np.zeros((len(labels), rows, cols), "int32")
    no_label = np.full(len(labels), model.num_classes, "int32")
    smallest_gap = np.inf
    for row in range(rows):
        for col in range(cols):
            conditional = model({"codes": grids, "labels": labels}).numpy()[:, row, col]
            unconditional = model({"codes": grids, "labels": no_label}).numpy()[:, row, col]
            mixed = unconditional + guidance * (conditional - unconditional)
            grids[:, row, col] = np.argmax(mixed, axis=-1)
            top_two = np.sort(mixed, axis=-1)[:, -2:]
            smallest_gap = min(smallest_gap, float((top_two[:, 1] - top_two[:, 0]).min()))
    return grids, smallest_gap


@pytest.mark.parametrize("kind", [prior.PixelCNN, prior.Transformer])
def test_guided_greedy_sampling_matches_two_model_calls_per_position(guided_priors, kind):
    """The full loop against NumPy; the cached loops are held to the full one below."""
    model, labels = guided_priors[kind], np.array([0, 1, 2, 1], "int32")
    expected, smallest_gap = guided_greedy_reference(model, labels, 2.5)
    assert smallest_gap > 1e-4  # the argmax is unambiguous
    got = model.sample(4, top_k=1, labels=labels, seed=0, method="full", guidance=2.5)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kind, method", KINDS_AND_METHODS)
def test_guidance_1_and_0_give_the_conditional_and_the_no_label_grids(guided_priors, kind, method):
    model, labels = guided_priors[kind], np.array([0, 1, 2, 0, 1, 2], "int32")
    plain = model.sample(6, labels=labels, seed=5, method=method)
    np.testing.assert_array_equal(model.sample(6, labels=labels, seed=5, method=method, guidance=1.0), plain)
    # The doubled batch with a scale of 1 (a tensor, as an export passes it) draws the same grids
    doubled = model.sample_codes(
        tf.constant(6),
        tf.constant(1.0),
        tf.constant(5, tf.int64),
        tf.constant(labels),
        method=method,
        guidance=tf.constant(1.0),
    )
    np.testing.assert_array_equal(doubled.numpy(), plain)
    no_label = model.sample(6, labels=NUM_CLASSES, seed=5, method=method)
    np.testing.assert_array_equal(
        model.sample(6, labels=labels, seed=5, method=method, guidance=0.0), no_label
    )
    assert not np.array_equal(plain, no_label)


@pytest.mark.parametrize("kind", [prior.PixelCNN, prior.Transformer])
def test_guided_full_and_cached_draw_the_same_grids(guided_priors, kind):
    model = guided_priors[kind]
    full = model.sample(5, labels=[0, 1, 2, 0, 1], seed=3, method="full", guidance=3.0)
    cached = model.sample(5, labels=[0, 1, 2, 0, 1], seed=3, method="cached", guidance=3.0)
    np.testing.assert_array_equal(full, cached)


def test_guidance_on_a_prior_without_label_dropout_is_refused(randomise_weights):
    model = prior.PixelCNN(5, (2, 2), num_classes=3, num_layers=1, filters=4)
    with pytest.raises(ValueError, match="retrain with --label-dropout"):
        model.sample(2, labels=1, seed=0, guidance=2.0)
    with pytest.raises(ValueError, match="trained with label dropout"):
        model.sample_codes(
            tf.constant(2),
            tf.constant(1.0),
            tf.constant(0, tf.int64),
            tf.constant([1, 1]),
            guidance=tf.constant(2.0),
        )
