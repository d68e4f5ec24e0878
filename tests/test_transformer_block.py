"""`TransformerBlock` against a NumPy pre-norm block, and the key bias's exactly-zero gradient."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

from prior import TransformerBlock

HIDDEN, HEADS, INTERMEDIATE = 8, 2, 12


def numpy_block(block, inputs, causal):
    """The GPT-2 pre-norm block in float64 NumPy, the key bias included as the paper's block has it."""
    weights = {w.path.split("/", 1)[1]: w.numpy().astype("float64") for w in block.weights}

    def norm(x, name):
        mean = x.mean(-1, keepdims=True)
        variance = x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + 1e-5) * weights[f"{name}/gamma"] + weights[f"{name}/beta"]

    def heads(x):
        batch, length, _ = x.shape
        return x.reshape(batch, length, HEADS, HIDDEN // HEADS).transpose(0, 2, 1, 3)

    x = inputs.astype("float64")
    projected = (
        norm(x, "attention_norm") @ weights["query_key_value/kernel"] + weights["query_key_value/bias"]
    )
    queries, keys, values = (heads(part) for part in np.split(projected, 3, axis=-1))
    scores = queries @ keys.transpose(0, 1, 3, 2) / math.sqrt(HIDDEN // HEADS)
    if causal:
        length = x.shape[1]
        scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    attended = (scores / scores.sum(-1, keepdims=True)) @ values
    attended = attended.transpose(0, 2, 1, 3).reshape(x.shape)
    hidden = x + attended @ weights["attention_output/kernel"] + weights["attention_output/bias"]
    mlp = norm(hidden, "mlp_norm") @ weights["mlp_hidden/kernel"] + weights["mlp_hidden/bias"]
    mlp = 0.5 * mlp * (1 + erf(mlp / math.sqrt(2)))  # exact GELU, Keras' default
    return hidden + mlp @ weights["mlp_output/kernel"] + weights["mlp_output/bias"]


def random_block(causal, seed=0):
    """A block with every weight drawn at random, the key third of the bias included."""
    block = TransformerBlock(HIDDEN, HEADS, INTERMEDIATE, causal=causal)
    block.build((None, None, HIDDEN))
    rng = np.random.default_rng(seed)
    for weight in block.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    return block


@pytest.mark.parametrize("causal", [True, False])
def test_block_equals_a_numpy_block_that_has_a_key_bias(causal):
    block = random_block(causal)
    assert np.abs(block.query_key_value.bias.numpy()[HIDDEN : 2 * HIDDEN]).min() > 0  # a key bias is set
    inputs = np.random.default_rng(1).normal(size=(3, 5, HIDDEN)).astype("float32")
    np.testing.assert_allclose(block(inputs).numpy(), numpy_block(block, inputs, causal), atol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_the_key_bias_gets_an_exactly_zero_gradient_and_adam_leaves_it(causal):
    block = random_block(causal)
    inputs = tf.constant(np.random.default_rng(2).normal(size=(4, 6, HIDDEN)).astype("float32"))
    target = tf.constant(np.random.default_rng(3).normal(size=(4, 6, HIDDEN)).astype("float32"))
    optimizer = keras.optimizers.Adam(1e-2)
    bias = block.query_key_value.bias
    before = bias.numpy().copy()
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((block(inputs) - target) ** 2)
        gradient = tape.gradient(loss, bias).numpy()
        optimizer.apply([gradient], [bias])
    assert np.all(gradient[HIDDEN : 2 * HIDDEN] == 0)
    assert np.all(gradient[:HIDDEN] != 0) and np.all(gradient[2 * HIDDEN :] != 0)  # queries, values learn
    np.testing.assert_array_equal(bias.numpy()[HIDDEN : 2 * HIDDEN], before[HIDDEN : 2 * HIDDEN])
