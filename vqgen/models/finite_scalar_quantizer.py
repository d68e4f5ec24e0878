"""A codebook-free quantizer: every channel is rounded to a few fixed levels.

Reference: Mentzer, Minnen, Agustsson and Tschannen, "Finite Scalar Quantization: VQ-VAE Made Simple"
(2023).
"""

import numbers

import keras
import numpy as np
import tensorflow as tf

from tf_distribute_helpers import sum_across_replicas
from vqgen.models.quantization import Quantization, checked_codes, code_usage
from vqgen.settings import FINITE_SCALAR_QUANTIZER_DEFAULTS


@keras.saving.register_keras_serializable(package="vqgen")
class FiniteScalarQuantizer(keras.layers.Layer):
    """Rounds each of the d channels of a latent vector to one of a few fixed levels.

    Finite scalar quantization (FSQ, Mentzer et al. 2023) replaces the learned codebook of a VQ-VAE
    by a fixed grid: channel `i` of a `d = len(levels)` dimensional vector takes one of `levels[i]`
    values, so the implicit codebook has `prod(levels)` codes and nothing to learn, collapse or
    restart. Each input channel `x` is first standardised, `z = (x - mean) / sqrt(variance)`, by
    running statistics (with `standardize`): the batch's mean and variance on the first training
    call, then an EMA with `decay`. This keeps every channel in the range the fixed levels cover: FSQ
    has no codebook to initialise from the data, an encoder's small initial outputs would all round
    to one code and stay there, and a gain fixed once lets a channel drift into tanh's flat tail,
    where its gradient vanishes. Then, for a channel with `L` levels:

    1. bound: `half_l = (L - 1) / 2 * (1 - 1e-3)`, `offset = 0.5` if `L` is even else `0`,
       `shift = atanh(offset / half_l)`, `bounded = tanh(z + shift) * half_l - offset`, so that
       rounding yields exactly `L` integers and `z = 0` maps to `0`;
    2. round with a straight-through gradient: `rounded = bounded + stop_gradient(round(bounded) -
       bounded)`;
    3. normalise: `quantized = rounded / (L // 2)`, in `[-1, 1]`.

    The code of a vector is the mixed-radix number of its per-channel levels (`rounded + L // 2` in
    `[0, L)`) with basis `cumprod([1] + levels[:-1])`; `lookup` inverts it (to the normalised
    levels: the decoder's inputs, which the standardisation does not concern). There is no auxiliary
    loss: `quantize_with_stats` reports a zero loss. The layer has the quantizer protocol of
    `vqgen.models.quantization` (one code per position). Everything is computed in float32 even
    under a mixed-precision policy; under a `tf.distribute` strategy the batch statistics are summed
    across replicas, so every replica keeps the same running statistics.

    The paper recommends, for a target codebook size:

    | codes | levels            |
    |-------|-------------------|
    | 2^8   | `[8, 6, 5]`       |
    | 2^10  | `[8, 5, 5, 5]`    |
    | 2^12  | `[7, 5, 5, 5, 5]` |
    | 2^14  | `[8, 8, 8, 6, 5]` |
    | 2^16  | `[8, 8, 8, 5, 5, 5]` |

    Args:
        levels: list of int. The number of levels of each channel; each at least 3 (with 2 levels
            the tanh bound cannot map 0 to a level). Defaults to the
            `FiniteScalarQuantizerSettings` value, `[8, 5, 5, 5]` (1000 codes).
        standardize: bool. Standardise each channel by running statistics, updated when
            `training=True`; without it the channels are quantized as they come. Defaults to the
            `FiniteScalarQuantizerSettings` value.
        decay: float in [0, 1). EMA decay of the running mean and variance. Defaults to the
            `FiniteScalarQuantizerSettings` value.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape:
        `(..., len(levels))`, e.g. `(batch, h, w, d)`.

    Output shape:
        Same as the input.

    Raises:
        ValueError: `levels` empty, holding a non-integer or a value below 3, or with a product
            of 2**31 or more; `decay` outside [0, 1); or an input whose last axis is not
            `len(levels)`.

    Example:
    >>> quantizer = FiniteScalarQuantizer(levels=[8, 5, 5, 5])
    >>> z = keras.random.normal((8, 7, 7, 4))
    >>> quantizer(z).shape
    TensorShape([8, 7, 7, 4])
    >>> quantizer.indices(z).shape
    TensorShape([8, 7, 7])
    >>> quantizer.num_embeddings
    1000
    """

    def __init__(
        self,
        levels=FINITE_SCALAR_QUANTIZER_DEFAULTS.levels,
        standardize=FINITE_SCALAR_QUANTIZER_DEFAULTS.standardize,
        decay=FINITE_SCALAR_QUANTIZER_DEFAULTS.decay,
        **kwargs,
    ):
        super().__init__(**kwargs)
        levels = list(levels) if isinstance(levels, (list, tuple)) else levels
        if (
            not isinstance(levels, list)
            or not levels
            or any(
                isinstance(level, bool) or not isinstance(level, numbers.Integral) or level < 3
                for level in levels
            )
        ):
            raise ValueError(f"levels must be a non-empty list of integers >= 3. Received: levels={levels}")
        if np.prod(levels, dtype="float64") >= 2**31:
            raise ValueError(f"prod(levels) must fit in int32 (below 2**31). Received: levels={levels}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1). Received: decay={decay}")
        levels = [int(level) for level in levels]
        self.levels = levels
        self.standardize = bool(standardize)
        self.decay = float(decay)
        levels_np = np.array(levels, dtype="float64")
        self._half_width = np.array([level // 2 for level in levels], dtype="float32")  # (d,)
        self._half_l = ((levels_np - 1.0) / 2.0 * (1.0 - 1e-3)).astype("float32")  # (d,)
        self._offset = np.where(levels_np % 2 == 0, 0.5, 0.0).astype("float32")  # (d,)
        self._shift = np.arctanh(self._offset / self._half_l).astype("float32")  # (d,)
        self._basis = np.cumprod([1] + levels[:-1]).astype("int32")  # (d,)

    @property
    def num_embeddings(self):
        """The size of the implicit codebook, `prod(levels)`."""
        return int(np.prod(self.levels))

    @property
    def embedding_dim(self):
        """The number of channels d, `len(levels)`."""
        return len(self.levels)

    @property
    def code_shape(self):
        """The shape of one position's codes: `()`, a single code."""
        return ()

    @property
    def statistic_names(self):
        """The keys of `Quantization.statistics`: `("perplexity", "codes_used")`."""
        return ("perplexity", "codes_used")

    def build(self, input_shape):
        if input_shape[-1] != self.embedding_dim:
            raise ValueError(
                f"The encoder output depth is {input_shape[-1]} but the quantizer has "
                f"{self.embedding_dim} levels; make them equal. Received: input_shape={input_shape}"
            )
        # Running per-channel statistics that `_standardized` divides by; every replica computes the
        # same update from all-reduced sums, so each is written once ("only_first_replica").
        # float32 under a mixed-precision policy too (autocast=False), as the quantizer computes.
        stats = dict(
            shape=(self.embedding_dim,), trainable=False, aggregation="only_first_replica", autocast=False
        )
        self.mean = self.add_weight(name="mean", initializer="zeros", dtype="float32", **stats)
        self.variance = self.add_weight(name="variance", initializer="ones", dtype="float32", **stats)
        self.statistics_set = self.add_weight(
            name="statistics_set",
            shape=(),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            dtype="int32",
        )

    def call(self, inputs, training=None):
        quantized = self.quantize_with_stats(inputs, training=training).quantized
        return tf.cast(quantized, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    # ------------------------------------------------------------------ public operations

    def quantize_with_stats(self, inputs, training=False):
        """Quantizes `inputs` and reports the batch's code usage.

        Args:
            inputs: float tensor `[..., len(levels)]`.
            training: bool. Whether to update the running statistics first (with `standardize`).

        Returns:
            A `Quantization` namedtuple: `quantized` (same shape and dtype as `inputs`), `indices`
            int32 `[...]`, `loss` a float32 zero, and `statistics` with the batch's `perplexity`
            and `codes_used` over the `prod(levels)` codes.
        """
        if not self.built:
            self.build(inputs.shape)
        z = self._standardized(tf.cast(inputs, "float32"), training=training)  # (..., d)
        rounded = self._round(self._bound(z))  # (..., d)
        quantized = rounded / self._half_width
        indices = self._codes_to_indices(rounded)  # (...)
        counts = sum_across_replicas(  # a segment sum, unlike bincount, also compiles under XLA
            tf.math.unsorted_segment_sum(tf.ones_like(indices, dtype="float32"), indices, self.num_embeddings)
        )  # (K,)
        loss = tf.constant(0.0, dtype="float32")
        return Quantization(tf.cast(quantized, inputs.dtype), indices, loss, code_usage(counts))

    def indices(self, inputs):
        """Returns the code of every position.

        Args:
            inputs: float tensor `[..., len(levels)]`, e.g. encoder outputs `[B, h, w, d]`.

        Returns:
            int32 tensor `[...]` with values in `[0, prod(levels))`, e.g. `[B, h, w]`.
        """
        if not self.built:
            self.build(inputs.shape)
        z = self._standardized(tf.cast(inputs, "float32"), training=False)
        return self._codes_to_indices(self._round(self._bound(z)))

    def lookup(self, codes):
        """Returns the quantized vectors of integer codes: the inverse of `indices`.

        Args:
            codes: int tensor `[...]` with values in `[0, prod(levels))`.

        Returns:
            float32 tensor `[..., len(levels)]` with values in `[-1, 1]`.

        Raises:
            ValueError: `codes` not integers, or (eagerly) a code outside `[0, prod(levels))`;
                in a graph, `tf.errors.InvalidArgumentError` for the latter.
        """
        codes = checked_codes(codes, self.num_embeddings)
        digits = (codes[..., tf.newaxis] // self._basis) % np.array(self.levels, dtype="int32")  # (..., d)
        return (tf.cast(digits, "float32") - self._half_width) / self._half_width

    def get_config(self):
        config = super().get_config()
        config.update({"levels": list(self.levels), "standardize": self.standardize, "decay": self.decay})
        return config

    def load_own_variables(self, store):
        # A VQVAE saved before this layer held its statistics kept them as the model's own variables;
        # its `load_own_variables` hands them here, and the file has none under this layer's path.
        if len(store.keys()) == 0:
            return
        super().load_own_variables(store)

    # ------------------------------------------------------------------ internals

    def _standardized(self, z, training):
        """`z` (float32, (..., d)) standardised per channel, after a training call's statistics update."""
        if training and self.standardize:
            # The batch's mean and variance over all replicas, set on the first batch and then
            # followed by an EMA with `decay`; branch-free, as VectorQuantizer's data initialisation.
            flat = tf.stop_gradient(tf.reshape(z, [-1, self.embedding_dim]))  # (N, d)
            count = sum_across_replicas(tf.cast(tf.shape(flat)[0], "float32"))
            mean = sum_across_replicas(tf.reduce_sum(flat, axis=0)) / count  # (d,)
            variance = sum_across_replicas(tf.reduce_sum(tf.square(flat), axis=0)) / count - mean**2
            decay = tf.where(tf.equal(self.statistics_set, 0), 0.0, self.decay)
            self.mean.assign(decay * self.mean + (1.0 - decay) * mean)
            self.variance.assign(decay * self.variance + (1.0 - decay) * variance)
            self.statistics_set.assign(1)
        return (z - self.mean) * tf.math.rsqrt(tf.maximum(self.variance, 1e-12))

    def _bound(self, z):
        """Squashes each channel into the range that rounds to exactly its `L` levels."""
        return tf.tanh(z + self._shift) * self._half_l - self._offset

    @staticmethod
    def _round(bounded):
        """Rounds to the nearest integer, copying the gradient straight through."""
        return bounded + tf.stop_gradient(tf.round(bounded) - bounded)

    def _codes_to_indices(self, rounded):
        """Mixed-radix index of integer levels `rounded` in `[-L // 2, L // 2]`, (..., d) -> (...)."""
        digits = tf.cast(tf.round(rounded + self._half_width), "int32")  # (..., d), in [0, L)
        return tf.reduce_sum(digits * self._basis, axis=-1)
