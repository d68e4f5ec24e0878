"""VQVAE: shapes, training, codec round trips, saving, and bad inputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vqgen
from vqgen import VQVAE


def tiny_vqvae(**kwargs):
    config = dict(
        input_shape=(8, 12, 1),
        num_embeddings=16,
        embedding_dim=4,
        downsample=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
        seed=0,
    )
    config.update(kwargs)
    return VQVAE(**config)


def blobs(n, shape=(8, 12, 1), seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n,) + shape).astype("float32")


@pytest.mark.parametrize("downsample, channels", [(2, 3), (4, 1), (8, 3)])
def test_shapes_for_every_downsampling_factor(downsample, channels):
    model = tiny_vqvae(input_shape=(16, 24, channels), downsample=downsample)
    images = blobs(3, (16, 24, channels))
    codes = model.encode(images)
    assert codes.shape == (3, 16 // downsample, 24 // downsample) and codes.dtype == np.int32
    decoded = model.decode(codes)
    assert decoded.shape == images.shape and decoded.min() >= 0 and decoded.max() <= 1


def test_compression_ratio_of_the_paper():
    model = VQVAE(
        input_shape=(128, 128, 3),
        num_embeddings=512,
        embedding_dim=4,
        downsample=4,
        hidden_channels=4,
        residual_channels=2,
        num_residual_blocks=0,
    )
    assert model.grid_shape == (32, 32)
    assert model.compression_ratio == pytest.approx(128 * 128 * 3 * 8 / (32 * 32 * 9))
    assert round(model.compression_ratio, 2) == 42.67


def test_fit_logs_every_metric_and_lowers_the_loss():
    model = tiny_vqvae()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    images = blobs(64)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(64, "int32"))).batch(16)
    history = model.fit(dataset, epochs=4, verbose=0, validation_data=dataset, shuffle=False)
    logged = set(history.history)
    for name in ("loss", "reconstruction_loss", "vq_loss", "perplexity", "codes_used", "psnr"):
        assert name in logged and f"val_{name}" in logged
    losses = history.history["reconstruction_loss"]
    assert losses[-1] < losses[0]
    reconstructions = model.reconstruct(images)
    mse = np.mean((reconstructions - images) ** 2, axis=(1, 2, 3))
    # The logged validation PSNR is the mean per-image PSNR of the (unclipped) decoder output.
    assert abs(np.mean(10 * np.log10(1 / mse)) - history.history["val_psnr"][-1]) < 0.5


def test_decode_is_decoder_of_looked_up_codes():
    model = tiny_vqvae()
    codes = np.random.default_rng(1).integers(0, 16, size=(5, 2, 3)).astype("int32")
    codebook = model.quantizer.codebook.numpy()
    expected = np.clip(model.decoder(codebook[codes]).numpy(), 0, 1)
    np.testing.assert_allclose(model.decode(codes), expected, atol=1e-5)
    # encode(decode(codes)) is the nearest-code grid of the encoder's features of the decoded image
    images = model.decode(codes)
    features = model.encoder(images).numpy().reshape(-1, 4)
    nearest = np.argmin(((features[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(model.encode(images).reshape(-1), nearest)


def test_config_and_keras_file_round_trip(tmp_path):
    model = tiny_vqvae(ema=False, restart_after_steps=None, beta=0.3)
    model.compile(optimizer="adam")
    model.fit(blobs(32), epochs=1, batch_size=16, verbose=0)
    clone = VQVAE.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    path = tmp_path / "vqvae.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: registered on import
    assert isinstance(loaded, VQVAE)
    images = blobs(6, seed=3)
    np.testing.assert_array_equal(loaded.encode(images), model.encode(images))
    codes = model.encode(images)
    np.testing.assert_array_equal(loaded.decode(codes), model.decode(codes))


def test_uint8_images_are_scaled():
    model = tiny_vqvae()
    images = blobs(4)
    as_bytes = np.round(images * 255).astype("uint8")
    np.testing.assert_array_equal(model.encode(as_bytes), model.encode(as_bytes / 255.0))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.encode(blobs(2, (8, 12, 3))), "expects"),
        (lambda m: m.encode(blobs(2, (12, 8, 1))), "expects"),
        (lambda m: m.encode(np.full((1, 8, 12, 1), np.nan, "float32")), "NaN"),
        (lambda m: m.encode(blobs(1) * 255), r"\[0, 1\]"),
        (lambda m: m.decode(np.full((1, 2, 3), 16)), r"\[0, 16\)"),
        (lambda m: m.decode(np.full((1, 2, 3), -1)), r"\[0, 16\)"),
        (lambda m: m.decode(np.zeros((1, 3, 3), "int32")), "expects"),
    ],
)
def test_bad_inputs_raise_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call(tiny_vqvae())
    assert "\n" not in str(error.value)


def test_size_not_divisible_by_factor_is_refused():
    with pytest.raises(ValueError, match="not divisible by the downsampling factor 8"):
        tiny_vqvae(input_shape=(28, 28, 1), downsample=8)
    with pytest.raises(ValueError, match="downsample must be one of"):
        tiny_vqvae(downsample=3)


def test_public_api_is_exported():
    for name in vqgen.__all__:
        assert getattr(vqgen, name) is not None


def test_custom_encoder_and_decoder_round_trip(tmp_path):
    encoder = keras.Sequential([keras.layers.Conv2D(4, 4, strides=4, padding="same")], name="my_encoder")
    decoder = keras.Sequential(
        [keras.layers.Conv2DTranspose(1, 4, strides=4, padding="same")], name="my_decoder"
    )
    model = tiny_vqvae(encoder=encoder, decoder=decoder)
    assert model.encoder is encoder and model.decoder is decoder
    model.compile(optimizer="adam")
    model.fit(blobs(16), epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "custom.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    images = blobs(4, seed=9)
    np.testing.assert_array_equal(loaded.encode(images), model.encode(images))
    with pytest.raises(ValueError, match="embedding_dim 4"):
        tiny_vqvae(encoder=keras.Sequential([keras.layers.Conv2D(5, 4, strides=4, padding="same")]))


def test_train_step_compiles_under_xla():
    model = tiny_vqvae()
    model.compile(optimizer="adam", jit_compile=True)  # what Keras picks by default on a GPU
    history = model.fit(blobs(32), epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


# "vq" (the default) is covered by the tests above.
QUANTIZERS = {
    "fsq": dict(quantizer="fsq", levels=[5, 4, 3]),
    "rvq": dict(quantizer="rvq", num_quantizers=3, quantizer_dropout=0.5),
}


@pytest.mark.parametrize("kind", sorted(QUANTIZERS))
def test_each_quantizer_trains_codes_and_round_trips(kind, tmp_path):
    model = tiny_vqvae(**QUANTIZERS[kind])
    model.compile(optimizer="adam")
    history = model.fit(blobs(32), epochs=1, batch_size=16, verbose=0)
    for name in ("loss", "perplexity", "codes_used", "psnr"):
        assert np.isfinite(history.history[name][-1]), name
    images = blobs(5, seed=4)
    codes = model.encode(images)
    expected_shape = {"fsq": (5, 2, 3), "rvq": (5, 2, 3, 3)}[kind]
    assert codes.shape == expected_shape and codes.dtype == np.int32
    assert codes.min() >= 0 and codes.max() < model.num_embeddings
    assert model.decode(codes).shape == images.shape
    bits = {"fsq": np.log2(5 * 4 * 3), "rvq": 3 * np.log2(16)}[kind]
    assert model.compression_ratio == pytest.approx(8 * 12 * 8 / (2 * 3 * bits))
    # The prior's view of the codes: one integer per cell, depth interleaved along the columns.
    tokens = model.to_token_grid(codes)
    assert tokens.shape == (5, *model.token_grid_shape) == (5, 2, 3 * model.code_depth)
    np.testing.assert_array_equal(tokens[:, 1, : model.code_depth], codes[:, 1, 0].reshape(5, -1))
    np.testing.assert_array_equal(model.from_token_grid(tokens), codes)
    assert VQVAE.from_config(model.get_config()).get_config() == model.get_config()
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.quantizer) is type(model.quantizer)
    np.testing.assert_array_equal(loaded.encode(images), codes)
    np.testing.assert_array_equal(loaded.decode(codes), model.decode(codes))


def test_fsq_encoder_depth_is_the_number_of_levels():
    model = tiny_vqvae(quantizer="fsq", levels=[8, 5, 5, 5], embedding_dim=16, num_embeddings=7)
    assert (model.embedding_dim, model.num_embeddings) == (4, 1000)
    assert model.encoder.compute_output_shape((None, 8, 12, 1))[-1] == 4
    assert model.quantizer.trainable_weights == []
    with pytest.raises(ValueError, match="levels"):
        tiny_vqvae(quantizer="fsq", levels=[8, 2])
    with pytest.raises(ValueError, match="quantizer must be one of"):
        tiny_vqvae(quantizer="lfq")


def test_rvq_decodes_a_prefix_of_the_levels_and_refuses_other_depths():
    model = tiny_vqvae(quantizer="rvq", num_quantizers=2)
    codes = model.encode(blobs(3))
    coarse = model.decode(codes[..., :1])
    lookup = model.quantizer.quantizers[0].lookup(codes[..., 0])
    expected = np.clip(model.decoder(lookup).numpy(), 0, 1)
    np.testing.assert_allclose(coarse, expected, atol=1e-5)
    for bad in (codes[..., 0], np.concatenate([codes, codes[..., :1]], axis=-1)):
        with pytest.raises(ValueError, match=r"expects \(batch, 2, 3, d\) with d from 1 to 2"):
            model.decode(bad)


def test_fsq_standardises_the_encoder_output_by_running_statistics():
    model = tiny_vqvae(quantizer="fsq", levels=[5, 4, 3], latent_decay=0.8)
    first, second = blobs(16), blobs(16, seed=1) * 0.5
    latents = [model.encoder(images).numpy().reshape(-1, 3) for images in (first, second)]
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # weights stay, so each batch's latents are known
    model.encode(first)  # inference leaves the statistics alone
    statistics = model.quantizer  # the FSQ layer keeps its running statistics
    np.testing.assert_array_equal(statistics.mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(statistics.variance.numpy(), np.ones(3))
    model.fit(first, epochs=1, batch_size=16, verbose=0)  # the first batch sets them
    np.testing.assert_allclose(statistics.mean.numpy(), latents[0].mean(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(statistics.variance.numpy(), latents[0].var(axis=0), rtol=1e-3)
    model.fit(second, epochs=1, batch_size=16, verbose=0)  # then an EMA with `decay`
    mean = 0.8 * latents[0].mean(axis=0) + 0.2 * latents[1].mean(axis=0)
    variance = 0.8 * latents[0].var(axis=0) + 0.2 * latents[1].var(axis=0)
    np.testing.assert_allclose(statistics.mean.numpy(), mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(statistics.variance.numpy(), variance, rtol=1e-3)
    standardised = (model.encoder(first).numpy() - mean) / np.sqrt(variance)
    unit = vqgen.FiniteScalarQuantizer(
        levels=[5, 4, 3], standardize=False
    )  # codes standardised inputs as given
    np.testing.assert_array_equal(model.encode(first), unit.indices(standardised))
    with pytest.raises(ValueError, match=r"latent_decay must be in \[0, 1\)"):
        tiny_vqvae(quantizer="fsq", latent_decay=1.0)


def test_rvq_logs_each_levels_usage_as_counted_from_its_codes():
    model = tiny_vqvae(quantizer="rvq", num_quantizers=2, num_embeddings=8)
    model.compile(optimizer="adam")
    history = model.fit(blobs(32), epochs=1, batch_size=16, verbose=0)  # data-initialised codebooks
    assert {"perplexity_level_0", "codes_used_level_1"} <= set(history.history)
    images = blobs(16, seed=5)
    logs = model.evaluate(images, batch_size=16, verbose=0, return_dict=True)  # one fixed batch
    codes = model.encode(images)  # (16, 2, 3, 2)
    perplexities = []
    for level in range(2):
        counts = np.bincount(codes[..., level].ravel(), minlength=8)
        p = counts[counts > 0] / counts.sum()
        perplexities.append(np.exp(-np.sum(p * np.log(p))))
        assert logs[f"perplexity_level_{level}"] == pytest.approx(perplexities[-1], rel=1e-4)
        assert logs[f"codes_used_level_{level}"] == pytest.approx(np.count_nonzero(counts) / 8)
    assert logs["perplexity"] == pytest.approx(np.mean(perplexities), rel=1e-4)
