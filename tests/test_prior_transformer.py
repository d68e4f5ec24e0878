"""Transformer prior: causality, likelihood, key/value-cached sampling, training, serialization, checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import prior

K = 7
TINY = dict(num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=24)


@pytest.fixture(scope="module")
def make_transformer(randomise_weights):
    """Makes tiny Transformers with every weight (biases, norms and the start token included)
    redrawn at random, so no connection is silently zero: `make_transformer(grid_shape, ...)`."""

    def make(grid_shape=(3, 4), num_classes=None, seed=0, **kwargs):
        model = prior.Transformer(K, grid_shape, num_classes=num_classes, **{**TINY, **kwargs})
        return randomise_weights(model, scale=0.5, seed=seed)

    return make


def numpy_log_prob(logits, codes):
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return np.take_along_axis(log_softmax, codes[..., None], axis=-1)[..., 0].sum(axis=(1, 2))


# ---------------------------------------------------------------------- causality


def perturbation_effects(model, labels=None):
    """effect[p, r, c] = max |change of logits at (r, c)| when only code p changes."""
    rows, cols = model.grid_shape
    rng = np.random.default_rng(1)
    base = rng.integers(0, K, size=(rows * cols,))
    grids = np.repeat(base[None], rows * cols + 1, axis=0)
    for position in range(rows * cols):
        grids[position + 1, position] = (base[position] + 1 + rng.integers(0, K - 1)) % K
    grids = grids.reshape(-1, rows, cols).astype("int32")
    inputs = grids if labels is None else {"codes": grids, "labels": np.full(len(grids), labels)}
    logits = model(inputs).numpy()
    return np.abs(logits[1:] - logits[:1]).max(axis=-1).reshape(rows * cols, rows, cols)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_logits_depend_on_every_earlier_position_and_on_no_other(make_transformer, num_classes):
    model = make_transformer((4, 4), num_classes)
    effects = perturbation_effects(model, labels=None if num_classes is None else 2)
    positions = 16
    for changed in range(positions):
        for position in range(positions):
            effect = effects[changed].reshape(-1)[position]
            if changed < position:  # every earlier code is seen (attention reaches the whole past)
                assert effect > 1e-4, (changed, position)
            else:  # its own and later codes are never seen
                assert effect == 0.0, (changed, position)


def test_first_position_depends_only_on_the_label(make_transformer):
    model = make_transformer((3, 3), num_classes=4)
    codes = np.random.default_rng(2).integers(0, K, size=(8, 3, 3)).astype("int32")
    same_label = model({"codes": codes, "labels": np.full(8, 1)}).numpy()[:, 0, 0]
    np.testing.assert_array_equal(same_label, np.repeat(same_label[:1], 8, axis=0))  # codes do not matter
    other_labels = model({"codes": codes, "labels": np.arange(8) % 4}).numpy()[:, 0, 0]
    assert np.abs(other_labels[1] - other_labels[0]).max() > 1e-3  # labels do
    unconditional = make_transformer((3, 3)).predict(codes, verbose=0)[:, 0, 0]
    np.testing.assert_array_equal(unconditional, np.repeat(unconditional[:1], 8, axis=0))


# ---------------------------------------------------------------------- likelihood


@pytest.mark.parametrize("num_classes", [None, 4])
def test_log_prob_matches_numpy_log_softmax_sum(make_transformer, num_classes):
    model = make_transformer((3, 4), num_classes)
    rng = np.random.default_rng(3)
    codes = rng.integers(0, K, size=(6, 3, 4)).astype("int32")
    labels = None if num_classes is None else rng.integers(0, num_classes, size=6).astype("int32")
    logits = model(codes if labels is None else {"codes": codes, "labels": labels}).numpy()
    np.testing.assert_allclose(model.log_prob(codes, labels), numpy_log_prob(logits, codes), rtol=1e-5)


def test_probabilities_of_all_grids_sum_to_one(make_transformer):
    model = make_transformer((2, 2), dropout=0.3)  # dropout is off outside training
    grids = np.stack(np.meshgrid(*[np.arange(K)] * 4, indexing="ij"), -1).reshape(-1, 2, 2).astype("int32")
    assert np.exp(model.log_prob(grids).astype("float64")).sum() == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------------- key/value-cached sampling


def test_call_with_cache_gives_the_full_pass_logits_position_by_position(make_transformer):
    model = make_transformer((3, 3), num_classes=3)
    codes = np.random.default_rng(4).integers(0, K, size=(5, 3, 3)).astype("int32")
    labels = np.array([0, 1, 2, 0, 1], "int32")
    full = model({"codes": codes, "labels": labels}).numpy().reshape(5, 9, K)
    cache, previous = model.initial_cache(5), np.zeros(5, "int32")
    for index in range(9):
        logits, cache = model.call_with_cache(previous, cache, tf.constant(index), labels)
        np.testing.assert_allclose(logits.numpy(), full[:, index], atol=1e-4, rtol=0)
        previous = codes.reshape(5, 9)[:, index]


@pytest.mark.parametrize(
    "grid_shape, num_classes, temperature, top_k",
    [((3, 4), None, 1.0, None), ((4, 3), 3, 0.7, 3), ((1, 1), 2, 2.0, None)],
)
def test_cached_sampler_draws_the_full_samplers_grids(
    make_transformer, grid_shape, num_classes, temperature, top_k
):
    model = make_transformer(grid_shape, num_classes, seed=5)
    labels = None if num_classes is None else np.arange(6) % num_classes
    drawn = []
    for seed in (0, 12345):
        cached = model.sample(6, temperature, top_k, labels, seed=seed, method="cached")
        full = model.sample(6, temperature, top_k, labels, seed=seed, method="full")
        np.testing.assert_array_equal(cached, full)
        drawn.append(cached)
    np.testing.assert_array_equal(model.sample(6, temperature, top_k, labels, seed=12345), cached)  # auto
    assert cached.dtype == np.int32 and cached.shape == (6, *grid_shape)
    if grid_shape != (1, 1):
        assert not np.array_equal(drawn[0], drawn[1])  # the seed matters


def test_labels_steer_the_samples(make_transformer):
    model = make_transformer((3, 3), num_classes=3, seed=6)
    first = model.sample(8, labels=0, seed=3, method="cached")
    second = model.sample(8, labels=2, seed=3, method="cached")
    assert not np.array_equal(first, second)


def test_top_1_at_any_temperature_is_the_greedy_grid(make_transformer):
    model = make_transformer((2, 3), seed=7)
    greedy = np.zeros((4, 6), "int32")
    for position in range(6):
        logits = model.predict(greedy.reshape(4, 2, 3), verbose=0).reshape(4, 6, K)
        greedy[:, position] = logits[:, position].argmax(-1)
    np.testing.assert_array_equal(model.sample(4, temperature=5.0, top_k=1, seed=9), greedy.reshape(4, 2, 3))


# ---------------------------------------------------------------------- training and serialization


@pytest.mark.slow
def test_fit_lowers_the_loss_and_logs_bits_per_code():
    keras.utils.set_random_seed(0)
    model = prior.Transformer(K, (3, 3), num_classes=2, **TINY, dropout=0.1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    labels = np.arange(64) % 2
    codes = (np.arange(9).reshape(1, 3, 3) * (labels[:, None, None] + 1)) % K  # two fixed grids
    history = model.fit({"codes": codes, "labels": labels}, epochs=4, batch_size=16, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    np.testing.assert_allclose(history["bits_per_code"], np.array(history["loss"]) / np.log(2), rtol=1e-5)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_keras_file_round_trip_gives_identical_logits(make_transformer, tmp_path, num_classes):
    model = make_transformer((3, 3), num_classes, dropout=0.2)
    path = str(tmp_path / "transformer.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, prior.Transformer) and restored.get_config() == model.get_config()
    codes = np.random.default_rng(8).integers(0, K, size=(4, 3, 3)).astype("int32")
    labels = None if num_classes is None else np.array([0, 1, 2, 0])
    inputs = codes if labels is None else {"codes": codes, "labels": labels}
    np.testing.assert_array_equal(restored(inputs).numpy(), model(inputs).numpy())


def test_get_config_round_trip_and_settings_defaults():
    model = prior.Transformer(K, (2, 3), num_classes=5)
    assert prior.Transformer.from_config(model.get_config()).get_config() == model.get_config()
    defaults = prior.TransformerSettings()
    assert {name: model.get_config()[name] for name in vars(defaults)} == vars(defaults)
    assert keras.saving.get_registered_name(prior.Transformer) == "prior>Transformer"


def test_compiled_samplers_are_built_once_per_configuration(make_transformer):
    model = make_transformer((2, 2))
    model.sample(2, seed=0)
    model.sample(3, temperature=0.5, seed=1)
    keys = sorted(key for key in model._compiled_functions.by_key if key[0] == "sample")
    assert keys == [("sample", "cached", True, True, True, True)]
    assert not any("compiled" in path for path in (v.path for v in model.variables))


# ---------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_embeddings=1), "num_embeddings"),
        (dict(grid_shape=(0, 3)), "grid_shape"),
        (dict(num_classes=0), "num_classes"),
        (dict(num_layers=0), "num_layers"),
        (dict(hidden_dim=30, num_heads=4), "num_heads"),
        (dict(intermediate_dim=0), "intermediate_dim"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_invalid_constructor_arguments_raise(kwargs, message):
    arguments = {"num_embeddings": K, "grid_shape": (2, 2), **TINY, **kwargs}
    with pytest.raises(ValueError, match=message):
        prior.Transformer(**arguments)


def test_bad_codes_labels_and_sampling_arguments_are_refused(make_transformer):
    unconditional, conditional = make_transformer((2, 2)), make_transformer((2, 2), num_classes=2)
    with pytest.raises(ValueError, match="shape"):
        unconditional.log_prob(np.zeros((1, 3, 2), "int32"))
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        unconditional.log_prob(np.full((1, 2, 2), K))
    with pytest.raises(ValueError, match="labels are required"):
        conditional.sample(2, seed=0)
    with pytest.raises(ValueError, match="class-conditional"):
        conditional(np.zeros((1, 2, 2), "int32"))
    with pytest.raises(ValueError, match="top_k"):
        unconditional.sample(2, top_k=K + 1)
    with pytest.raises(ValueError, match="method"):
        unconditional.sample(2, method="beam")


# ---------------------------------------------------------------------- position embeddings


def test_grid_position_embeddings_are_row_plus_column_vectors_with_a_dense_gradient():
    from prior.transformer import grid_position_embeddings

    rows, cols, width = 3, 4, 5
    row_layer, column_layer = keras.layers.Embedding(rows, width), keras.layers.Embedding(cols, width)
    row_layer.build((None,))
    column_layer.build((None,))
    rng = np.random.default_rng(0)
    row_table, column_table = rng.normal(size=(rows, width)), rng.normal(size=(cols, width))
    row_layer.embeddings.assign(row_table)
    column_layer.embeddings.assign(column_table)
    index = np.array([[0, 5, 11], [7, 7, 7]])  # repeated positions, as every grid of a batch has
    upstream = rng.normal(size=(2, 3, width)).astype("float32")
    with tf.GradientTape() as tape:
        vectors = grid_position_embeddings(row_layer, column_layer, tf.constant(index), cols)
        loss = tf.reduce_sum(vectors * upstream)
    gradient = tape.gradient(loss, row_layer.embeddings.value)

    expected = row_table[index // cols] + column_table[index % cols]
    np.testing.assert_allclose(vectors.numpy(), expected, rtol=0, atol=1e-6)
    # The dense sum per row: Keras' Adam squares each slice of an IndexedSlices gradient before summing
    # repeats, so a sparse gradient would give a second moment that depends on the batch's split.
    assert isinstance(gradient, tf.Tensor)
    expected_gradient = np.zeros((rows, width))
    np.add.at(expected_gradient, index // cols, upstream)
    np.testing.assert_allclose(gradient.numpy(), expected_gradient, rtol=0, atol=1e-5)
