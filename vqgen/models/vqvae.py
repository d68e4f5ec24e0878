"""The VQ-VAE model: encoder, vector quantizer and decoder trained end to end.

References: van den Oord, Vinyals and Kavukcuoglu, "Neural Discrete Representation Learning" (2017);
for the other quantizers, Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple" (2023) and
Zeghidour et al., "SoundStream" (2021) / Lee et al., "Autoregressive Image Generation using Residual
Quantization" (2022).
"""

import math
import types

import keras
import numpy as np
import tensorflow as tf

from vqgen.models.decoder import Decoder
from vqgen.models.distribute import logs_for_all_strategies, scale_loss_for_replicas, sum_across_replicas
from vqgen.models.encoder import Encoder, check_downsample
from vqgen.models.finite_scalar_quantizer import FiniteScalarQuantizer
from vqgen.models.residual_vector_quantizer import ResidualVectorQuantizer
from vqgen.models.vector_quantizer import VectorQuantizer
from vqgen.settings import VQVAE_DEFAULTS

INFERENCE_BATCH_SIZE = 256
QUANTIZERS = ("vq", "fsq", "rvq")
# What residual VQ logs for each level as `NAME_level_I` (fields of `LevelStats`).
LEVEL_METRICS = ("perplexity", "codes_used")


