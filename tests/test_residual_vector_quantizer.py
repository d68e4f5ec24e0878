"""ResidualVectorQuantizer against independent references: a plain VectorQuantizer, a NumPy
greedy-residual brute force with hand-set codebooks, and a NumPy sum of the first k levels."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen.models.quantization import Quantization
from vqgen.models.residual_vector_quantizer import ResidualVectorQuantizer
from vqgen.models.vector_quantizer import VectorQuantizer


def numpy_greedy_residual(z, codebooks):
    """Per-level nearest codes of the running residual, by explicit differences, and the residuals."""
    residual = z.reshape(-1, z.shape[-1]).astype("float64")
    indices, residuals = [], []
    for codebook in codebooks:
        distances = np.sum((residual[:, None, :] - codebook[None, :, :]) ** 2, axis=-1)  # (N, K)
        level_indices = np.argmin(distances, axis=1)
        residuals.append(residual)
        indices.append(level_indices)
        residual = residual - codebook[level_indices]
    return np.stack(indices, axis=-1).reshape(*z.shape[:-1], len(codebooks)), residuals


def hand_set_codebooks(num_quantizers, num_embeddings, embedding_dim, seed=0):
    """Codebooks of shrinking scale; every level after the first holds the zero vector."""
    rng = np.random.default_rng(seed)
    codebooks = []
    for level in range(num_quantizers):
        codebook = rng.normal(size=(num_embeddings, embedding_dim)) * 0.5**level
        if level > 0:
            codebook[0] = 0.0  # so a level can never make a vector's error worse
        codebooks.append(codebook.astype("float32"))
    return codebooks


def build_with_codebooks(quantizer, codebooks):
    quantizer.build((None, quantizer.embedding_dim))
    for level, codebook in zip(quantizer.quantizers, codebooks):
        level.codebook.assign(codebook)


@pytest.mark.parametrize("ema", [False, True])
def test_one_level_equals_a_vector_quantizer(ema):
    rng = np.random.default_rng(0)
    settings = dict(num_embeddings=6, embedding_dim=3, beta=0.3, ema=ema, decay=0.9)
    residual = ResidualVectorQuantizer(num_quantizers=1, **settings)
    single = VectorQuantizer(**settings)
    codebook = rng.normal(size=(6, 3)).astype("float32")
    build_with_codebooks(residual, [codebook])
    single.build((None, 3))
    single.codebook.assign(codebook)
    if ema:
        single.ema_embedding_sum.assign(codebook)
        residual.quantizers[0].ema_embedding_sum.assign(codebook)
    z = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    for training in (False, True):
        got = residual.quantize_with_stats(z, training=training)
        want = single.quantize_with_stats(z, training=training)
        assert isinstance(got, Quantization)
        np.testing.assert_allclose(got.quantized.numpy(), want.quantized.numpy(), atol=1e-6)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy()[..., None])
        np.testing.assert_allclose(float(got.loss), float(want.loss), rtol=1e-6)
        for name in want.statistics:
            np.testing.assert_allclose(float(got.statistics[name]), float(want.statistics[name]), rtol=1e-6)
        for got_weight, want_weight in zip(residual.weights, single.weights):
            np.testing.assert_allclose(got_weight.numpy(), want_weight.numpy(), rtol=1e-6)


def test_greedy_residual_matches_numpy_and_error_never_grows_with_depth():
    d, K, D = 3, 7, 2
    codebooks = hand_set_codebooks(d, K, D)
    quantizer = ResidualVectorQuantizer(num_quantizers=d, num_embeddings=K, embedding_dim=D, beta=0.2)
    build_with_codebooks(quantizer, codebooks)
    z = np.random.default_rng(1).normal(size=(2, 5, 5, D)).astype("float32")
    expected, residuals = numpy_greedy_residual(z, codebooks)

    result = quantizer.quantize_with_stats(z)
    np.testing.assert_array_equal(result.indices.numpy(), expected)
    assert result.indices.dtype == tf.int32 and result.indices.shape == (2, 5, 5, d)
    np.testing.assert_array_equal(quantizer.indices(z).numpy(), expected)
    # Gradient codebooks: each level's loss is (1 + beta) * mean squared distance to its code.
    level_losses = [
        1.2 * np.mean((r - cb[i]) ** 2) for r, cb, i in zip(residuals, codebooks, expected.reshape(-1, d).T)
    ]
    np.testing.assert_allclose(float(result.loss), sum(level_losses), rtol=1e-5)

    errors = []
    for k in range(1, d + 1):
        reference = sum(codebooks[level][expected[..., level]] for level in range(k))
        decoded = quantizer.lookup(expected[..., :k]).numpy()
        np.testing.assert_allclose(decoded, reference, atol=1e-6)
        errors.append(np.mean((z - decoded) ** 2))
    np.testing.assert_allclose(result.quantized.numpy(), decoded, atol=1e-6)
    assert all(later <= earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0]  # the deeper levels do something


def test_factorized_codes_match_numpy_in_the_projection():
    d, K, D, C = 3, 6, 5, 2
    rng = np.random.default_rng(3)
    quantizer = ResidualVectorQuantizer(
        num_quantizers=d, num_embeddings=K, embedding_dim=D, codebook_dim=C, beta=0.2
    )
    codebooks = hand_set_codebooks(d, K, C, seed=4)
    build_with_codebooks(quantizer, codebooks)
    projection = quantizer.projection
    w_in, b_in, w_out, b_out = (rng.normal(size=shape).astype("float32") for shape in ((D, C), C, (C, D), D))
    for variable, value in zip(
        (
            projection.input_projection,
            projection.input_projection_bias,
            projection.output_projection,
            projection.output_projection_bias,
        ),
        (w_in, b_in, w_out, b_out),
    ):
        variable.assign(value)
    z = rng.normal(size=(2, 4, 4, D)).astype("float32")
    # By hand: project once, greedy residual quantization of the projection, the codes' sum back
    projected = z.astype("float64") @ w_in + b_in  # (2, 4, 4, C)
    expected, residuals = numpy_greedy_residual(projected, codebooks)
    decoded = sum(codebooks[level][expected[..., level]] for level in range(d)) @ w_out + b_out

    result = quantizer.quantize_with_stats(z)
    np.testing.assert_array_equal(result.indices.numpy(), expected)
    np.testing.assert_array_equal(quantizer.indices(z).numpy(), expected)
    np.testing.assert_allclose(result.quantized.numpy(), decoded, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(quantizer.lookup(expected).numpy(), decoded, rtol=1e-5, atol=1e-5)
    level_losses = [
        1.2 * np.mean((r - cb[i]) ** 2) for r, cb, i in zip(residuals, codebooks, expected.reshape(-1, d).T)
    ]
    np.testing.assert_allclose(float(result.loss), sum(level_losses), rtol=1e-5)
    # Straight through the projections: d(output)/dz = W_in W_out, and both maps get gradients
    weights = rng.normal(size=z.shape).astype("float32")
    z = tf.constant(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        result = quantizer.quantize_with_stats(z)
        output = tf.reduce_sum(weights * result.quantized)
    np.testing.assert_allclose(tape.gradient(output, z).numpy(), weights @ (w_in @ w_out).T, rtol=1e-4)
    assert np.any(tape.gradient(output, projection.output_projection).numpy() != 0)
    assert np.any(tape.gradient(result.loss, projection.input_projection).numpy() != 0)


def test_the_codebook_dim_setting_reaches_residual_vq_in_a_vqvae():
    from vqgen import VQVAE

    model = VQVAE(
        input_shape=(8, 8, 1), quantizer="rvq", num_quantizers=2, num_embeddings=4, embedding_dim=6,
        codebook_dim=3, hidden_channels=8, residual_channels=4, num_residual_blocks=1,
    )  # fmt: skip
    assert [tuple(level.codebook.shape) for level in model.quantizer.quantizers] == [(4, 3), (4, 3)]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    images = np.random.default_rng(5).random((8, 8, 8, 1)).astype("float32")
    before = model.quantizer.projection.output_projection.numpy().copy()
    model.fit(images, epochs=1, batch_size=8, verbose=0)
    assert np.any(model.quantizer.projection.output_projection.numpy() != before)  # trained with the model
    assert model.encode(images).shape == (8, 2, 2, 2)  # downsampled 4x, two levels


def test_gradient_is_straight_through_the_sum():
    rng = np.random.default_rng(2)
    quantizer = ResidualVectorQuantizer(num_quantizers=3, num_embeddings=5, embedding_dim=2)
    z = tf.constant(rng.normal(size=(2, 3, 3, 2)).astype("float32"))
    weights = rng.normal(size=(2, 3, 3, 2)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(z)
        output = tf.reduce_sum(weights * quantizer(z, training=True))
    np.testing.assert_array_equal(tape.gradient(output, z).numpy(), weights)


def test_quantizer_dropout_uses_a_prefix_of_the_levels():
    d, K, D = 3, 6, 2
    codebooks = hand_set_codebooks(d, K, D, seed=3)
    quantizer = ResidualVectorQuantizer(
        num_quantizers=d, num_embeddings=K, embedding_dim=D, quantizer_dropout=1.0, beta=0.0, seed=4
    )
    build_with_codebooks(quantizer, codebooks)
    z = np.random.default_rng(5).normal(size=(2, 4, 4, D)).astype("float32")
    expected, residuals = numpy_greedy_residual(z, codebooks)
    level_losses = [
        np.mean((r - cb[i]) ** 2) for r, cb, i in zip(residuals, codebooks, expected.reshape(-1, d).T)
    ]

    seen = set()
    for _ in range(20):
        result, stats = quantizer.quantize_with_level_stats(z, training=True)
        k = int(stats.active_levels)
        seen.add(k)
        reference = sum(codebooks[level][expected[..., level]] for level in range(k))
        np.testing.assert_allclose(result.quantized.numpy(), reference, atol=1e-6)
        np.testing.assert_allclose(quantizer.lookup(expected[..., :k]).numpy(), reference, atol=1e-6)
        np.testing.assert_allclose(float(result.loss), sum(level_losses[:k]), rtol=1e-5)
        np.testing.assert_allclose(stats.loss.numpy()[k:], 0.0)
        # Statistics: every level's usage (a dropped level's too), and their mean over the levels used.
        for name, of_codes in (("perplexity", numpy_perplexity), ("codes_used", numpy_codes_used)):
            per_level = [of_codes(expected[..., level], K) for level in range(d)]
            got = [float(result.statistics[f"{name}_level_{level}"]) for level in range(d)]
            np.testing.assert_allclose(got, per_level, rtol=1e-5)
            np.testing.assert_allclose(float(result.statistics[name]), np.mean(per_level[:k]), rtol=1e-5)
        assert tuple(result.statistics) == quantizer.statistic_names
    assert seen == {1, 2, 3}
    # Inference never drops a level.
    _, stats = quantizer.quantize_with_level_stats(z, training=False)
    assert int(stats.active_levels) == d


def numpy_perplexity(codes, K):
    """exp(-sum p log p) of the histogram of `codes` over K codes."""
    p = np.bincount(codes.ravel(), minlength=K) / codes.size
    return np.exp(-np.sum(p[p > 0] * np.log(p[p > 0])))


def numpy_codes_used(codes, K):
    """The fraction of the K codes that occur in `codes`."""
    return len(np.unique(codes)) / K


def test_dropped_levels_are_not_updated():
    quantizer = ResidualVectorQuantizer(
        num_quantizers=3, num_embeddings=4, embedding_dim=2, quantizer_dropout=1.0, ema=True, seed=0
    )
    quantizer.build((None, 2))
    z = np.random.default_rng(6).normal(size=(2, 4, 4, 2)).astype("float32")
    for _ in range(20):
        before = [level.codebook.numpy().copy() for level in quantizer.quantizers]
        steps_before = [int(level.training_steps) for level in quantizer.quantizers]
        _, stats = quantizer.quantize_with_level_stats(z, training=True)
        k = int(stats.active_levels)
        if k < 3:
            break
    assert k < 3
    for level, (quantizer_level, old) in enumerate(zip(quantizer.quantizers, before)):
        changed = np.max(np.abs(quantizer_level.codebook.numpy() - old)) > 1e-6
        assert changed == (level < k), (level, k)
    steps = [int(level.training_steps.numpy()) for level in quantizer.quantizers]
    assert [now - then for now, then in zip(steps, steps_before)] == [1] * k + [0] * (3 - k)


def test_ema_training_step_changes_every_level_and_inference_none():
    inputs = keras.Input((4, 4, 2))
    latents = keras.layers.Dense(3)(inputs)
    quantizer = ResidualVectorQuantizer(num_quantizers=3, num_embeddings=4, embedding_dim=3, ema=True, seed=1)
    model = keras.Model(inputs, keras.layers.Dense(2)(quantizer(latents)))
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(7).normal(size=(4, 4, 4, 2)).astype("float32")
    before = [level.codebook.numpy().copy() for level in quantizer.quantizers]
    model.predict(x, verbose=0)
    for level, old in zip(quantizer.quantizers, before):
        np.testing.assert_array_equal(level.codebook.numpy(), old)
    model.fit(x, x, epochs=1, batch_size=4, verbose=0)
    for level, old in zip(quantizer.quantizers, before):
        assert np.max(np.abs(level.codebook.numpy() - old)) > 1e-4, level.name
        assert int(level.training_steps) == 1


def test_config_round_trip_and_keras_file(tmp_path):
    arguments = dict(
        num_quantizers=2, num_embeddings=5, embedding_dim=3, quantizer_dropout=0.5, beta=0.1, ema=True,
        decay=0.9, epsilon=1e-4, restart_after_steps=3, init_from_data=True, seed=7, codebook_dim=2,
    )  # fmt: skip
    quantizer = ResidualVectorQuantizer(**arguments, name="rvq")
    config = quantizer.get_config()
    assert set(config) - set(keras.layers.Layer().get_config()) == set(arguments)
    assert {name: config[name] for name in arguments} == arguments
    assert ResidualVectorQuantizer.from_config(config).get_config() == config
    assert [level.seed for level in quantizer.quantizers] == [7, 8]
    assert [level.name for level in quantizer.quantizers] == ["level_0", "level_1"]

    inputs = keras.Input((4, 4, 2))
    outputs = keras.layers.Dense(2)(quantizer(keras.layers.Dense(3)(inputs)))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(8).normal(size=(2, 4, 4, 2)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x, epochs=1, verbose=0)  # moves the codebooks away from their initial values
    path = tmp_path / "rvq.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    restored_quantizer = restored.get_layer("rvq")
    for level, restored_level in zip(quantizer.quantizers, restored_quantizer.quantizers):
        np.testing.assert_array_equal(restored_level.codebook.numpy(), level.codebook.numpy())
    for weight, restored_weight in zip(quantizer.weights, restored_quantizer.weights):  # projections too
        np.testing.assert_array_equal(restored_weight.numpy(), weight.numpy())
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_mixed_precision_keeps_float32_codebooks():
    quantizer = ResidualVectorQuantizer(
        num_quantizers=2, num_embeddings=4, embedding_dim=2, dtype="mixed_float16"
    )
    z = np.random.default_rng(9).normal(size=(1, 3, 3, 2)).astype("float32")
    output = quantizer(z)
    assert output.dtype == tf.float16
    assert all(weight.dtype == "float32" for weight in quantizer.weights if weight.name == "codebook")
    result = quantizer.quantize_with_stats(z)
    assert result.quantized.dtype == tf.float32 and result.loss.dtype == tf.float32


@pytest.mark.parametrize(
    "arguments, name",
    [
        (dict(num_quantizers=0), "num_quantizers"),
        (dict(num_quantizers=2.0), "num_quantizers"),
        (dict(quantizer_dropout=1.5), "quantizer_dropout"),
        (dict(quantizer_dropout=-0.1), "quantizer_dropout"),
        (dict(seed=1.5), "seed"),
        (dict(num_embeddings=1), "num_embeddings"),  # checked by VectorQuantizer
        (dict(beta=-1.0), "beta"),
    ],
)
def test_bad_arguments_raise(arguments, name):
    settings = dict(num_quantizers=2, num_embeddings=4, embedding_dim=2) | arguments
    with pytest.raises(ValueError, match=f"Received: {name}="):
        ResidualVectorQuantizer(**settings)


def test_wrong_input_depth_and_too_many_code_levels_raise():
    quantizer = ResidualVectorQuantizer(num_quantizers=2, num_embeddings=4, embedding_dim=2)
    with pytest.raises(ValueError, match="depth is 3"):
        quantizer(tf.zeros((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="last axis of 1 to 2"):
        quantizer.lookup(tf.zeros((1, 2, 2, 3), dtype="int32"))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        quantizer.lookup(tf.constant([[0, 4]]))


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from vqgen.models.residual_vector_quantizer import ResidualVectorQuantizer

    x = np.random.default_rng(0).normal(size=(16, 4, 4, 2)).astype("float32")

    def fit(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            inputs = keras.Input((4, 4, 2))
            quantizer = ResidualVectorQuantizer(3, 4, 3, quantizer_dropout=1.0, ema=True, seed=1)
            model = keras.Model(inputs, keras.layers.Dense(2)(quantizer(keras.layers.Dense(3)(inputs))))
            model.compile(optimizer="sgd", loss="mse")
        model.fit(x, x, batch_size=16, epochs=4, verbose=0)
        steps = [int(level.training_steps.numpy()) for level in quantizer.quantizers]
        assert steps[0] == 4 and steps[-1] < 4, steps  # some batches dropped the last level
        return [weight.numpy() for weight in model.weights]

    single = fit(tf.distribute.get_strategy())
    mirrored = fit(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(single, mirrored))
    assert worst < 1e-5, worst
    print("OK")
    """
)


@pytest.mark.slow
def test_mirrored_training_with_dropout_matches_single_device():
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=240
    )
    assert completed.returncode == 0 and completed.stdout.strip().endswith("OK"), completed.stderr[-3000:]
