"""VectorQuantizer against independent references: NumPy brute force, analytic gradients, NumPy EMA."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen import VectorQuantizer


def brute_force_nearest(z, codebook):
    """Index of the nearest codebook row of every row of z, by explicit differences."""
    differences = z[:, None, :] - codebook[None, :, :]  # (N, K, D)
    return np.argmin(np.sum(differences**2, axis=-1), axis=1)


@pytest.mark.parametrize("ema", [False, True])
def test_indices_equal_numpy_brute_force(ema):
    rng = np.random.default_rng(0)
    quantizer = VectorQuantizer(num_embeddings=37, embedding_dim=5, ema=ema)
    quantizer.build((None, 5))
    codebook = rng.normal(size=(37, 5)).astype("float32")
    quantizer.codebook.assign(codebook)
    z = rng.normal(size=(3, 6, 4, 5)).astype("float32")
    expected = brute_force_nearest(z.reshape(-1, 5), codebook).reshape(3, 6, 4)
    np.testing.assert_array_equal(quantizer.indices(z).numpy(), expected)
    np.testing.assert_allclose(quantizer.lookup(expected).numpy(), codebook[expected])
    np.testing.assert_allclose(quantizer(z).numpy(), codebook[expected], atol=1e-6)


def test_straight_through_gradient_is_the_upstream_gradient():
    rng = np.random.default_rng(1)
    quantizer = VectorQuantizer(num_embeddings=8, embedding_dim=3)
    z = tf.constant(rng.normal(size=(2, 4, 4, 3)).astype("float32"))
    weights = tf.constant(rng.normal(size=(2, 4, 4, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(z)
        output = tf.reduce_sum(weights * quantizer(z, training=True))
    np.testing.assert_array_equal(tape.gradient(output, z).numpy(), weights.numpy())


def gradient_norms(loss_fn, variables):
    with tf.GradientTape() as tape:
        loss = loss_fn()
    gradients = tape.gradient(loss, variables)
    return [0.0 if g is None else float(tf.norm(g)) for g in gradients]


def test_each_loss_term_reaches_only_its_variables():
    rng = np.random.default_rng(2)
    encoder = keras.layers.Dense(4, name="encoder")
    decoder = keras.layers.Dense(6, name="decoder")
    x = tf.constant(rng.normal(size=(16, 6)).astype("float32"))
    encoder.build((None, 6))
    decoder.build((None, 4))

    # beta=0, gradient codebook: the loss is the codebook term only.
    codebook_only = VectorQuantizer(num_embeddings=5, embedding_dim=4, beta=0.0)
    codebook_only.build((None, 4))
    variables = [codebook_only.codebook, encoder.kernel]
    codebook_grad, encoder_grad = gradient_norms(
        lambda: codebook_only.quantize_with_stats(encoder(x), training=True).loss, variables
    )
    assert codebook_grad > 0 and encoder_grad == 0

    # EMA codebook: the loss is beta * commitment, which reaches the encoder only.
    commitment_only = VectorQuantizer(num_embeddings=5, embedding_dim=4, ema=True)
    commitment_only.build((None, 4))
    variables = [commitment_only.codebook, encoder.kernel]
    codebook_grad, encoder_grad = gradient_norms(
        lambda: commitment_only.quantize_with_stats(encoder(x), training=False).loss, variables
    )
    assert codebook_grad == 0 and encoder_grad > 0

    # Reconstruction reaches encoder and decoder through the straight-through copy, never the codebook.
    variables = [codebook_only.codebook, encoder.kernel, decoder.kernel]
    codebook_grad, encoder_grad, decoder_grad = gradient_norms(
        lambda: tf.reduce_mean((decoder(codebook_only(encoder(x))) - x) ** 2), variables
    )
    assert codebook_grad == 0 and encoder_grad > 0 and decoder_grad > 0


def test_commitment_and_codebook_terms_match_their_formulas():
    rng = np.random.default_rng(3)
    quantizer = VectorQuantizer(num_embeddings=6, embedding_dim=2, beta=0.4)
    quantizer.build((None, 2))
    codebook = quantizer.codebook.numpy()
    z = rng.normal(size=(10, 2)).astype("float32")
    z_q = codebook[brute_force_nearest(z, codebook)]
    expected = (1 + 0.4) * np.mean((z - z_q) ** 2)
    np.testing.assert_allclose(quantizer.quantize_with_stats(z).loss.numpy(), expected, rtol=1e-5)


def numpy_ema_step(z, codebook, cluster_size, embedding_sum, decay, epsilon):
    """One EMA update of the paper's appendix A.1, with Laplace smoothing."""
    K = codebook.shape[0]
    assignment = brute_force_nearest(z, codebook)
    one_hot = np.eye(K)[assignment]  # (N, K)
    cluster_size = decay * cluster_size + (1 - decay) * one_hot.sum(axis=0)
    embedding_sum = decay * embedding_sum + (1 - decay) * one_hot.T @ z
    n = cluster_size.sum()
    smoothed = (cluster_size + epsilon) / (n + K * epsilon) * n
    return embedding_sum / smoothed[:, None], cluster_size, embedding_sum


