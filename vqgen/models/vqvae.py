"""The VQ-VAE model: encoder, vector quantizer and decoder trained end to end.

Reference: van den Oord, Vinyals and Kavukcuoglu, "Neural Discrete Representation Learning" (2017).
"""

import math
import types

import keras
import numpy as np
import tensorflow as tf

from vqgen.models.decoder import Decoder
from vqgen.models.distribute import logs_for_all_strategies, scale_loss_for_replicas
from vqgen.models.encoder import Encoder, check_downsample
from vqgen.models.vector_quantizer import VectorQuantizer
from vqgen.settings import VQVAE_DEFAULTS

INFERENCE_BATCH_SIZE = 256


@keras.saving.register_keras_serializable(package="vqgen")
class VQVAE(keras.Model):
    """A VQ-VAE that codes `H x W x C` images as `H/f x W/f` grids of integers in `[0, K)`.

    Trains with `compile(optimizer=...)` and `fit(images)` on arrays or a `tf.data.Dataset` of float
    images in [0, 1] (a dataset may also yield `(images, labels)`; labels are ignored). The loss is
    the mean squared reconstruction error plus the quantizer's loss; `fit` logs `loss`,
    `reconstruction_loss`, `vq_loss`, `perplexity`, `codes_used` (fraction of the K codes used by
    the batch) and `psnr` (dB, for images in [0, 1]).

    The defaults (`vqgen.settings.VQVAESettings`) are the ones measured in
    `scripts/compare_keras_example.py`: an EMA codebook
    initialised from the first batch, with codes unused for `restart_after_steps` steps re-seeded
    from encoder outputs.

    Args:
        input_shape: tuple `(H, W, C)`. H and W divisible by `downsample`; C is 1 or 3.
        num_embeddings: int. Codebook size K. Defaults to the `VQVAESettings` value.
        embedding_dim: int. Code vector size D. Defaults to the `VQVAESettings` value.
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
        init_from_data: bool. Initialise the codebook from the first batch. Defaults to the
            `VQVAESettings` value.
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
        self.image_shape = (height, width, channels)
        self.grid_shape = (height // downsample, width // downsample)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
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
        self.encoder = encoder or Encoder(embedding_dim, name="encoder", **widths)
        self.quantizer = VectorQuantizer(
            num_embeddings,
            embedding_dim,
            beta=beta,
            ema=ema,
            decay=decay,
            epsilon=epsilon,
            restart_after_steps=restart_after_steps,
            init_from_data=init_from_data,
            seed=seed,
            name="quantizer",
        )
        self.decoder = decoder or Decoder(channels, name="decoder", **widths)

        # Metrics shown by fit/evaluate
        self.trackers = [
            keras.metrics.Mean(name=name)
            for name in ("loss", "reconstruction_loss", "vq_loss", "perplexity", "codes_used", "psnr")
        ]
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
        self.decoder.build(latent_shape)
        self.built = True

    # ------------------------------------------------------------------ Keras training

    def call(self, images, training=None):
        return self.decoder(self.quantizer(self.encoder(images), training=training))

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
        result = self.quantizer.quantize_with_stats(
            self.encoder(images, training=training), training=training
        )
        reconstructions = tf.cast(self.decoder(result.quantized, training=training), "float32")
        squared_error = tf.reduce_mean(tf.square(reconstructions - images), axis=[1, 2, 3])  # (B,)
        reconstruction_loss = tf.reduce_mean(squared_error)
        return {
            "loss": reconstruction_loss + result.loss,
            "reconstruction_loss": reconstruction_loss,
            "vq_loss": result.loss,
            "perplexity": result.perplexity,
            "codes_used": result.codes_used,
            "psnr": tf.reduce_mean(-10.0 * tf.math.log(squared_error + 1e-10) / math.log(10.0)),
        }

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
            int32 tensor `[B, h, w]`.
        """
        return self.quantizer.indices(self.encoder(tf.cast(images, "float32"), training=False))

    def decode_tensor(self, codes):
        """Graph-compatible `decode`: int32 codes → float32 images in [0, 1].

        Args:
            codes: int tensor `[B, h, w]`; values outside `[0, K)` fail a graph assertion.

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
            numpy int32 array `[B, h, w]`.

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
            codes: integer array `[B, h, w]` with values in `[0, K)`.

        Returns:
            numpy float32 array `[B, H, W, C]` in [0, 1].

        Raises:
            ValueError: wrong grid shape or codes outside `[0, K)`.
        """
        return self._in_batches(
            self._compiled("decode", lambda: tf.function(self.decode_tensor, reduce_retracing=True)),
            self.check_codes(codes),
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
    def compression_ratio(self):
        """Bits of the 8-bit image over bits of its code grid: `H*W*C*8 / (h*w*log2 K)`."""
        height, width, channels = self.image_shape
        rows, columns = self.grid_shape
        return height * width * channels * 8 / (rows * columns * math.log2(self.num_embeddings))

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
            codes: integer array-like `[B, h, w]`.

        Returns:
            numpy int32 array.

        Raises:
            ValueError: wrong shape, non-integer values, or codes outside `[0, K)`.
        """
        codes = np.asarray(codes)
        if codes.ndim != 3 or codes.shape[1:] != self.grid_shape:
            raise ValueError(
                f"Codes have shape {codes.shape} but this model expects (batch, "
                f"{self.grid_shape[0]}, {self.grid_shape[1]}); pass grids made by this model's encode."
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
        quantizer = self.quantizer
        config.update(
            {
                "input_shape": list(self.image_shape),
                "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim,
                "downsample": self.downsample,
                "hidden_channels": self.hidden_channels,
                "residual_channels": self.residual_channels,
                "num_residual_blocks": self.num_residual_blocks,
                "beta": quantizer.beta,
                "ema": quantizer.ema,
                "decay": quantizer.decay,
                "epsilon": quantizer.epsilon,
                "restart_after_steps": quantizer.restart_after_steps,
                "init_from_data": quantizer.init_from_data,
                "seed": quantizer.seed,
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
