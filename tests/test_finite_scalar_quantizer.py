"""FiniteScalarQuantizer against independent references: NumPy bounding and rounding, NumPy's own
mixed-radix helpers (`ravel_multi_index` / `unravel_index`), the analytic derivative of the bound, and
a NumPy EMA of the running per-channel mean and variance."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen.models.finite_scalar_quantizer import FiniteScalarQuantizer
from vqgen.models.quantization import Quantization

EPS = 1e-3  # the paper's margin inside the tanh bound


def numpy_bound(z, levels):
    """The paper's per-channel tanh bound, in float64."""
    levels = np.asarray(levels, dtype="float64")
    half_l = (levels - 1.0) * (1.0 - EPS) / 2.0
    offset = np.where(levels % 2 == 0, 0.5, 0.0)
    shift = np.arctanh(offset / half_l)
    return np.tanh(z + shift) * half_l - offset


def numpy_preimage(integer_levels, levels):
    """An input whose bounded value is the integer level pulled 0.3 towards zero (so it rounds to it)."""
    levels = np.asarray(levels, dtype="float64")
    half_l = (levels - 1.0) * (1.0 - EPS) / 2.0
    offset = np.where(levels % 2 == 0, 0.5, 0.0)
    shift = np.arctanh(offset / half_l)
    target = integer_levels - 0.3 * np.sign(integer_levels)
    return np.arctanh((target + offset) / half_l) - shift


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [3, 4, 7, 6]])
def test_indices_and_lookup_are_inverse_over_every_code(levels):
    quantizer = FiniteScalarQuantizer(levels=levels)
    K = int(np.prod(levels))
    assert quantizer.num_embeddings == K and quantizer.embedding_dim == len(levels)
    half_width = np.array(levels) // 2
    # Reference: code k has digits unravel_index(k) with the first channel least significant.
    digits = np.stack(np.unravel_index(np.arange(K), levels, order="F"), axis=-1)  # (K, d)
    integer_levels = digits - half_width  # (K, d)
    vectors = quantizer.lookup(tf.range(K)).numpy()
    np.testing.assert_allclose(vectors, integer_levels / half_width, atol=1e-7)
    assert len(np.unique(vectors, axis=0)) == K
    assert vectors.min() == -1.0 and vectors.max() <= 1.0
    # An input that bounds onto each grid point gets that point's code back, and its vector.
    z = numpy_preimage(integer_levels, levels).astype("float32")
    np.testing.assert_array_equal(quantizer.indices(z).numpy(), np.arange(K))
    np.testing.assert_allclose(quantizer(z).numpy(), vectors, atol=1e-7)


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [7, 6, 3]])
def test_indices_and_output_equal_numpy_reference(levels):
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(3, 5, 4, len(levels))) * 2.0).astype("float32")
    rounded = np.round(numpy_bound(z.astype("float64"), levels))  # (..., d)
    digits = (rounded + np.array(levels) // 2).astype("int64")
    expected = np.ravel_multi_index(np.moveaxis(digits, -1, 0), levels, order="F")  # (3, 5, 4)

    quantizer = FiniteScalarQuantizer(levels=levels, standardize=False)  # training leaves z as it is
    result = quantizer.quantize_with_stats(z, training=True)
    assert isinstance(result, Quantization)
    np.testing.assert_array_equal(result.indices.numpy(), expected)
    assert result.indices.dtype == tf.int32
    np.testing.assert_array_equal(quantizer.indices(z).numpy(), expected)
    np.testing.assert_allclose(result.quantized.numpy(), rounded / (np.array(levels) // 2), atol=1e-6)
    np.testing.assert_allclose(quantizer.lookup(expected).numpy(), result.quantized.numpy(), atol=1e-6)
    assert float(result.loss) == 0.0 and result.loss.dtype == tf.float32 and result.loss.shape == ()


def test_perplexity_and_codes_used_of_a_known_histogram():
    levels = [5, 4]
    quantizer = FiniteScalarQuantizer(levels=levels)
    codes = np.array([0, 0, 0, 1, 7, 7, 19, 19])  # counts 3, 1, 2, 2 over 20 codes
    digits = np.stack(np.unravel_index(codes, levels, order="F"), axis=-1)
    z = numpy_preimage(digits - np.array(levels) // 2, levels).astype("float32")
    result = quantizer.quantize_with_stats(z)
    p = np.array([3, 1, 2, 2]) / 8.0
    np.testing.assert_allclose(
        float(result.statistics["perplexity"]), np.exp(-np.sum(p * np.log(p))), rtol=1e-5
    )
    np.testing.assert_allclose(float(result.statistics["codes_used"]), 4 / 20, rtol=1e-6)
    assert tuple(result.statistics) == quantizer.statistic_names


def test_gradient_is_straight_through_the_rounding():
    levels = [8, 5, 4]
    rng = np.random.default_rng(1)
    z = tf.constant((rng.normal(size=(2, 3, 3, 3)) * 1.5).astype("float32"))
    weights = rng.normal(size=(2, 3, 3, 3)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(z)
        quantizer = FiniteScalarQuantizer(levels=levels, standardize=False)
        output = tf.reduce_sum(weights * quantizer(z, training=True))
    # d quantized / dz = d bound / dz / (L // 2) = half_l * (1 - tanh^2(z + shift)) / (L // 2).
    levels_np = np.array(levels, dtype="float64")
    half_l = (levels_np - 1.0) * (1.0 - EPS) / 2.0
    shift = np.arctanh(np.where(levels_np % 2 == 0, 0.5, 0.0) / half_l)
    derivative = half_l * (1.0 - np.tanh(z.numpy().astype("float64") + shift) ** 2) / (levels_np // 2)
    np.testing.assert_allclose(tape.gradient(output, z).numpy(), weights * derivative, rtol=1e-5, atol=1e-7)


def numpy_running_statistics(batches, decay):
    """The per-channel mean and variance of the first batch, then an EMA with `decay`, in float64."""
    mean = variance = None
    for batch in batches:
        flat = batch.reshape(-1, batch.shape[-1]).astype("float64")
        if mean is None:
            mean, variance = flat.mean(axis=0), flat.var(axis=0)
        else:
            mean = decay * mean + (1 - decay) * flat.mean(axis=0)
            variance = decay * variance + (1 - decay) * flat.var(axis=0)
    return mean, variance


def test_standardises_by_running_statistics_updated_only_in_training():
    levels, decay = [5, 4, 3], 0.8
    quantizer = FiniteScalarQuantizer(levels=levels, decay=decay)
    assert quantizer.trainable_weights == []  # nothing to learn by gradient
    rng = np.random.default_rng(4)
    # Channels far from the unit range of the levels: each its own offset and scale.
    batches = [(rng.normal(size=(4, 3, 3, 3)) * [3.0, 0.2, 10.0] + [5.0, -1.0, 0.0]).astype("float32")]
    batches += [(batches[0][:2] * 0.5 + 1.0), batches[0][1:] ** 2]
    quantizer.quantize_with_stats(batches[0], training=False)  # inference leaves the statistics alone
    quantizer.indices(batches[0])
    np.testing.assert_array_equal(quantizer.mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(quantizer.variance.numpy(), np.ones(3))
    for seen in range(1, len(batches) + 1):
        result = quantizer.quantize_with_stats(batches[seen - 1], training=True)
        mean, variance = numpy_running_statistics(batches[:seen], decay)
        np.testing.assert_allclose(quantizer.mean.numpy(), mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(quantizer.variance.numpy(), variance, rtol=1e-4)
    # A training pass quantizes with the statistics it has just set; so do `indices` and `call` after.
    z = batches[-1]
    rounded = np.round(numpy_bound((z - mean) / np.sqrt(variance), levels))
    digits = (rounded + np.array(levels) // 2).astype("int64")
    expected = np.ravel_multi_index(np.moveaxis(digits, -1, 0), levels, order="F")
    np.testing.assert_array_equal(result.indices.numpy(), expected)
    np.testing.assert_array_equal(quantizer.indices(z).numpy(), expected)
    np.testing.assert_allclose(quantizer(z).numpy(), rounded / (np.array(levels) // 2), atol=1e-6)


def test_without_standardize_training_leaves_the_statistics():
    quantizer = FiniteScalarQuantizer(levels=[5, 5], standardize=False)
    quantizer.quantize_with_stats(np.full((2, 2, 2, 2), 3.0, "float32"), training=True)
    np.testing.assert_array_equal(quantizer.mean.numpy(), np.zeros(2))
    np.testing.assert_array_equal(quantizer.variance.numpy(), np.ones(2))
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        FiniteScalarQuantizer(decay=1.0)


def test_config_round_trip_and_keras_file(tmp_path):
    quantizer = FiniteScalarQuantizer(levels=(7, 5, 4), name="fsq")
    config = quantizer.get_config()
    assert set(config) - set(keras.layers.Layer().get_config()) == {"levels", "standardize", "decay"}
    assert config["levels"] == [7, 5, 4]
    assert FiniteScalarQuantizer.from_config(config).get_config() == config

    inputs = keras.Input((4, 4, 2))
    latents = keras.layers.Dense(3)(inputs)
    outputs = keras.layers.Dense(2)(FiniteScalarQuantizer(levels=[7, 5, 4], name="fsq")(latents))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "fsq.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.get_layer("fsq").levels == [7, 5, 4]
    x = np.random.default_rng(2).normal(size=(2, 4, 4, 2)).astype("float32")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_mixed_precision_computes_in_float32():
    levels = [8, 5, 5, 5]
    # Inputs exactly representable in float16, so both layers see the same values.
    z = (np.random.default_rng(3).normal(size=(2, 4, 4, 4)) * 2).astype("float16").astype("float32")
    reference = FiniteScalarQuantizer(levels=levels).quantize_with_stats(z)
    mixed = FiniteScalarQuantizer(levels=levels, dtype="mixed_float16")
    result = mixed.quantize_with_stats(z)
    assert result.quantized.dtype == tf.float32
    np.testing.assert_array_equal(result.quantized.numpy(), reference.quantized.numpy())
    np.testing.assert_array_equal(result.indices.numpy(), reference.indices.numpy())
    assert result.statistics["perplexity"].dtype == tf.float32 and result.loss.dtype == tf.float32
    output = mixed(z)  # the layer call returns the compute dtype
    assert output.dtype == tf.float16
    np.testing.assert_array_equal(output.numpy().astype("float32"), reference.quantized.numpy())
    np.testing.assert_array_equal(mixed.indices(tf.cast(z, "float16")).numpy(), reference.indices.numpy())


@pytest.mark.parametrize(
    "levels", [[], [2, 5], [8, 5.0], [True, 5], "855", 5, [-3], [2**16, 2**16]], ids=repr
)
def test_bad_levels_raise(levels):
    with pytest.raises(ValueError, match="Received: levels="):
        FiniteScalarQuantizer(levels=levels)


def test_wrong_input_depth_and_bad_codes_raise():
    quantizer = FiniteScalarQuantizer(levels=[5, 5, 5])
    with pytest.raises(ValueError, match="depth is 4"):
        quantizer(tf.zeros((1, 2, 2, 4)))
    with pytest.raises(ValueError, match=r"\[0, 125\)"):
        quantizer.lookup(tf.constant([0, 125]))
    with pytest.raises(ValueError, match="integers"):
        quantizer.lookup(tf.constant([0.0]))
