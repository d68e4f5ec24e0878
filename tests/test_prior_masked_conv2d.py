"""MaskedConv2D against a NumPy brute-force convolution with hand-written masks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import prior

# Hand-written raster-order masks: rows above the centre, then the centre row
# left of the centre; type "B" adds the centre itself.
HAND_MASKS = {
    ((3, 3), "A"): [[1, 1, 1], [1, 0, 0], [0, 0, 0]],
    ((3, 3), "B"): [[1, 1, 1], [1, 1, 0], [0, 0, 0]],
    ((1, 5), "A"): [[1, 1, 0, 0, 0]],
    ((1, 5), "B"): [[1, 1, 1, 0, 0]],
    ((3, 5), "A"): [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]],
}


def numpy_same_conv(inputs, kernel, bias):
    """Zero-padded 'same' cross-correlation by explicit loops (float64)."""
    kernel_height, kernel_width = kernel.shape[:2]
    top, left = kernel_height // 2, kernel_width // 2
    batch, rows, cols, _ = inputs.shape
    padded = np.pad(inputs, [(0, 0), (top, top), (left, left), (0, 0)])
    output = np.zeros((batch, rows, cols, kernel.shape[-1]))
    for row in range(rows):
        for col in range(cols):
            patch = padded[:, row : row + kernel_height, col : col + kernel_width, :]
            output[:, row, col] = np.einsum("bhwi,hwio->bo", patch, kernel)
    return output + bias


def randomised_layer(kernel_size, mask_type, rng, channels=3, filters=4):
    layer = prior.MaskedConv2D(filters, kernel_size, mask_type=mask_type, padding="same")
    layer.build((None, 6, 7, channels))
    kernel = rng.normal(size=layer.kernel.shape).astype("float32")
    bias = rng.normal(size=layer.bias.shape).astype("float32")
    layer.set_weights([kernel, bias])
    return layer, kernel, bias


@pytest.mark.parametrize("kernel_size, mask_type", list(HAND_MASKS))
def test_output_matches_numpy_convolution_with_hand_mask(kernel_size, mask_type):
    rng = np.random.default_rng(0)
    layer, kernel, bias = randomised_layer(kernel_size, mask_type, rng)
    inputs = rng.normal(size=(2, 6, 7, 3)).astype("float32")
    mask = np.array(HAND_MASKS[kernel_size, mask_type], dtype="float64")[:, :, None, None]
    expected = numpy_same_conv(inputs.astype("float64"), kernel * mask, bias)
    np.testing.assert_allclose(layer(inputs).numpy(), expected, rtol=1e-4, atol=1e-4)
    # The stored kernel is untouched: the mask only acts inside the forward pass.
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)


def test_type_a_excludes_and_type_b_includes_the_centre():
    rng = np.random.default_rng(1)
    inputs = np.zeros((1, 5, 5, 3), "float32")
    inputs[0, 2, 2] = 1.0  # an impulse at the centre pixel
    for mask_type, centre_responds in (("A", False), ("B", True)):
        layer, kernel, bias = randomised_layer((3, 3), mask_type, rng)
        response = layer(inputs).numpy()[0, 2, 2] - bias
        assert np.any(np.abs(response) > 1e-3) == centre_responds
        if centre_responds:
            np.testing.assert_allclose(response, kernel[1, 1].sum(axis=0), rtol=1e-5)


def test_gradient_of_masked_taps_is_zero():
    rng = np.random.default_rng(2)
    layer, _, _ = randomised_layer((3, 5), "A", rng)
    inputs = tf.constant(rng.normal(size=(2, 6, 7, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(inputs)))
    gradient = tape.gradient(loss, layer.kernel).numpy()
    mask = np.array(HAND_MASKS[(3, 5), "A"], bool)
    assert np.all(gradient[~mask] == 0.0)
    assert np.all(np.abs(gradient[mask]).sum(axis=(1, 2)) > 0.0)


def test_usable_in_functional_model_and_keras_round_trip(tmp_path):
    inputs = keras.Input((6, 6, 2))
    features = prior.MaskedConv2D(5, 3, mask_type="A", padding="same", activation="relu")(inputs)
    outputs = prior.MaskedConv2D(3, 3, mask_type="B", padding="same")(features)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    images = rng.normal(size=(2, 6, 6, 2)).astype("float32")
    path = tmp_path / "masked.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored.predict(images, verbose=0), model.predict(images, verbose=0))
    assert [layer.mask_type for layer in restored.layers[1:]] == ["A", "B"]


def test_get_config_round_trip():
    layer = prior.MaskedConv2D(7, (3, 5), mask_type="A", padding="same", use_bias=False)
    config = layer.get_config()
    assert config["mask_type"] == "A" and config["filters"] == 7 and config["kernel_size"] == (3, 5)
    assert prior.MaskedConv2D.from_config(config).get_config() == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filters=4, kernel_size=3, mask_type="C"), "mask_type"),
        (dict(filters=4, kernel_size=4), "odd"),
        (dict(filters=4, kernel_size=(3, 2)), "odd"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        prior.MaskedConv2D(**kwargs)