def test_one_ema_step_equals_numpy_update_rule():
    rng = np.random.default_rng(4)
    K, D = 9, 3
    quantizer = VectorQuantizer(num_embeddings=K, embedding_dim=D, ema=True, decay=0.9, epsilon=1e-3)
    quantizer.build((None, D))
    codebook = rng.normal(size=(K, D))
    cluster_size = rng.uniform(0.5, 3.0, size=K)
    embedding_sum = rng.normal(size=(K, D))
    quantizer.codebook.assign(codebook.astype("float32"))
    quantizer.ema_cluster_size.assign(cluster_size.astype("float32"))
    quantizer.ema_embedding_sum.assign(embedding_sum.astype("float32"))
    z = rng.normal(size=(50, D))
    expected = numpy_ema_step(z, codebook, cluster_size, embedding_sum, 0.9, 1e-3)
    quantizer(z.astype("float32"), training=True)
    np.testing.assert_allclose(quantizer.codebook.numpy(), expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(quantizer.ema_cluster_size.numpy(), expected[1], rtol=1e-5)
    np.testing.assert_allclose(quantizer.ema_embedding_sum.numpy(), expected[2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ema", [False, True])
def test_inference_leaves_the_codebook_untouched(ema):
    quantizer = VectorQuantizer(
        num_embeddings=8, embedding_dim=2, ema=ema, restart_after_steps=1, init_from_data=True
    )
    z = tf.random.normal((32, 2))
    quantizer(z, training=False)
    before = [v.numpy().copy() for v in quantizer.weights]
    quantizer(z, training=False)
    quantizer.indices(z)
    for old, variable in zip(before, quantizer.weights):
        np.testing.assert_array_equal(old, variable.numpy())


@pytest.mark.slow
@pytest.mark.parametrize("ema", [False, True])
def test_dead_code_restart_revives_a_collapsed_codebook(ema):
    rng = np.random.default_rng(5)
    K, D = 64, 8
    centres = rng.normal(size=(K, D)).astype("float32") * 3
    quantizer = VectorQuantizer(num_embeddings=K, embedding_dim=D, ema=ema, restart_after_steps=5, seed=0)
    quantizer.build((None, D))
    quantizer.codebook.assign(np.tile(centres[:1], (K, 1)))  # every code identical: collapsed
    if ema:
        quantizer.ema_embedding_sum.assign(quantizer.codebook.numpy())
    optimizer = keras.optimizers.SGD(0.1)

    @tf.function
    def step(z):
        with tf.GradientTape() as tape:
            loss = quantizer.quantize_with_stats(z, training=True).loss
        if not ema:
            optimizer.apply([tape.gradient(loss, quantizer.codebook)], [quantizer.codebook])

    def batch():
        return centres[rng.integers(0, K, 256)] + 0.05 * rng.normal(size=(256, D)).astype("float32")

    evaluation = batch()
    assert len(np.unique(quantizer.indices(evaluation))) == 1
    for _ in range(300):
        step(tf.constant(batch()))
    used = len(np.unique(quantizer.indices(np.concatenate([batch() for _ in range(8)]))))
    assert used / K > 0.9


def test_init_from_data_copies_first_batch_vectors():
    z = np.random.default_rng(6).normal(size=(40, 3)).astype("float32")
    quantizer = VectorQuantizer(num_embeddings=16, embedding_dim=3, init_from_data=True, seed=1)
    quantizer(z, training=True)
    codebook = quantizer.codebook.numpy()
    distances = np.min(np.sum((codebook[:, None] - z[None]) ** 2, axis=-1), axis=1)
    np.testing.assert_allclose(distances, 0.0, atol=1e-10)


def test_distances_stay_float32_under_mixed_precision():
    rng = np.random.default_rng(7)
    quantizer = VectorQuantizer(num_embeddings=300, embedding_dim=16, dtype="mixed_float16")
    quantizer.build((None, 16))
    # Codes closer together than float16 can resolve at this magnitude.
    base = rng.normal(size=(1, 16)).astype("float32")
    codebook = base + rng.normal(size=(300, 16)).astype("float32") * 1e-2
    quantizer.codebook.assign(codebook)
    z = base + rng.normal(size=(64, 16)).astype("float32") * 1e-2
    expected = brute_force_nearest(z.astype("float64"), codebook.astype("float64"))
    half_precision = np.argmin(
        np.sum(z.astype("float16") ** 2, 1, keepdims=True)
        - 2 * z.astype("float16") @ codebook.astype("float16").T
        + np.sum(codebook.astype("float16") ** 2, 1),
        axis=1,
    )
    assert np.mean(half_precision != expected) > 0.5  # float16 distances would get this wrong
    np.testing.assert_array_equal(quantizer.indices(z).numpy(), expected)
    output = quantizer(z)
    assert output.dtype == tf.float16 and quantizer.codebook.dtype == "float32"


def test_usage_statistics_match_histogram():
    quantizer = VectorQuantizer(num_embeddings=4, embedding_dim=1)
    quantizer.build((None, 1))
    quantizer.codebook.assign(np.array([[0.0], [10.0], [20.0], [30.0]], "float32"))
    z = np.array([[0.1], [0.2], [9.9], [10.1]], "float32")  # codes 0, 0, 1, 1
    result = quantizer.quantize_with_stats(z)
    np.testing.assert_allclose(result.statistics["perplexity"].numpy(), 2.0, rtol=1e-5)
    np.testing.assert_allclose(result.statistics["codes_used"].numpy(), 0.5)
    assert tuple(result.statistics) == quantizer.statistic_names


def test_bad_inputs_raise_one_line_errors():
    quantizer = VectorQuantizer(num_embeddings=8, embedding_dim=4)
    with pytest.raises(ValueError, match="embedding_dim"):
        quantizer(tf.zeros((2, 3, 3, 5)))
    quantizer.build((None, 4))
    with pytest.raises(ValueError, match=r"codes must be in \[0, 8\)"):
        quantizer.lookup(np.array([[0, 8]]))
    with pytest.raises(ValueError, match=r"codes must be in \[0, 8\)"):
        quantizer.lookup(np.array([[-1, 0]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"codes must be in \[0, 8\)"):
        tf.function(quantizer.lookup)(tf.constant([[3, 9]]))
    for kwargs in ({"num_embeddings": 1}, {"decay": 1.0}, {"epsilon": 0}, {"restart_after_steps": 0}):
        with pytest.raises(ValueError, match="Received"):
            VectorQuantizer(**{"num_embeddings": 8, "embedding_dim": 4, **kwargs})


def test_config_and_keras_file_round_trip(tmp_path):
    quantizer = VectorQuantizer(
        num_embeddings=12,
        embedding_dim=3,
        beta=0.3,
        ema=True,
        decay=0.95,
        restart_after_steps=7,
        init_from_data=True,
        seed=3,
    )
    clone = VectorQuantizer.from_config(quantizer.get_config())
    assert clone.get_config() == quantizer.get_config()

    inputs = keras.Input((4, 4, 2))
    features = keras.layers.Conv2D(3, 1)(inputs)
    outputs = keras.layers.Conv2D(2, 1)(quantizer(features))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(8).uniform(size=(16, 4, 4, 2)).astype("float32")
    model.fit(x, x, epochs=1, batch_size=8, verbose=0)  # the commitment loss rides on add_loss
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    loaded_quantizer = [layer for layer in loaded.layers if isinstance(layer, VectorQuantizer)][0]
    np.testing.assert_array_equal(
        loaded_quantizer.ema_cluster_size.numpy(), quantizer.ema_cluster_size.numpy()
    )


# ---------------------------------------------------------------- factorized, l2-normalised codes


def unit_rows(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def projected(quantizer, z):
    """The code-space rows of z by NumPy, from the layer's own projection weights (float64)."""
    p = z.astype("float64")
    if quantizer.codebook_dim is not None:
        p = (
            p @ quantizer.projection.input_projection.numpy()
            + quantizer.projection.input_projection_bias.numpy()
        )
    return unit_rows(p) if quantizer.l2_normalize else p


def test_cosine_nearest_codes_equal_numpy_brute_force():
    rng = np.random.default_rng(10)
    K, D = 37, 5
    quantizer = VectorQuantizer(num_embeddings=K, embedding_dim=D, l2_normalize=True)
    quantizer.build((None, D))
    # Codes of very different lengths: a Euclidean nearest code would differ from the cosine one.
    codebook = rng.normal(size=(K, D)) * rng.uniform(0.1, 10.0, size=(K, 1))
    quantizer.codebook.assign(codebook.astype("float32"))
    z = rng.normal(size=(200, D)) * 3.0
    cosine = unit_rows(z) @ unit_rows(codebook).T  # (N, K)
    top_two = np.sort(cosine, axis=1)[:, -2:]
    assert np.min(top_two[:, 1] - top_two[:, 0]) > 1e-5  # distinct maxima: the answer is unique
    expected = np.argmax(cosine, axis=1)
    assert np.mean(expected != brute_force_nearest(z, codebook)) > 0.2  # cosine is not Euclidean here
    np.testing.assert_array_equal(quantizer.indices(z.astype("float32")).numpy(), expected)
    normalised = unit_rows(codebook)
    np.testing.assert_allclose(quantizer.lookup(expected).numpy(), normalised[expected], atol=1e-6)
    np.testing.assert_allclose(quantizer(z.astype("float32")).numpy(), normalised[expected], atol=1e-6)


@pytest.mark.parametrize("l2_normalize", [False, True])
def test_factorized_indices_equal_numpy_brute_force_in_the_projected_space(l2_normalize):
    rng = np.random.default_rng(11)
    K, D, C = 29, 6, 3
    quantizer = VectorQuantizer(num_embeddings=K, embedding_dim=D, codebook_dim=C, l2_normalize=l2_normalize)
    quantizer.build((None, D))
    assert quantizer.codebook.shape == (K, C)
    quantizer.codebook.assign(rng.normal(size=(K, C)).astype("float32"))
    quantizer.projection.input_projection_bias.assign(rng.normal(size=C).astype("float32"))
    quantizer.projection.output_projection_bias.assign(rng.normal(size=D).astype("float32"))
    z = rng.normal(size=(4, 5, 5, D)).astype("float32")
    codes = quantizer.codebook.numpy().astype("float64")
    codes = unit_rows(codes) if l2_normalize else codes
    expected = brute_force_nearest(projected(quantizer, z.reshape(-1, D)), codes)
    np.testing.assert_array_equal(quantizer.indices(z).numpy().reshape(-1), expected)
    decoded = (
        codes[expected] @ quantizer.projection.output_projection.numpy()
        + quantizer.projection.output_projection_bias.numpy()
    )
    np.testing.assert_allclose(quantizer.lookup(expected).numpy(), decoded, atol=1e-5)
    np.testing.assert_allclose(quantizer(z).numpy().reshape(-1, D), decoded, atol=1e-5)
    result = quantizer.quantize_with_stats(z)
    # The losses live in the code space: (1 + beta) * mean squared distance to the chosen code.
    code_space = projected(quantizer, z.reshape(-1, D))
    distance = np.mean((code_space - codes[expected]) ** 2)
    np.testing.assert_allclose(result.loss.numpy(), (1 + quantizer.beta) * distance, rtol=1e-5)


def test_factorized_straight_through_gradient_matches_the_analytic_one():
    rng = np.random.default_rng(12)
    N, D, C = 6, 4, 2
    quantizer = VectorQuantizer(num_embeddings=5, embedding_dim=D, codebook_dim=C, l2_normalize=True)
    quantizer.build((None, D))
    quantizer.projection.input_projection_bias.assign(rng.normal(size=C).astype("float32"))
    z = tf.constant(rng.normal(size=(N, D)).astype("float32"))
    weights = rng.normal(size=(N, D))
    with tf.GradientTape() as tape:
        tape.watch(z)
        output = tf.reduce_sum(weights.astype("float32") * quantizer(z))
    gradient_z, gradient_out = tape.gradient(output, [z, quantizer.projection.output_projection])
    # By hand: u = z W_in + b, p = u / |u|; forward value q (the chosen unit code), gradient through p.
    w_in, w_out = (
        quantizer.projection.input_projection.numpy(),
        quantizer.projection.output_projection.numpy(),
    )
    u = z.numpy().astype("float64") @ w_in + quantizer.projection.input_projection_bias.numpy()
    p = unit_rows(u)
    gradient_p = weights @ w_out.T  # (N, C)
    gradient_u = (gradient_p - p * np.sum(p * gradient_p, axis=1, keepdims=True)) / np.linalg.norm(
        u, axis=1, keepdims=True
    )
    np.testing.assert_allclose(gradient_z.numpy(), gradient_u @ w_in.T, rtol=1e-4, atol=1e-6)
    q = unit_rows(quantizer.codebook.numpy().astype("float64"))[quantizer.indices(z).numpy()]
    np.testing.assert_allclose(gradient_out.numpy(), q.T @ weights, rtol=1e-4, atol=1e-6)


def test_factorized_l2_ema_step_equals_numpy_update_rule_in_the_code_space():
    rng = np.random.default_rng(13)
    K, D, C = 9, 5, 3
    quantizer = VectorQuantizer(
        num_embeddings=K,
        embedding_dim=D,
        ema=True,
        decay=0.9,
        epsilon=1e-3,
        codebook_dim=C,
        l2_normalize=True,
    )
    quantizer.build((None, D))
    codebook = unit_rows(rng.normal(size=(K, C)))  # unit codes: Euclidean nearest = cosine nearest
    cluster_size = rng.uniform(0.5, 3.0, size=K)
    embedding_sum = rng.normal(size=(K, C))
    quantizer.codebook.assign(codebook.astype("float32"))
    quantizer.ema_cluster_size.assign(cluster_size.astype("float32"))
    quantizer.ema_embedding_sum.assign(embedding_sum.astype("float32"))
    z = rng.normal(size=(50, D)).astype("float32")
    expected = numpy_ema_step(projected(quantizer, z), codebook, cluster_size, embedding_sum, 0.9, 1e-3)
    quantizer(z, training=True)
    np.testing.assert_allclose(quantizer.codebook.numpy(), expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(quantizer.ema_cluster_size.numpy(), expected[1], rtol=1e-5)
    np.testing.assert_allclose(quantizer.ema_embedding_sum.numpy(), expected[2], rtol=1e-5, atol=1e-6)


def test_factorized_l2_restart_reseeds_unused_codes_from_projected_normalised_inputs():
    rng = np.random.default_rng(14)
    K, D, C, N, decay = 8, 5, 3, 40, 0.9
    quantizer = VectorQuantizer(
        num_embeddings=K,
        embedding_dim=D,
        ema=True,
        decay=decay,
        restart_after_steps=1,
        codebook_dim=C,
        l2_normalize=True,
        seed=2,
    )
    quantizer.build((None, D))
    collapsed = np.tile(unit_rows(rng.normal(size=(1, C))), (K, 1))  # every code alike: code 0 wins ties
    quantizer.codebook.assign(collapsed.astype("float32"))
    quantizer.ema_embedding_sum.assign(collapsed.astype("float32"))
    z = rng.normal(size=(N, D)).astype("float32")
    p = projected(quantizer, z)
    quantizer(z, training=True)
    codebook = quantizer.codebook.numpy()
    # Code 0 took every vector: one EMA step, by NumPy.
    cluster_0 = decay * 1.0 + (1 - decay) * N
    sum_0 = decay * collapsed[0] + (1 - decay) * p.sum(axis=0)
    total = cluster_0 + (K - 1) * decay
    smoothed_0 = (cluster_0 + quantizer.epsilon) / (total + K * quantizer.epsilon) * total
    np.testing.assert_allclose(codebook[0], sum_0 / smoothed_0, rtol=1e-5, atol=1e-6)
    # Codes 1..K-1 went unused for one step: each is now a projected, normalised input row.
    distances = np.min(np.sum((codebook[1:, None] - p[None]) ** 2, axis=-1), axis=1)
    np.testing.assert_allclose(distances, 0.0, atol=1e-10)
    np.testing.assert_allclose(quantizer.ema_cluster_size.numpy()[1:], 1.0)
    np.testing.assert_allclose(quantizer.ema_embedding_sum.numpy()[1:], codebook[1:])
    np.testing.assert_array_equal(quantizer.steps_since_used.numpy(), 0)


def test_factorized_l2_init_from_data_copies_projected_normalised_inputs():
    z = np.random.default_rng(15).normal(size=(40, 6)).astype("float32")
    quantizer = VectorQuantizer(
        num_embeddings=16, embedding_dim=6, init_from_data=True, codebook_dim=2, l2_normalize=True, seed=1
    )
    quantizer(z, training=True)
    codebook = quantizer.codebook.numpy()
    distances = np.min(np.sum((codebook[:, None] - projected(quantizer, z)[None]) ** 2, axis=-1), axis=1)
    np.testing.assert_allclose(distances, 0.0, atol=1e-10)


def test_factorized_l2_codebook_trains_with_ema_restarts_and_data_init():
    rng = np.random.default_rng(16)
    D = 6
    encoder, decoder = keras.layers.Dense(D), keras.layers.Dense(D)
    quantizer = VectorQuantizer(
        num_embeddings=32,
        embedding_dim=D,
        ema=True,
        restart_after_steps=2,
        init_from_data=True,
        codebook_dim=3,
        l2_normalize=True,
        seed=0,
    )
    encoder.build((None, D))
    decoder.build((None, D))
    quantizer.build((None, D))
    optimizer = keras.optimizers.Adam(1e-2)
    variables = [*encoder.trainable_weights, *quantizer.trainable_weights, *decoder.trainable_weights]

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            result = quantizer.quantize_with_stats(encoder(x), training=True)
            loss = tf.reduce_mean(tf.square(decoder(result.quantized) - x)) + result.loss
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    before = [quantizer.codebook.numpy().copy(), quantizer.projection.input_projection.numpy().copy()]
    losses = [float(step(tf.constant(rng.normal(size=(64, D)).astype("float32")))) for _ in range(10)]
    assert np.all(np.isfinite(losses))
    for old, variable in zip(before, [quantizer.codebook, quantizer.projection.input_projection]):
        assert np.all(np.isfinite(variable.numpy())) and not np.allclose(old, variable.numpy())
    assert int(quantizer.training_steps.numpy()) == 10


def test_factorized_l2_config_and_keras_file_round_trip(tmp_path):
    quantizer = VectorQuantizer(
        num_embeddings=12, embedding_dim=3, ema=True, codebook_dim=2, l2_normalize=True, seed=3
    )
    clone = VectorQuantizer.from_config(quantizer.get_config())
    assert clone.get_config() == quantizer.get_config()
    assert (clone.codebook_dim, clone.l2_normalize) == (2, True)
    inputs = keras.Input((4, 4, 2))
    outputs = keras.layers.Conv2D(2, 1)(quantizer(keras.layers.Conv2D(3, 1)(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(17).uniform(size=(16, 4, 4, 2)).astype("float32")
    model.fit(x, x, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_bad_codebook_dim_raises_a_one_line_error():
    for codebook_dim in (0, 2.5, True):
        with pytest.raises(ValueError, match="codebook_dim must be a positive integer or None"):
            VectorQuantizer(num_embeddings=8, embedding_dim=4, codebook_dim=codebook_dim)
