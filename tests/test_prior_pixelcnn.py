"""PixelCNN: likelihood, training, serialization and input validation."""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import prior


def small_prior(num_embeddings=5, grid_shape=(3, 4), num_classes=None, seed=0):
    model = prior.PixelCNN(
        num_embeddings, grid_shape, num_classes=num_classes, num_layers=2, filters=8, kernel_size=3
    )
    model.build()
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


def numpy_log_prob(logits, codes):
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_softmax, codes[..., None], axis=-1)[..., 0]
    return picked.sum(axis=(1, 2))


@pytest.mark.parametrize("num_classes", [None, 4])
def test_log_prob_matches_numpy_log_softmax_sum(num_classes):
    model = small_prior(num_classes=num_classes)
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, size=(6, 3, 4)).astype("int32")
    labels = None if num_classes is None else rng.integers(0, num_classes, size=6)
    inputs = codes if labels is None else {"codes": codes, "labels": labels}
    expected = numpy_log_prob(model(inputs).numpy(), codes)
    result = model.log_prob(codes, labels)
    assert result.dtype == np.float32 and result.shape == (6,)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-4)


def test_probabilities_of_all_grids_sum_to_one():
    # Exact normalisation over every 2x2 grid of 3 codes needs causal logits.
    model = small_prior(num_embeddings=3, grid_shape=(2, 2))
    grids = np.array(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)
    assert math.isclose(np.exp(model.log_prob(grids).astype("float64")).sum(), 1.0, rel_tol=1e-4)


def test_call_returns_float32_logits_of_the_grid_shape():
    model = small_prior(num_classes=2)
    logits = model({"codes": np.zeros((3, 3, 4), "int32"), "labels": np.array([0, 1, 1])})
    assert logits.shape == (3, 3, 4, 5) and logits.dtype == tf.float32


def structured_codes(count, seed=0):
    """Grids that repeat one random code (of 8) everywhere: easy to learn."""
    values = np.random.default_rng(seed).integers(0, 8, size=count)
    return np.broadcast_to(values[:, None, None], (count, 4, 4)).astype("int32")


@pytest.mark.slow
def test_fit_on_codes_then_on_a_dataset_of_codes_lowers_loss_and_logs_bits_per_code():
    model = prior.PixelCNN(8, (4, 4), num_layers=2, filters=16, kernel_size=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    codes = structured_codes(128)
    before = model.evaluate(codes, batch_size=64, verbose=0, return_dict=True)
    on_arrays = model.fit(codes, epochs=2, batch_size=32, verbose=0).history
    dataset = tf.data.Dataset.from_tensor_slices(codes).shuffle(128, seed=0).batch(32)
    on_dataset = model.fit(dataset, epochs=2, verbose=0).history
    after = model.evaluate(codes, batch_size=64, verbose=0, return_dict=True)
    assert after["loss"] < 0.7 * before["loss"]
    losses = on_arrays["loss"] + on_dataset["loss"]
    assert losses[-1] < losses[0]
    for logs in (before, after):
        assert math.isclose(logs["bits_per_code"], logs["loss"] / math.log(2), rel_tol=1e-4)
    assert len(on_arrays["bits_per_code"]) == len(on_dataset["bits_per_code"]) == 2
    nats_per_code = -model.log_prob(codes).mean() / 16
    assert math.isclose(after["loss"], nats_per_code, rel_tol=1e-3)


@pytest.mark.slow
def test_fit_accepts_a_dataset_of_code_and_label_dicts():
    model = prior.PixelCNN(8, (4, 4), num_classes=8, num_layers=2, filters=16, kernel_size=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    codes = structured_codes(64, seed=1)
    labels = codes[:, 0, 0]  # the label announces the repeated code
    dataset = tf.data.Dataset.from_tensor_slices({"codes": codes, "labels": labels}).batch(16)
    history = model.fit(dataset, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert "bits_per_code" in history


def test_fit_with_targets_is_rejected():
    model = small_prior()
    model.compile(optimizer="adam")
    codes = np.zeros((4, 3, 4), "int32")
    with pytest.raises(ValueError, match="x only"):
        model.fit(codes, codes, verbose=0)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_keras_file_round_trip_gives_identical_logits(tmp_path, num_classes):
    model = small_prior(num_classes=num_classes)
    codes = np.random.default_rng(2).integers(0, 5, size=(2, 3, 4)).astype("int32")
    inputs = codes if num_classes is None else {"codes": codes, "labels": np.array([0, 2])}
    path = tmp_path / "prior.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, prior.PixelCNN)
    np.testing.assert_array_equal(restored(inputs).numpy(), model(inputs).numpy())
    assert restored.get_config() == model.get_config()


def test_get_config_round_trip():
    model = prior.PixelCNN(11, (6, 5), num_classes=4, num_layers=3, filters=12, kernel_size=5)
    config = model.get_config()
    for key, value in dict(
        num_embeddings=11, grid_shape=(6, 5), num_classes=4, num_layers=3, filters=12, kernel_size=5
    ).items():
        assert config[key] == value
    clone = prior.PixelCNN.from_config(config)
    assert clone.get_config() == config
    clone.build()
    model.build()
    clone.set_weights(model.get_weights())
    codes = np.ones((1, 6, 5), "int32")
    inputs = {"codes": codes, "labels": np.array([3])}
    np.testing.assert_array_equal(clone(inputs).numpy(), model(inputs).numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_embeddings=1), "num_embeddings"),
        (dict(num_embeddings=4.0), "num_embeddings"),
        (dict(grid_shape=(7,)), "grid_shape"),
        (dict(grid_shape=(7, 0)), "grid_shape"),
        (dict(num_classes=0), "num_classes"),
        (dict(num_layers=0), "num_layers"),
        (dict(filters=0), "filters"),
        (dict(kernel_size=4), "kernel_size"),
        (dict(kernel_size=1), "kernel_size"),
    ],
)
def test_invalid_constructor_arguments_raise(kwargs, message):
    arguments = {**dict(num_embeddings=8, grid_shape=(7, 7)), **kwargs}
    with pytest.raises(ValueError, match=message):
        prior.PixelCNN(**arguments)


