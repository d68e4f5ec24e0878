"""The VQ-VAE model: encoder, quantizer and decoder trained end to end.

Reference: van den Oord, Vinyals and Kavukcuoglu, "Neural Discrete Representation Learning" (2017).
"""

import contextlib
import math
import types

import keras
import numpy as np
import tensorflow as tf

from tf_distribute_helpers import logs_for_all_strategies, scale_loss_for_replicas, sum_across_replicas
from vqgen.models.decoder import Decoder
from vqgen.models.encoder import Encoder, check_downsample
from vqgen.models.losses import MeanSquaredError, check_loss_terms
from vqgen.models.quantization import check_quantizer
from vqgen.models.quantizers import SHORTCUT_SETTINGS, build_quantizer
from vqgen.settings import VQVAE_DEFAULTS

INFERENCE_BATCH_SIZE = 256


@keras.saving.register_keras_serializable(package="vqgen")
class VQVAE(keras.Model):
    """A VQ-VAE that codes `H x W x C` images as `H/f x W/f` grids of integers in `[0, K)`.

    The model is three parts: an encoder mapping images to `[B, H/f, W/f, D]` vectors, a quantizer
    turning each vector into codes, and a decoder mapping the quantized vectors back to images. The
    quantizer is any layer with the quantizer protocol (`vqgen.models.quantization`), given as an
    object (`quantizer=vqgen.FiniteScalarQuantizer(levels=[8, 5, 5, 5])`) or by a shortcut built
    from this constructor's flat settings (`build_quantizer`): `"vq"`, the paper's learned codebook
    (`VectorQuantizer`); `"fsq"`, finite scalar quantization (`FiniteScalarQuantizer(levels)`: no
    codebook, `K = prod(levels)`, encoder depth `len(levels)`; with `init_from_data` it standardises
    each channel by running statistics); `"rvq"`, residual VQ (`ResidualVectorQuantizer`:
    `num_quantizers` codebooks, so a position has `d = num_quantizers` codes and grids are
    `[h, w, d]`). K, D and the codes of a position are the quantizer's.

    Trains with `compile(optimizer=...)` and `fit(images)` on arrays or a `tf.data.Dataset` of float
    images in [0, 1] (a dataset may also yield `(images, labels)`; labels are ignored). The loss is
    `reconstruction_loss(images, reconstructions)` (the mean squared error by default) plus the
    quantizer's loss plus each of `loss_terms`; `fit` logs `loss`, `reconstruction_loss`,
    `vq_loss`, the quantizer's statistics (`perplexity`, `codes_used`: the fraction of the K codes
    used by the batch, and for `"rvq"` each level's `perplexity_level_i` and `codes_used_level_i`),
    `psnr` (dB, for images in [0, 1]) and each loss term under its name. A loss term with a network
    of its own trains it after the model's step (`LossTerm.update`).

    Args:
        input_shape: tuple `(H, W, C)`. H and W divisible by `downsample`; C is 1 or 3.
        num_embeddings: int. Codebook size K (of each level for `"rvq"`; ignored for `"fsq"`).
            Shortcut setting. Defaults to the `VQVAESettings` value.
        embedding_dim: int. Code vector size D (ignored for `"fsq"`, where it is `len(levels)`).
            Shortcut setting. Defaults to the `VQVAESettings` value.
        downsample: int, one of 2, 4, 8. Defaults to the `VQVAESettings` value.
        hidden_channels: int. Width of encoder and decoder convolutions. Defaults to the
            `VQVAESettings` value.
        residual_channels: int. Width inside residual blocks. Defaults to the `VQVAESettings` value.
        num_residual_blocks: int. Defaults to the `VQVAESettings` value.
        beta: float. Commitment cost. Shortcut setting. Defaults to the `VQVAESettings` value.
        ema: bool. Learn the codebook by EMA. Shortcut setting. Defaults to the `VQVAESettings`
            value.
        decay: float. EMA decay of the codebook. Shortcut setting. Defaults to the `VQVAESettings`
            value.
        epsilon: float. EMA Laplace smoothing. Shortcut setting. Defaults to the `VQVAESettings`
            value.
        restart_after_steps: int or None. Dead-code restart threshold in steps. Shortcut setting.
            Defaults to the `VQVAESettings` value.
        init_from_data: bool. Initialise the codebook from the first batch (for `"fsq"`:
            standardise the encoder output by running statistics). Shortcut setting. Defaults to
            the `VQVAESettings` value.
        quantizer: str, one of `"vq"`, `"fsq"`, `"rvq"`, or a quantizer layer (then the shortcut
            settings must keep their defaults). Defaults to the `VQVAESettings` value.
        levels: list of int. `"fsq"` only: the levels of each channel. Defaults to the
            `VQVAESettings` value.
        num_quantizers: int. `"rvq"` only: the number of codebooks d. Defaults to the
            `VQVAESettings` value.
        quantizer_dropout: float in [0, 1]. `"rvq"` only: probability per training batch of using
            only a random prefix of the codebooks. Defaults to the `VQVAESettings` value.
        latent_decay: float in [0, 1). `"fsq"` only: EMA decay of the running per-channel mean and
            variance that standardise the encoder output. Defaults to the `VQVAESettings` value.
        codebook_dim: int or None. `"vq"` and `"rvq"`: the size of the projection codes are looked
            up in. Defaults to the `VQVAESettings` value.
        l2_normalize: bool. `"vq"` only: nearest code by cosine similarity. Defaults to the
            `VQVAESettings` value.
        seed: int or None. Seed of the shortcut quantizer's random choices.
        encoder: a Keras layer or None. Your own encoder mapping `(B, H, W, C)` images to
            `(B, H/f, W/f, embedding_dim)`; replaces the paper's (whose width arguments are then
            unused). Must be serializable for `.keras` saving. Defaults to `None`.
        decoder: a Keras layer or None. Your own decoder, the inverse shape map. Defaults to `None`.
        reconstruction_loss: a callable `(images, reconstructions) -> float32 scalar`, such as
            `vqgen.models.MeanSquaredError()` or a `keras.losses.Loss`; serializable for `.keras`
            saving. Defaults to `MeanSquaredError()`.
        loss_terms: list of `LossTerm` layers added to the loss, each logged under its name.
            Defaults to none.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: for a size not divisible by `downsample`, a channel count other than 1 or 3, an
            unknown quantizer or one without the quantizer protocol, a shortcut setting given with a
            quantizer object, a loss term named like a logged metric, or any argument out of range.

    Example:
    >>> model = VQVAE(input_shape=(28, 28, 1), num_embeddings=128, embedding_dim=16)
    >>> model.compile(optimizer=keras.optimizers.Adam(2e-3))
    >>> model.fit(images, epochs=5, batch_size=64)
    >>> codes = model.encode(images[:8])          # int32 (8, 7, 7)
    >>> model.decode(codes).shape
    (8, 28, 28, 1)
    >>> fsq = VQVAE(input_shape=(28, 28, 1), quantizer=FiniteScalarQuantizer(levels=[8, 5, 5, 5]))
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
        codebook_dim=VQVAE_DEFAULTS.codebook_dim,
        l2_normalize=VQVAE_DEFAULTS.l2_normalize,
        seed=None,
        encoder=None,
        decoder=None,
        reconstruction_loss=None,
        loss_terms=(),
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
        shortcut = dict(
            num_embeddings=num_embeddings,
            embedding_dim=embedding_dim,
            beta=beta,
            ema=ema,
            decay=decay,
            epsilon=epsilon,
            restart_after_steps=restart_after_steps,
            init_from_data=init_from_data,
            levels=levels,
            num_quantizers=num_quantizers,
            quantizer_dropout=quantizer_dropout,
            latent_decay=latent_decay,
            codebook_dim=codebook_dim,
            l2_normalize=l2_normalize,
        )
        if isinstance(quantizer, str):
            quantizer = build_quantizer(quantizer, seed=seed, **shortcut)
        else:
            check_quantizer(quantizer)
            given = [name for name in SHORTCUT_SETTINGS if shortcut[name] != getattr(VQVAE_DEFAULTS, name)]
            given += ["seed"] if seed is not None else []
            if given:
                raise ValueError(
                    f"{', '.join(given)} only shape the 'vq' / 'fsq' / 'rvq' shortcuts; set them on the "
                    f"quantizer object instead. Received: quantizer={type(quantizer).__name__}"
                )
        loss_terms = check_loss_terms(loss_terms, quantizer.statistic_names)
        self.image_shape = (height, width, channels)
        self.grid_shape = (height // downsample, width // downsample)
        self.downsample = downsample
        self.hidden_channels = hidden_channels
        self.residual_channels = residual_channels
        self.num_residual_blocks = num_residual_blocks
        # What the quantizer makes: K codes, vectors of size D, codes of shape `code_shape` per position.
        self.num_embeddings = quantizer.num_embeddings
        self.embedding_dim = quantizer.embedding_dim

        # Layers (assigned in this order, which fixes the order of `weights`)
        widths = dict(
            downsample=downsample,
            hidden_channels=hidden_channels,
            residual_channels=residual_channels,
            num_residual_blocks=num_residual_blocks,
        )
        self.custom_parts = {"encoder": encoder is not None, "decoder": decoder is not None}
        self.encoder = encoder or Encoder(self.embedding_dim, name="encoder", **widths)
        self.quantizer = quantizer
        self.decoder = decoder or Decoder(channels, name="decoder", **widths)
        self.reconstruction_loss = reconstruction_loss or MeanSquaredError()
        self.loss_terms = list(loss_terms)

        # Metrics shown by fit/evaluate
        names = ["loss", "reconstruction_loss", "vq_loss", *quantizer.statistic_names, "psnr"]
        names += [
            name for term in self.loss_terms for name in (term.name, *term.call_log_names, *term.log_names)
        ]
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
        if not self.quantizer.built:  # a quantizer given built (or deserialized) keeps its weights
            self.quantizer.build(latent_shape)
        self.decoder.build(latent_shape)
        for term in self.loss_terms:  # its own network and optimizer, before any traced step
            if not term.built:
                term.build(input_shape)
        self.built = True

    def load_own_variables(self, store):
        # The model has no variables of its own. Files written before quantizers held their whole
        # state kept FSQ's running statistics here, as the model's; they belong to the quantizer.
        if len(store.keys()):
            self.quantizer.load_own_variables(store)

    # ------------------------------------------------------------------ Keras training

    def call(self, images, training=None):
        return self.decoder(self.quantizer(self.encoder(images, training=training), training=training))

    @property
    def metrics(self):
        return self.trackers

    def train_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        images = tf.cast(images, "float32")
        # The model's step: every loss term, one gradient, its optimizer.
        with tf.GradientTape(persistent=self._needs_gradient_norm) as tape:
            reconstructions, logs = self.compute_losses(images, training=True, tape=tape)
            loss = self.optimizer.scale_loss(scale_loss_for_replicas(logs["loss"]))
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        # Then each loss term with a network of its own trains it on this step's reconstructions.
        for term in self.loss_terms:
            logs.update(term.update(images, tf.stop_gradient(reconstructions)))
        return self._update_trackers(logs)

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with (
            tf.GradientTape(persistent=True)
            if self._needs_gradient_norm
            else contextlib.nullcontext() as tape
        ):
            logs = self.compute_losses(tf.cast(images, "float32"), training=False, tape=tape)[1]
        return self._update_trackers(logs)

    @property
    def _needs_gradient_norm(self):
        return any(term.needs_gradient_norm for term in self.loss_terms)

    @property
    def last_decoder_kernel(self):
        """The decoder's last kernel (its last trainable weight of rank 2 or more): where an adaptive
        loss term compares gradient norms (Esser et al. 2021)."""
        return [weight for weight in self.decoder.trainable_weights if len(weight.shape) > 1][-1]

    def _gradient_norm(self, tape):
        """A function: a loss computed under `tape` -> the norm of its gradient at `last_decoder_kernel`.

        Under a multi-replica strategy each replica's loss is the mean over its share of the batch;
        the replicas' gradients are averaged first, so the norm is that of the global batch's loss
        gradient, the same on every replica and as on one device.
        """

        def gradient_norm(loss):
            with tape.stop_recording():
                gradient = tf.cast(tape.gradient(loss, self.last_decoder_kernel), "float32")
                replicas = tf.distribute.get_strategy().num_replicas_in_sync
                return tf.norm(sum_across_replicas(gradient) / replicas)

        return gradient_norm

    @property
    def trainable_weights(self):
        """The weights the model's optimizer trains: every trainable weight but the loss terms' (a
        term with a network of its own trains it with its own optimizer, in `LossTerm.update`)."""
        return self._without_loss_terms(super().trainable_weights)

    @property
    def trainable_variables(self):
        """The same as `trainable_weights` (Keras builds the optimizer from this list)."""
        return self._without_loss_terms(super().trainable_variables)

    @property
    def codec_variables(self):
        """Every variable but the loss terms' (a discriminator and its step count): what encoding and
        decoding use, and what an export holds."""
        return self._without_loss_terms(self.variables)

    def _without_loss_terms(self, variables):
        terms = {id(variable) for term in getattr(self, "loss_terms", ()) for variable in term.variables}
        return [variable for variable in variables if id(variable) not in terms]

    def compute_losses(self, images, training=False, tape=None):
        """One pass of the model and every term of its loss.

        Args:
            images: float32 tensor `[B, H, W, C]` in [0, 1].
            training: bool. Whether the quantizer updates its state (and layers train).
            tape: a persistent `tf.GradientTape` recording this pass, or None; needed by loss terms
                with `needs_gradient_norm`.

        Returns:
            A pair: the float32 reconstructions `[B, H, W, C]` (not clipped), and a dict of float32
            scalars: `loss` (the sum minimised), `reconstruction_loss`, `vq_loss`, the quantizer's
            statistics, `psnr` and each loss term's value under its name (with its `call_log_names`).
        """
        quantization = self.quantizer.quantize_with_stats(
            self.encoder(images, training=training), training=training
        )
        reconstructions = tf.cast(self.decoder(quantization.quantized, training=training), "float32")
        reconstruction_loss = self.reconstruction_loss(images, reconstructions)
        loss = reconstruction_loss + quantization.loss
        logs = {"reconstruction_loss": reconstruction_loss, "vq_loss": quantization.loss}
        logs.update(quantization.statistics)
        squared_error = tf.reduce_mean(tf.square(reconstructions - images), axis=[1, 2, 3])  # (B,)
        logs["psnr"] = tf.reduce_mean(-10.0 * tf.math.log(squared_error + 1e-10) / math.log(10.0))
        for term in self.loss_terms:
            extra = {}
            if term.needs_gradient_norm:
                extra = dict(reconstruction_loss=reconstruction_loss, gradient_norm=self._gradient_norm(tape))
            values = term(images, reconstructions, training=training, **extra)
            values = values if isinstance(values, dict) else {term.name: values}
            logs.update({name: tf.cast(value, "float32") for name, value in values.items()})
            loss += logs[term.name]
        logs["loss"] = loss
        return reconstructions, logs

    def _update_trackers(self, logs):
        trackers = [tracker for tracker in self.trackers if tracker.name in logs]  # `update` logs in training
        for tracker in trackers:
            tracker.update_state(logs[tracker.name])
        return logs_for_all_strategies({tracker.name: tracker.result() for tracker in trackers})

    # ------------------------------------------------------------------ graph-level codec

    def encode_tensor(self, images):
        """Graph-compatible `encode` without eager validation: float images → int32 codes.

        Args:
            images: float tensor `[B, H, W, C]` in [0, 1].

        Returns:
            int32 tensor `[B, h, w, *quantizer.code_shape]`: `[B, h, w]`, or `[B, h, w, d]` for `"rvq"`.
        """
        return self.quantizer.indices(self.encoder(tf.cast(images, "float32")))

    def decode_tensor(self, codes):
        """Graph-compatible `decode`: int32 codes → float32 images in [0, 1].

        Args:
            codes: int tensor `[B, h, w]` (`[B, h, w, k]`, `1 <= k <= d`, for a quantizer with `d`
                codes per position); values outside `[0, K)` fail a graph assertion.

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
    def code_depth(self):
        """The number of codes d of one grid position: 1, or `num_quantizers` for `"rvq"`."""
        return int(np.prod(self.quantizer.code_shape, dtype="int64"))

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
        return self.grid_shape + tuple(self.quantizer.code_shape)

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
                "downsample": self.downsample,
                "hidden_channels": self.hidden_channels,
                "residual_channels": self.residual_channels,
                "num_residual_blocks": self.num_residual_blocks,
                "quantizer": keras.saving.serialize_keras_object(self.quantizer),
                "reconstruction_loss": keras.saving.serialize_keras_object(self.reconstruction_loss),
                "loss_terms": [keras.saving.serialize_keras_object(term) for term in self.loss_terms],
            }
        )
        for part, custom in self.custom_parts.items():
            config[part] = keras.saving.serialize_keras_object(getattr(self, part)) if custom else None
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuilds a model from `get_config`'s dict, or from that of a model saved before quantizers
        were objects (a quantizer name with flat settings, which the shortcut builds alike)."""
        config = dict(config)
        for part in ("encoder", "decoder", "quantizer", "reconstruction_loss"):
            if isinstance(config.get(part), dict):
                config[part] = keras.saving.deserialize_keras_object(config[part])
        config["loss_terms"] = [
            keras.saving.deserialize_keras_object(term) for term in config.get("loss_terms", [])
        ]
        return cls(**config)
