"""A stack of vector quantizers, each quantizing what the previous ones left over.

References: Zeghidour, Luebs, Omran, Skoglund and Tagliasacchi, "SoundStream: An End-to-End Neural
Audio Codec" (2021); Lee, Kim, Kim, Cho and Han, "Autoregressive Image Generation using Residual
Quantization" (RQ-VAE, 2022).
"""

import collections
import inspect

import keras
import tensorflow as tf

from vqgen.models.code_projection import CodeProjection, check_codebook_dim
from vqgen.models.quantization import Quantization
from vqgen.models.vector_quantizer import VectorQuantizer

# The per-level options default to whatever VectorQuantizer declares: one home per default.
_LEVEL_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(VectorQuantizer.__init__).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}

# The statistics logged for each level `i`, as `NAME_level_i` (fields of `LevelStats`).
LEVEL_STATISTICS = ("perplexity", "codes_used")
LevelStats = collections.namedtuple("LevelStats", ["loss", "perplexity", "codes_used", "active_levels"])
LevelStats.__doc__ = """What each level of a `ResidualVectorQuantizer` did in one pass.

Fields:
    loss: float32 `[num_quantizers]`, each level's loss (zero for a level dropped this batch).
    perplexity: float32 `[num_quantizers]`, each level's code perplexity over the batch.
    codes_used: float32 `[num_quantizers]`, the fraction of each level's codes the batch used.
    active_levels: int32 scalar, how many leading levels contributed (`num_quantizers` unless
        quantizer dropout dropped some).
"""