def test_check_codes_returns_int32_arrays():
    model = small_prior(num_classes=3)
    codes, labels = model.check_codes(np.zeros((2, 3, 4), "int64"), [0, 2])
    assert codes.dtype == np.int32 and labels.dtype == np.int32


@pytest.mark.parametrize(
    "num_classes, codes, labels, message",
    [
        (None, np.full((2, 3, 4), 5), None, r"\[0, 5\)"),
        (None, np.full((2, 3, 4), -1), None, r"\[0, 5\)"),
        (None, np.zeros((2, 4, 3), int), None, "grid_shape"),
        (None, np.zeros((3, 4), int), None, "grid_shape"),
        (None, np.zeros((2, 3, 4)), None, "integer"),
        (None, np.zeros((2, 3, 4), int), [0, 1], "unconditional"),
        (3, np.zeros((2, 3, 4), int), None, "required"),
        (3, np.zeros((2, 3, 4), int), [0, 3], r"\[0, 3\)"),
        (3, np.zeros((2, 3, 4), int), [0], "expected 2 labels"),
        (3, np.zeros((2, 3, 4), int), [0.0, 1.0], "integer"),
    ],
)
def test_check_codes_and_log_prob_reject_bad_inputs(num_classes, codes, labels, message):
    model = small_prior(num_classes=num_classes)
    with pytest.raises(ValueError, match=message):
        model.check_codes(codes, labels)
    with pytest.raises(ValueError, match=message):
        model.log_prob(codes, labels)


def test_calling_with_the_wrong_input_structure_raises():
    unconditional, conditional = small_prior(), small_prior(num_classes=2)
    codes = np.zeros((1, 3, 4), "int32")
    with pytest.raises(ValueError, match="unconditional"):
        unconditional({"codes": codes, "labels": np.array([0])})
    with pytest.raises(ValueError, match="class-conditional"):
        conditional(codes)


def test_compute_loss_with_sample_weight_is_the_weighted_mean_nats_per_code():
    # Keras drops array sample weights when y is None, so weights reach
    # compute_loss only from (x, None, weight) batches; check it directly.
    model = small_prior()
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 5, size=(6, 3, 4)).astype("int32")
    weights = np.array([0.0, 1.0, 2.0, 0.5, 0.0, 3.0], "float32")
    loss = float(model.compute_loss(x=codes, y_pred=model(codes), sample_weight=weights))
    nats_per_code = -model.log_prob(codes).astype("float64") / 12
    assert math.isclose(loss, (weights * nats_per_code).sum() / weights.sum(), rel_tol=1e-5)
