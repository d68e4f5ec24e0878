"""Quantizer objects in a VQVAE: the toolkit's FSQ and a quantizer defined here train, save and load
with identical outputs; the string shortcuts build what their settings say; misuse is refused."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vqgen
from vqgen.models import build_quantizer, check_quantizer
from vqgen.models.quantization import Quantization, code_usage

WIDTHS = dict(downsample=4, hidden_channels=8, residual_channels=4, num_residual_blocks=1)


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 8, 12, 1)).astype("float32")


@keras.saving.register_keras_serializable(package="test_quantizers")
class SignQuantizer(keras.layers.Layer):
    """A quantizer outside the toolkit: each of D channels becomes its sign, a D-bit code (K = 2**D)."""

    def __init__(self, embedding_dim, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = embedding_dim
        self.num_embeddings = 2**embedding_dim
        self.code_shape = ()
        self.statistic_names = ("perplexity", "codes_used", "positive_fraction")
        self._bits = 2 ** np.arange(embedding_dim, dtype="int32")

    def call(self, inputs, training=None):
        return self.quantize_with_stats(inputs, training=training).quantized

    def quantize_with_stats(self, inputs, training=False):
        z = tf.cast(inputs, "float32")
        signs = tf.where(z > 0, 1.0, -1.0)
        quantized = z + tf.stop_gradient(signs - z)  # straight-through
        indices = self.indices(z)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(indices, "float32"), indices, self.num_embeddings)
        statistics = {**code_usage(counts), "positive_fraction": tf.reduce_mean(tf.cast(z > 0, "float32"))}
        loss = 0.1 * tf.reduce_mean(tf.square(z - tf.stop_gradient(signs)))
        return Quantization(tf.cast(quantized, inputs.dtype), indices, loss, statistics)

    def indices(self, inputs):
        return tf.reduce_sum(tf.cast(tf.convert_to_tensor(inputs) > 0, "int32") * self._bits, axis=-1)

    def lookup(self, codes):
        bits = (tf.convert_to_tensor(codes, "int32")[..., tf.newaxis] // self._bits) % 2
        return tf.cast(2 * bits - 1, "float32")

    def get_config(self):
        return {**super().get_config(), "embedding_dim": self.embedding_dim}


def train_save_and_load(model, tmp_path):
    """Trains `model` four steps, saves and loads it; returns the loaded model and the history."""
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(images(32), epochs=1, batch_size=8, verbose=0).history
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    held = images(6, seed=1)
    codes = model.encode(held)
    np.testing.assert_array_equal(loaded.encode(held), codes)
    np.testing.assert_array_equal(loaded.decode(codes), model.decode(codes))
    return loaded, history


def test_fsq_object_trains_saves_and_loads_with_its_statistics(tmp_path):
    quantizer = vqgen.FiniteScalarQuantizer(levels=[8, 5, 5, 5])
    model = vqgen.VQVAE(input_shape=(8, 12, 1), quantizer=quantizer, **WIDTHS)
    assert model.quantizer is quantizer and (model.num_embeddings, model.embedding_dim) == (1000, 4)
    loaded, history = train_save_and_load(model, tmp_path)
    assert {"loss", "reconstruction_loss", "vq_loss", "perplexity", "codes_used", "psnr"} == set(history)
    assert type(loaded.quantizer) is vqgen.FiniteScalarQuantizer and loaded.quantizer.levels == [8, 5, 5, 5]
    assert np.all(quantizer.mean.numpy() != 0)  # training set the running statistics; they load
    for name in ("mean", "variance", "statistics_set"):
        np.testing.assert_array_equal(
            getattr(loaded.quantizer, name).numpy(), getattr(quantizer, name).numpy()
        )


def test_a_quantizer_defined_outside_the_toolkit_trains_saves_and_loads(tmp_path):
    model = vqgen.VQVAE(input_shape=(8, 12, 1), quantizer=SignQuantizer(3), **WIDTHS)
    assert model.code_shape == (2, 3) and model.bits_per_position == 3
    loaded, history = train_save_and_load(model, tmp_path)
    assert "positive_fraction" in history and 0 <= history["positive_fraction"][-1] <= 1
    assert type(loaded.quantizer) is SignQuantizer
    # Its codes are the sign bits of the encoder's output, channel i worth 2**i (NumPy reference).
    held = images(6, seed=2)
    latents = loaded.encoder(held).numpy()
    np.testing.assert_array_equal(loaded.encode(held), ((latents > 0) * [1, 2, 4]).sum(axis=-1))


def test_shortcuts_build_what_their_settings_say():
    fsq = build_quantizer("fsq", levels=[5, 4, 3], init_from_data=False, latent_decay=0.5, num_embeddings=7)
    assert isinstance(fsq, vqgen.FiniteScalarQuantizer)
    assert (fsq.levels, fsq.standardize, fsq.decay, fsq.num_embeddings) == ([5, 4, 3], False, 0.5, 60)
    rvq = build_quantizer("rvq", num_embeddings=8, embedding_dim=3, num_quantizers=3, seed=2, decay=0.8)
    assert isinstance(rvq, vqgen.ResidualVectorQuantizer) and rvq.code_shape == (3,)
    assert [level.seed for level in rvq.quantizers] == [2, 3, 4] and rvq.decay == 0.8
    vq = build_quantizer("vq", num_embeddings=8, embedding_dim=3, ema=False)
    assert type(vq) is vqgen.VectorQuantizer and (vq.num_embeddings, vq.embedding_dim, vq.ema) == (
        8,
        3,
        False,
    )
    model = vqgen.VQVAE(input_shape=(8, 12, 1), quantizer="fsq", levels=[5, 4, 3], **WIDTHS)
    assert model.quantizer.get_config() == build_quantizer("fsq", levels=[5, 4, 3]).get_config()
    with pytest.raises(ValueError, match="quantizer must be one of"):
        build_quantizer("lfq")


def test_misused_quantizers_are_refused():
    with pytest.raises(
        ValueError, match="num_embeddings, seed only shape the 'vq' / 'fsq' / 'rvq' shortcuts"
    ):
        vqgen.VQVAE(input_shape=(8, 12, 1), quantizer=SignQuantizer(3), num_embeddings=7, seed=0, **WIDTHS)
    with pytest.raises(ValueError, match="lacks num_embeddings, embedding_dim, code_shape"):
        vqgen.VQVAE(input_shape=(8, 12, 1), quantizer=keras.layers.Dense(3), **WIDTHS)
    with pytest.raises(ValueError, match="or a Keras layer with the quantizer protocol"):
        check_quantizer(42)
    with pytest.raises(ValueError, match="depth"):  # an encoder must output the quantizer's depth D
        vqgen.VQVAE(
            input_shape=(8, 12, 1), quantizer=SignQuantizer(3), encoder=keras.layers.Conv2D(5, 4, 4), **WIDTHS
        )