@keras.saving.register_keras_serializable(package="vqgen")
class ResidualVectorQuantizer(keras.layers.Layer):
    """Quantizes a vector as a sum of codes from `num_quantizers` codebooks, coarse to fine.

    Residual vector quantization (SoundStream, Zeghidour et al. 2021; RQ-VAE, Lee et al. 2022)
    applies `num_quantizers` (d) `VectorQuantizer` levels in turn: level 0 quantizes the input `z`,
    and level `i` quantizes the residual `r_i = z - (q_0 + ... + q_{i-1})` left by the levels
    before it. The output is the straight-through sum `z + stop_gradient(q_0 + ... + q_{d-1} - z)`,
    and every position gets d codes, so `K` codes per level describe `K**d` vectors. Each level is
    a full `VectorQuantizer` (its loss, EMA updates, dead-code restarts, data initialisation and
    `tf.distribute` synchronisation); the residual a level sees carries no gradient from the
    levels before it (`r_{i+1} = r_i - stop_gradient(q_i)`), and the layer's loss is the sum of
    the levels' losses.

    Factorized codes (ViT-VQGAN; as lucidrains' `ResidualVQ`): with `codebook_dim` C, the input is
    projected once by a learned affine map `D -> C`, every level quantizes residuals of that
    projection with codes of size C, and the straight-through sum is mapped back `C -> D`; the
    levels' commitment losses train the way in, the decoder's gradient the way back. (No
    `l2_normalize`: unit-length codes at every level could not follow a residual that shrinks.)

    Quantizer dropout (SoundStream): while training, with probability `quantizer_dropout` per
    batch only the first `k ~ Uniform{1, ..., d}` levels are used; the others contribute zero, add
    no loss and are not updated, so the model learns to decode from any prefix of the codes.

    The layer has the quantizer protocol of `vqgen.models.quantization`, with `d` codes per position
    (`code_shape == (d,)`); its statistics are the mean `perplexity` and `codes_used` over the levels
    used, and each level's as `perplexity_level_i` and `codes_used_level_i` (a level dropped by
    quantizer dropout reports the codes it would have picked).

    Args:
        num_quantizers: int. The number of levels d. At least 1.
        num_embeddings: int. The number of codes K of each level's codebook. At least 2.
        embedding_dim: int. The size D of each code; the input's last axis must equal it.
        quantizer_dropout: float in [0, 1]. The probability, per training batch, of using only a
            random prefix of the levels. Defaults to `0.0`.
        beta: float. Weight of each level's commitment term. Defaults to `VectorQuantizer`'s.
        ema: bool. Learn the codebooks by exponential moving averages instead of gradients.
            Defaults to `VectorQuantizer`'s.
        decay: float in (0, 1). EMA decay. Defaults to `VectorQuantizer`'s.
        epsilon: float > 0. Laplace smoothing of the EMA cluster sizes. Defaults to
            `VectorQuantizer`'s.
        restart_after_steps: int or None. Restart a level's code unused for this many consecutive
            training steps (of that level); `None` disables restarts. Defaults to
            `VectorQuantizer`'s.
        init_from_data: bool. Initialise each level's codebook from random residual vectors of the
            first training batch that reaches it. Defaults to `VectorQuantizer`'s.
        seed: int or None. Seed of the random choices; level `i` uses `seed + i`, and quantizer
            dropout draws from a `keras.random.SeedGenerator(seed)`. Defaults to `None`.
        codebook_dim: int or None. Size C of the space all levels' codes live in (the input is
            projected `D -> C` once, the sum of the codes back). `None`: the input space.
            Defaults to `VectorQuantizer`'s.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape:
        `(..., embedding_dim)`, e.g. `(batch, h, w, D)`.

    Output shape:
        Same as the input. `indices` gives `(..., num_quantizers)`, e.g. `(batch, h, w, d)`.

    Raises:
        ValueError: an argument out of range (the per-level arguments are checked by
            `VectorQuantizer`), or an input whose last axis is not `embedding_dim`.

    Example:
    >>> quantizer = ResidualVectorQuantizer(num_quantizers=4, num_embeddings=256, embedding_dim=64)
    >>> z = keras.random.normal((8, 7, 7, 64))
    >>> quantizer(z).shape
    TensorShape([8, 7, 7, 64])
    >>> quantizer.indices(z).shape
    TensorShape([8, 7, 7, 4])
    """

    def __init__(
        self,
        num_quantizers,
        num_embeddings,
        embedding_dim,
        quantizer_dropout=0.0,
        beta=_LEVEL_DEFAULTS["beta"],
        ema=_LEVEL_DEFAULTS["ema"],
        decay=_LEVEL_DEFAULTS["decay"],
        epsilon=_LEVEL_DEFAULTS["epsilon"],
        restart_after_steps=_LEVEL_DEFAULTS["restart_after_steps"],
        init_from_data=_LEVEL_DEFAULTS["init_from_data"],
        seed=None,
        codebook_dim=_LEVEL_DEFAULTS["codebook_dim"],
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_codebook_dim(codebook_dim)
        if isinstance(num_quantizers, bool) or not isinstance(num_quantizers, int) or num_quantizers < 1:
            raise ValueError(
                f"num_quantizers must be a positive integer. Received: num_quantizers={num_quantizers}"
            )
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(
                f"quantizer_dropout must be in [0, 1]. Received: quantizer_dropout={quantizer_dropout}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an integer or None. Received: seed={seed}")
        self.num_quantizers = num_quantizers
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.quantizer_dropout = float(quantizer_dropout)
        self.beta = beta
        self.ema = ema
        self.decay = decay
        self.epsilon = epsilon
        self.restart_after_steps = restart_after_steps
        self.init_from_data = init_from_data
        self.seed = seed
        self.codebook_dim = codebook_dim
        # Each level is a complete VectorQuantizer of codes of size C (its input is the projection's
        # residual); its constructor checks the per-level arguments.
        self.quantizers = [
            VectorQuantizer(
                num_embeddings=num_embeddings,
                embedding_dim=self.code_dim,
                beta=beta,
                ema=ema,
                decay=decay,
                epsilon=epsilon,
                restart_after_steps=restart_after_steps,
                init_from_data=init_from_data,
                seed=None if seed is None else seed + level,
                dtype=self.dtype_policy,
                name=f"level_{level}",
            )
            for level in range(num_quantizers)
        ]
        if self.quantizer_dropout > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if input_shape[-1] != self.embedding_dim:
            raise ValueError(
                f"The encoder output depth is {input_shape[-1]} but the quantizer's embedding_dim "
                f"is {self.embedding_dim}; make them equal. Received: input_shape={input_shape}"
            )
        self.projection = None
        if self.codebook_dim is not None:
            self.projection = CodeProjection(self, self.embedding_dim, self.codebook_dim, self.seed)
        for quantizer in self.quantizers:
            quantizer.build(tuple(input_shape[:-1]) + (self.code_dim,))

    @property
    def code_dim(self):
        """The size of the codes: `codebook_dim`, or `embedding_dim` when codes are not factorized."""
        return self.embedding_dim if self.codebook_dim is None else self.codebook_dim

    @property
    def code_shape(self):
        """The shape of one position's codes: `(num_quantizers,)`, level 0 first."""
        return (self.num_quantizers,)

    @property
    def statistic_names(self):
        """The keys of `Quantization.statistics`: the mean over the levels used, then each level's."""
        return ("perplexity", "codes_used") + tuple(
            f"{name}_level_{level}" for level in range(self.num_quantizers) for name in LEVEL_STATISTICS
        )

    def call(self, inputs, training=None):
        result = self.quantize_with_stats(inputs, training=training)
        self.add_loss(result.loss)
        return tf.cast(result.quantized, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    # ------------------------------------------------------------------ public operations

    def quantize_with_stats(self, inputs, training=False):
        """Quantizes `inputs` level by level and, when training, updates the codebooks.

        Args:
            inputs: float tensor `[..., embedding_dim]`.
            training: bool. Whether to update the levels (EMA, restarts, data initialisation) and
                apply quantizer dropout.

        Returns:
            A `Quantization` namedtuple: `quantized` (same shape and dtype as `inputs`), `indices`
            int32 `[..., num_quantizers]`, `loss` the sum of the levels' losses, and `statistics`
            (keys `statistic_names`). `quantize_with_level_stats` also returns each level's loss
            and how many levels were used.
        """
        return self.quantize_with_level_stats(inputs, training=training)[0]

    def quantize_with_level_stats(self, inputs, training=False):
        """Like `quantize_with_stats`, and also returns what each level did.

        Args:
            inputs: float tensor `[..., embedding_dim]`.
            training: bool. Whether to update the levels and apply quantizer dropout.

        Returns:
            A pair `(Quantization, LevelStats)`. The `Quantization` is the one of `quantize_with_stats`;
            `LevelStats` holds per-level `loss`, `perplexity` and
            `codes_used` (each `[num_quantizers]`) and `active_levels`. A level dropped this batch
            still reports the indices and usage it would have had, but adds no loss and output.
        """
        if not self.built:
            self.build(inputs.shape)
        z = self._to_code_space(tf.cast(inputs, "float32"))  # (..., C)
        dropout = bool(training) and self.quantizer_dropout > 0
        active_levels = self._draw_active_levels() if dropout else tf.constant(self.num_quantizers)

        residual = z
        z_q = tf.zeros_like(z)  # (..., C), the sum of the active levels' codes
        indices, losses, perplexities, codes_used = [], [], [], []
        for level, quantizer in enumerate(self.quantizers):
            active = level < active_levels  # bool scalar
            if dropout:
                before = [tf.identity(variable.value) for variable in quantizer.weights]
            result = quantizer.quantize_with_stats(residual, training=training)
            if dropout:
                # Branch-free (like VectorQuantizer's data initialisation): a dropped level's
                # update is undone rather than skipped, so no all-reduce sits inside a tf.cond.
                for variable, value in zip(quantizer.weights, before):
                    variable.assign(tf.where(active, variable.value, value))
            level_q = tf.stop_gradient(result.quantized)  # (..., C)
            z_q += tf.cast(active, "float32") * level_q
            residual = residual - level_q
            indices.append(result.indices)
            losses.append(tf.where(active, result.loss, 0.0))
            perplexities.append(result.statistics["perplexity"])
            codes_used.append(result.statistics["codes_used"])

        quantized = self._from_code_space(z + tf.stop_gradient(z_q - z))  # straight through, (..., D)
        mask = tf.cast(tf.range(self.num_quantizers) < active_levels, "float32")  # (d,)
        level_stats = LevelStats(
            tf.stack(losses), tf.stack(perplexities), tf.stack(codes_used), active_levels
        )
        statistics = {
            name: tf.reduce_sum(mask * getattr(level_stats, name)) / tf.reduce_sum(mask)
            for name in LEVEL_STATISTICS
        }
        for level in range(self.num_quantizers):
            statistics.update(
                {f"{name}_level_{level}": getattr(level_stats, name)[level] for name in LEVEL_STATISTICS}
            )
        quantization = Quantization(
            tf.cast(quantized, inputs.dtype),
            tf.stack(indices, axis=-1),  # (..., d)
            tf.reduce_sum(level_stats.loss),
            statistics,
        )
        return quantization, level_stats

    def indices(self, inputs):
        """Returns every level's code at every position.

        Args:
            inputs: float tensor `[..., embedding_dim]`, e.g. encoder outputs `[B, h, w, D]`.

        Returns:
            int32 tensor `[..., num_quantizers]`, e.g. `[B, h, w, d]`, level 0 first.
        """
        if not self.built:
            self.build(inputs.shape)
        residual = self._to_code_space(tf.cast(inputs, "float32"))  # (..., C)
        indices = []
        for quantizer in self.quantizers:
            level_indices = quantizer.indices(residual)  # (...)
            residual = residual - tf.gather(quantizer.codebook, level_indices)
            indices.append(level_indices)
        return tf.stack(indices, axis=-1)

    def lookup(self, codes):
        """Returns the sum of the levels' code vectors: the inverse of `indices`.

        Args:
            codes: int tensor `[..., k]` with `1 <= k <= num_quantizers` and values in
                `[0, num_embeddings)`; with `k < num_quantizers` only the first `k` levels are
                decoded (a coarser reconstruction).

        Returns:
            float32 tensor `[..., embedding_dim]`.

        Raises:
            ValueError: the last axis of `codes` unknown, zero or above `num_quantizers`, or (as
                in `VectorQuantizer.lookup`) codes not integers or out of range.
        """
        codes = tf.convert_to_tensor(codes)
        depth = codes.shape[-1] if codes.shape.rank else None
        if depth is None or not 1 <= depth <= self.num_quantizers:
            raise ValueError(
                f"codes must have a last axis of 1 to {self.num_quantizers} levels. "
                f"Received: codes.shape={codes.shape}"
            )
        if not self.built:
            self.build((None, self.embedding_dim))
        vectors = [self.quantizers[level].lookup(codes[..., level]) for level in range(depth)]
        return self._from_code_space(tf.add_n(vectors))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_quantizers": self.num_quantizers,
                "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim,
                "quantizer_dropout": self.quantizer_dropout,
                "beta": self.beta,
                "ema": self.ema,
                "decay": self.decay,
                "epsilon": self.epsilon,
                "restart_after_steps": self.restart_after_steps,
                "init_from_data": self.init_from_data,
                "seed": self.seed,
                "codebook_dim": self.codebook_dim,
            }
        )
        return config

    # ------------------------------------------------------------------ internals

    def _to_code_space(self, vectors):
        """Input vectors `(..., D)` as the levels see them `(..., C)`."""
        return vectors if self.projection is None else self.projection.to_code_space(vectors)

    def _from_code_space(self, codes):
        """A sum of codes `(..., C)` back in the input space `(..., D)`."""
        return codes if self.projection is None else self.projection.from_code_space(codes)

    def _draw_active_levels(self):
        """How many leading levels this training batch uses.

        Every replica draws the same value from the same (mirrored) seed-generator state, so no
        broadcast is needed; an extra, unordered collective here desynchronised MirroredStrategy's
        collectives in testing.
        """
        d = self.num_quantizers
        draws = keras.random.uniform((2,), seed=self.seed_generator)  # (2,)
        prefix = tf.minimum(1.0 + tf.floor(draws[1] * d), float(d))  # k ~ Uniform{1, ..., d}
        active = tf.where(draws[0] < self.quantizer_dropout, prefix, float(d))
        return tf.cast(active, "int32")