@keras.saving.register_keras_serializable(package="vqgen")
class VQVAE(keras.Model):
    """A VQ-VAE that codes `H x W x C` images as `H/f x W/f` grids of integers in `[0, K)`.

    The quantizer is one of three (`quantizer=`): `"vq"`, the paper's learned codebook
    (`VectorQuantizer`); `"fsq"`, finite scalar quantization (`FiniteScalarQuantizer(levels)`: no
    codebook, no loss, `K = prod(levels)`, and the encoder's output depth is `len(levels)`, so
    `embedding_dim` and `num_embeddings` are ignored and report the FSQ values; with `init_from_data`
    each encoder channel is standardised by its running mean and variance (set on the first
    training batch, then an EMA with `latent_decay`), which keeps it in the range the fixed levels
    cover: FSQ has no codebook to initialise from the data; without it the default encoder's small
    initial outputs all round to one code and stay there, and a gain fixed on the first batch let
    a channel drift into tanh's flat tail where its gradient vanishes, both measured (README,
    "Quantizers")); `"rvq"`, residual VQ
    (`ResidualVectorQuantizer`: `num_quantizers` codebooks of `num_embeddings` codes, so a position
    has `d = num_quantizers` codes and grids are `[h, w, d]`).

    Trains with `compile(optimizer=...)` and `fit(images)` on arrays or a `tf.data.Dataset` of float
    images in [0, 1] (a dataset may also yield `(images, labels)`; labels are ignored). The loss is
    the mean squared reconstruction error plus the quantizer's loss; `fit` logs `loss`,
    `reconstruction_loss`, `vq_loss`, `perplexity`, `codes_used` (fraction of the K codes used by
    the batch) and `psnr` (dB, for images in [0, 1]). For `"rvq"`, `perplexity` and `codes_used`
    are the mean over the levels used, and each level `i` is also logged as `perplexity_level_i`
    and `codes_used_level_i` (a level dropped by quantizer dropout reports the codes it would
    have picked).

    The defaults (`vqgen.settings.VQVAESettings`) are the ones measured in
    `scripts/compare_keras_example.py`: an EMA codebook
    initialised from the first batch, with codes unused for `restart_after_steps` steps re-seeded
    from encoder outputs.

    Args:
        input_shape: tuple `(H, W, C)`. H and W divisible by `downsample`; C is 1 or 3.
        num_embeddings: int. Codebook size K (of each level for `"rvq"`; ignored for `"fsq"`).
            Defaults to the `VQVAESettings` value.
        embedding_dim: int. Code vector size D (ignored for `"fsq"`, where it is `len(levels)`).
            Defaults to the `VQVAESettings` value.
        downsample: int, one of 2, 4, 8. Defaults to the `VQVAESettings` value.
        hidden_channels: int. Width of encoder and decoder convolutions. Defaults to the
            `VQVAESettings` value.
        residual_channels: int. Width inside residual blocks. Defaults to the `VQVAESettings` value.
        num_residual_blocks: int. Defaults to the `VQVAESettings` value.
        beta: float. Commitment cost. Defaults to the `VQVAESettings` value.
        ema: bool. Learn the codebook by EMA. Defaults to the `VQVAESettings` value.
        decay: float. EMA decay. Defaults to the `VQVAESettings` value (measured best for short
            trainings; the paper's value suits long ones).
        epsilon: float. EMA Laplace smoothing. Defaults to the `VQVAESettings` value.
        restart_after_steps: int or None. Dead-code restart threshold in steps. Defaults to the
            `VQVAESettings` value.
        init_from_data: bool. Initialise the codebook from the first batch (for `"fsq"`:
            standardise the encoder output by running statistics). Defaults to the `VQVAESettings`
            value.
        quantizer: str, one of `"vq"`, `"fsq"`, `"rvq"`. Defaults to the `VQVAESettings` value.
        levels: list of int. `"fsq"` only: the levels of each channel. Defaults to the
            `VQVAESettings` value.
        num_quantizers: int. `"rvq"` only: the number of codebooks d. Defaults to the
            `VQVAESettings` value.
        quantizer_dropout: float in [0, 1]. `"rvq"` only: probability per training batch of using
            only a random prefix of the codebooks. Defaults to the `VQVAESettings` value.
        latent_decay: float in [0, 1). `"fsq"` only: EMA decay of the running per-channel mean and
            variance that standardise the encoder output. Defaults to the `VQVAESettings` value.
        seed: int or None. Seed of the quantizer's random choices.
        encoder: a Keras layer or None. Your own encoder mapping `(B, H, W, C)` images to
            `(B, H/f, W/f, embedding_dim)`; replaces the paper's (whose width arguments are then
            unused). Must be serializable for `.keras` saving. Defaults to `None`.
        decoder: a Keras layer or None. Your own decoder, the inverse shape map. Defaults to `None`.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: for a size not divisible by `downsample`, a channel count other than 1 or 3, or
            any argument out of range.

    Example:
    >>> model = VQVAE(input_shape=(28, 28, 1), num_embeddings=128, embedding_dim=16)
    >>> model.compile(optimizer=keras.optimizers.Adam(2e-3))
    >>> model.fit(images, epochs=5, batch_size=64)
    >>> codes = model.encode(images[:8])          # int32 (8, 7, 7)
    >>> model.decode(codes).shape
    (8, 28, 28, 1)
    >>> VQVAE(input_shape=(28, 28, 1), quantizer="rvq", num_quantizers=2).encode(images[:8]).shape
    (8, 7, 7, 2)
    """

    def __init__(
        self,
        input_shape,
        num_embeddings=VQVAE_DEFAULTS.num_embeddings,
        embedding_dim=VQVAE_DEFAULTS.embedding_dim,
        downsample=VQVAE_DEFAULTS.downsample,
        hidden_channels=VQVAE_DEFAULTS.hidden_channels,
        residual_channels=VQVAE_DEFAULTS.residual_channels,
        num_residual_blocks=VQVAE_DEFAULTS.num_residual_blocks,
        beta=VQVAE_DEFAULTS.beta,
        ema=VQVAE_DEFAULTS.ema,
        decay=VQVAE_DEFAULTS.decay,
        epsilon=VQVAE_DEFAULTS.epsilon,
        restart_after_steps=VQVAE_DEFAULTS.restart_after_steps,
        init_from_data=VQVAE_DEFAULTS.init_from_data,
        quantizer=VQVAE_DEFAULTS.quantizer,
        levels=VQVAE_DEFAULTS.levels,
        num_quantizers=VQVAE_DEFAULTS.num_quantizers,
        quantizer_dropout=VQVAE_DEFAULTS.quantizer_dropout,
        latent_decay=VQVAE_DEFAULTS.latent_decay,
        seed=None,
        encoder=None,
        decoder=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Arguments
        check_downsample(downsample)
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (H, W, C). Received: input_shape={input_shape}")
        height, width, channels = (int(size) for size in input_shape)
        if height % downsample or width % downsample:
            raise ValueError(
                f"Image size {height}x{width} is not divisible by the downsampling factor "
                f"{downsample}; resize or pad the images, or choose another --downsample."
            )
        if quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {QUANTIZERS}. Received: quantizer={quantizer!r}")
        if not 0.0 <= latent_decay < 1.0:
            raise ValueError(f"latent_decay must be in [0, 1). Received: latent_decay={latent_decay}")
        self.image_shape = (height, width, channels)
        self.grid_shape = (height // downsample, width // downsample)
        self.downsample = downsample
        self.hidden_channels = hidden_channels
        self.residual_channels = residual_channels
        self.num_residual_blocks = num_residual_blocks

        # Layers
        widths = dict(
            downsample=downsample,
            hidden_channels=hidden_channels,
            residual_channels=residual_channels,
            num_residual_blocks=num_residual_blocks,
        )
        self.custom_parts = {"encoder": encoder is not None, "decoder": decoder is not None}
        # The VQ options, kept for get_config whichever quantizer uses them.
        self.vq_options = dict(
            beta=beta,
            ema=ema,
            decay=decay,
            epsilon=epsilon,
            restart_after_steps=restart_after_steps,
            init_from_data=init_from_data,
            seed=seed,
        )
        self.quantizer_kind = quantizer
        if quantizer == "fsq":
            quantizer_layer = FiniteScalarQuantizer(levels, name="quantizer")
        elif quantizer == "rvq":
            quantizer_layer = ResidualVectorQuantizer(
                num_quantizers,
                num_embeddings,
                embedding_dim,
                quantizer_dropout=quantizer_dropout,
                name="quantizer",
                **self.vq_options,
            )
        else:
            quantizer_layer = VectorQuantizer(
                num_embeddings, embedding_dim, name="quantizer", **self.vq_options
            )
        self.levels = list(quantizer_layer.levels if quantizer == "fsq" else levels)
        self.num_quantizers = num_quantizers
        self.quantizer_dropout = quantizer_dropout
        self.latent_decay = latent_decay
        # What the chosen quantizer makes: K codes of size D, `code_depth` codes per grid position.
        self.num_embeddings = quantizer_layer.num_embeddings
        self.embedding_dim = quantizer_layer.embedding_dim
        self.code_depth = num_quantizers if quantizer == "rvq" else 1
        self.encoder = encoder or Encoder(self.embedding_dim, name="encoder", **widths)
        self.quantizer = quantizer_layer
        self.decoder = decoder or Decoder(channels, name="decoder", **widths)

        # Metrics shown by fit/evaluate; residual VQ also logs each level's usage.
        names = ["loss", "reconstruction_loss", "vq_loss", "perplexity", "codes_used", "psnr"]
        if quantizer == "rvq":
            names += [f"{name}_level_{level}" for level in range(num_quantizers) for name in LEVEL_METRICS]
        self.trackers = [keras.metrics.Mean(name=name) for name in names]
        self._compiled_functions = types.SimpleNamespace(cache={})
        self.build((None,) + self.image_shape)

    def build(self, input_shape):
        self.encoder.build(input_shape)
        latent_shape = tuple(self.encoder.compute_output_shape(input_shape))
        expected = (None,) + self.grid_shape + (self.embedding_dim,)
        if latent_shape[1:] != expected[1:]:
            raise ValueError(
                f"The encoder maps {input_shape} to {latent_shape}, but this model needs "
                f"{expected} (grid {self.grid_shape}, embedding_dim {self.embedding_dim}); "
                "fix the encoder's output size or depth."
            )
        self.quantizer.build(latent_shape)
        if self.quantizer_kind == "fsq":
            # Running per-channel statistics of the encoder output, which `_latents` standardises.
            stats = dict(shape=(self.embedding_dim,), trainable=False, aggregation="only_first_replica")
            self.latent_mean = self.add_weight(
                name="latent_mean", initializer="zeros", dtype="float32", **stats
            )
            self.latent_variance = self.add_weight(
                name="latent_variance", initializer="ones", dtype="float32", **stats
            )
            self.latent_stats_set = self.add_weight(
                name="latent_stats_set",
                shape=(),
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                dtype="int32",
            )
        self.decoder.build(latent_shape)
        self.built = True

    def _latents(self, images, training=False):
        """The encoder's output; for FSQ standardised per channel by the running statistics."""
        latents = self.encoder(images, training=training)
        if self.quantizer_kind != "fsq":
            return latents
        latents = tf.cast(latents, "float32")
        if training and self.vq_options["init_from_data"]:
            # The batch's mean and variance over all replicas, set on the first batch and then
            # followed by an EMA with `latent_decay`; branch-free, as VectorQuantizer's data initialisation.
            flat = tf.stop_gradient(tf.reshape(latents, [-1, self.embedding_dim]))  # (N, d)
            count = sum_across_replicas(tf.cast(tf.shape(flat)[0], "float32"))
            mean = sum_across_replicas(tf.reduce_sum(flat, axis=0)) / count  # (d,)
            variance = sum_across_replicas(tf.reduce_sum(tf.square(flat), axis=0)) / count - mean**2
            decay = tf.where(tf.equal(self.latent_stats_set, 0), 0.0, self.latent_decay)
            self.latent_mean.assign(decay * self.latent_mean + (1.0 - decay) * mean)
            self.latent_variance.assign(decay * self.latent_variance + (1.0 - decay) * variance)
            self.latent_stats_set.assign(1)
        return (latents - self.latent_mean) * tf.math.rsqrt(tf.maximum(self.latent_variance, 1e-12))

    # ------------------------------------------------------------------ Keras training

    def call(self, images, training=None):
        return self.decoder(self.quantizer(self._latents(images, training=training), training=training))

    @property
    def metrics(self):
        return self.trackers

    def train_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            terms = self._loss_terms(images, training=True)
            loss = self.optimizer.scale_loss(scale_loss_for_replicas(terms["loss"]))
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._update_trackers(terms)

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_trackers(self._loss_terms(images, training=False))

    def _loss_terms(self, images, training):
        images = tf.cast(images, "float32")
        latents = self._latents(images, training=training)
        if self.quantizer_kind == "rvq":
            result, level_stats = self.quantizer.quantize_with_level_stats(latents, training=training)
        else:
            result, level_stats = self.quantizer.quantize_with_stats(latents, training=training), None
        reconstructions = tf.cast(self.decoder(result.quantized, training=training), "float32")
        squared_error = tf.reduce_mean(tf.square(reconstructions - images), axis=[1, 2, 3])  # (B,)
        reconstruction_loss = tf.reduce_mean(squared_error)
        terms = {
            "loss": reconstruction_loss + result.loss,
            "reconstruction_loss": reconstruction_loss,
            "vq_loss": result.loss,
            "perplexity": result.perplexity,
            "codes_used": result.codes_used,
            "psnr": tf.reduce_mean(-10.0 * tf.math.log(squared_error + 1e-10) / math.log(10.0)),
        }
        if level_stats is not None:  # residual VQ: each level's usage
            for level in range(self.code_depth):
                terms.update(
                    {f"{name}_level_{level}": getattr(level_stats, name)[level] for name in LEVEL_METRICS}
                )
        return terms

    def _update_trackers(self, terms):
        for tracker in self.trackers:
            tracker.update_state(terms[tracker.name])
        return logs_for_all_strategies({tracker.name: tracker.result() for tracker in self.trackers})

    # ------------------------------------------------------------------ graph-level codec

    def encode_tensor(self, images):
        """Graph-compatible `encode` without eager validation: float images → int32 codes.

        Args:
            images: float tensor `[B, H, W, C]` in [0, 1].

        Returns:
            int32 tensor `[B, h, w]`, or `[B, h, w, d]` for `"rvq"`.
        """
        return self.quantizer.indices(self._latents(tf.cast(images, "float32")))

    def decode_tensor(self, codes):
        """Graph-compatible `decode`: int32 codes → float32 images in [0, 1].

        Args:
            codes: int tensor `[B, h, w]` (`[B, h, w, k]`, `1 <= k <= d`, for `"rvq"`); values
                outside `[0, K)` fail a graph assertion.

        Returns:
            float32 tensor `[B, H, W, C]`, clipped to [0, 1].
        """
        images = tf.cast(self.decoder(self.quantizer.lookup(codes), training=False), "float32")
        return tf.clip_by_value(images, 0.0, 1.0)

    # ------------------------------------------------------------------ array API

    def encode(self, images):
        """Codes images as grids of integers.

        Args:
            images: array `[B, H, W, C]`, float in [0, 1] or uint8 (scaled by 1/255).

        Returns:
            numpy int32 array `[B, h, w]`, or `[B, h, w, d]` for `"rvq"` (level 0 first).

        Raises:
            ValueError: wrong rank, size or channels, or non-finite / out-of-range pixels.
        """
        return self._in_batches(
            self._compiled("encode", lambda: tf.function(self.encode_tensor, reduce_retracing=True)),
            self.check_images(images),
        )

    def decode(self, codes):
        """Turns grids of codes back into images.

        Args:
            codes: integer array `[B, h, w]` with values in `[0, K)`; for `"rvq"` `[B, h, w, k]`
                with `1 <= k <= d` (fewer levels decode coarser images).

        Returns:
            numpy float32 array `[B, H, W, C]` in [0, 1].

        Raises:
            ValueError: wrong grid shape or codes outside `[0, K)`.
        """
        codes = self.check_codes(codes)
        # One function per code depth: a relaxed (unknown) depth cannot say which levels to add up.
        key = "decode" if codes.ndim == 3 else f"decode_{codes.shape[-1]}_levels"
        return self._in_batches(
            self._compiled(key, lambda: tf.function(self.decode_tensor, reduce_retracing=True)), codes
        )

    def reconstruct(self, images):
        """Encodes then decodes images.

        Args:
            images: array `[B, H, W, C]` as for `encode`.

        Returns:
            numpy float32 array of the same shape, in [0, 1].
        """
        return self.decode(self.encode(images))

    @property
    def bits_per_position(self):
        """Bits of the codes of one grid position: `d * log2 K` (`d = 1` unless `"rvq"`)."""
        return self.code_depth * math.log2(self.num_embeddings)

    @property
    def compression_ratio(self):
        """Bits of the 8-bit image over bits of its code grid: `H*W*C*8 / (h*w*bits_per_position)`."""
        height, width, channels = self.image_shape
        rows, columns = self.grid_shape
        return height * width * channels * 8 / (rows * columns * self.bits_per_position)

    # ------------------------------------------------------------------ codes as one grid of tokens

    @property
    def token_grid_shape(self):
        """`(h, w * d)`: the shape of `to_token_grid`'s grids of single codes (`(h, w)` unless `"rvq"`)."""
        rows, columns = self.grid_shape
        return (rows, columns * self.code_depth)

    def to_token_grid(self, codes):
        """Lays codes out as a grid of single integers, the form any prior over `[N, rows, cols]` takes.

        For `"rvq"` the d codes of a position sit side by side along the columns (depth
        interleaved), so raster order visits position by position and, within one, level 0 to
        d - 1: a prior models the depth as part of its ordinary autoregressive order. For `"vq"`
        and `"fsq"` the codes are returned unchanged.

        Args:
            codes: int array or tensor `[N, h, w]`, or `[N, h, w, d]` for `"rvq"`.

        Returns:
            the same kind of array, `[N, h, w * d]`.
        """
        reshape = np.reshape if isinstance(codes, np.ndarray) else tf.reshape
        return reshape(codes, (-1, *self.token_grid_shape))

    def from_token_grid(self, tokens):
        """The inverse of `to_token_grid`: `[N, h, w * d]` → `[N, h, w, d]` (`[N, h, w]` unless `"rvq"`)."""
        reshape = np.reshape if isinstance(tokens, np.ndarray) else tf.reshape
        return reshape(tokens, (-1, *self.code_shape))

    @property
    def code_shape(self):
        """The shape of one image's codes: `(h, w)`, or `(h, w, d)` for `"rvq"`."""
        return self.grid_shape + ((self.code_depth,) if self.quantizer_kind == "rvq" else ())

    def check_images(self, images):
        """Validates images for this model and returns them as float32 in [0, 1].

        Args:
            images: array-like `[B, H, W, C]`, float in [0, 1] or uint8.

        Returns:
            numpy float32 array.

        Raises:
            ValueError: wrong rank, size or channels, non-finite or out-of-range pixels.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            raise ValueError(
                f"Images have shape {images.shape[1:] if images.ndim == 4 else images.shape} but this "
                f"model expects (batch, {', '.join(map(str, self.image_shape))}); use images of the "
                "size and channels the model was trained on."
            )
        if images.dtype == np.uint8:
            return images.astype("float32") / 255.0
        images = images.astype("float32")
        if not np.all(np.isfinite(images)):
            raise ValueError("Images contain NaN or infinite pixel values; clean the data first.")
        if images.size and (images.min() < 0.0 or images.max() > 1.0):
            raise ValueError(
                f"Pixel values must be in [0, 1] (got [{images.min():g}, {images.max():g}]); "
                "divide 8-bit images by 255."
            )
        return images

    def check_codes(self, codes):
        """Validates a batch of code grids for this model and returns them as int32.

        Args:
            codes: integer array-like `[B, h, w]`, or `[B, h, w, k]` with `1 <= k <= d` for `"rvq"`.

        Returns:
            numpy int32 array.

        Raises:
            ValueError: wrong shape, non-integer values, or codes outside `[0, K)`.
        """
        codes = np.asarray(codes)
        rank = len(self.code_shape) + 1
        levels_ok = rank == 3 or (codes.ndim == 4 and 1 <= codes.shape[-1] <= self.code_depth)
        if codes.ndim != rank or codes.shape[1:3] != self.grid_shape or not levels_ok:
            expected = ", ".join(map(str, self.grid_shape)) + (", d" if rank == 4 else "")
            depth = f" with d from 1 to {self.code_depth}" if rank == 4 else ""
            raise ValueError(
                f"Codes have shape {codes.shape} but this model expects (batch, {expected}){depth}; "
                "pass grids made by this model's encode."
            )
        if codes.size and not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"Codes must be integers. Received: dtype={codes.dtype}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.num_embeddings):
            raise ValueError(
                f"Codes must be in [0, {self.num_embeddings}); received values in "
                f"[{codes.min()}, {codes.max()}]. Use codes produced by this model."
            )
        return codes.astype("int32")

    def _compiled(self, key, build):
        """Returns the `tf.function` kept under `key`, calling `build()` to make it the first time.

        The functions live in a plain namespace so that neither Keras tracking nor SavedModel
        export walks them (the same pattern as `prior.PixelCNN`).
        """
        cache = self._compiled_functions.cache
        if key not in cache:
            cache[key] = build()
        return cache[key]

    @staticmethod
    def _in_batches(function, array):
        outputs = [
            function(tf.constant(array[start : start + INFERENCE_BATCH_SIZE])).numpy()
            for start in range(0, len(array), INFERENCE_BATCH_SIZE)
        ]
        return np.concatenate(outputs) if outputs else function(tf.constant(array)).numpy()

    # ------------------------------------------------------------------ config

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.image_shape),
                "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim,
                "downsample": self.downsample,
                "hidden_channels": self.hidden_channels,
                "residual_channels": self.residual_channels,
                "num_residual_blocks": self.num_residual_blocks,
                **self.vq_options,
                "quantizer": self.quantizer_kind,
                "levels": list(self.levels),
                "num_quantizers": self.num_quantizers,
                "quantizer_dropout": self.quantizer_dropout,
                "latent_decay": self.latent_decay,
            }
        )
        for part, custom in self.custom_parts.items():
            config[part] = keras.saving.serialize_keras_object(getattr(self, part)) if custom else None
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for part in ("encoder", "decoder"):
            if config.get(part) is not None:
                config[part] = keras.saving.deserialize_keras_object(config[part])
        return cls(**config)
