"""The vector-quantisation bottleneck of a VQ-VAE.

Reference: van den Oord, Vinyals and Kavukcuoglu, "Neural Discrete Representation Learning" (2017).
Factorized and l2-normalised codes: Yu et al., "Vector-quantized Image Modeling with Improved VQGAN"
(ViT-VQGAN, 2022), as LlamaGen's tokenizer uses them.
"""

import keras
import tensorflow as tf

from tf_distribute_helpers import gather_global_rows, replicas_in_sync, sum_across_replicas
from vqgen.models.code_projection import CodeProjection, check_codebook_dim
from vqgen.models.quantization import Quantization, checked_codes, code_usage
from vqgen.settings import VECTOR_QUANTIZER_DEFAULTS


@keras.saving.register_keras_serializable(package="vqgen")
class VectorQuantizer(keras.layers.Layer):
    """Replaces every D-dimensional vector by its nearest entry of a learned codebook.

    Each input vector `z` is mapped to `k = argmin_j ||z - e_j||_2` over a codebook `E` of
    `num_embeddings` (K) vectors of size `embedding_dim` (D), and replaced by `e_k`. The gradient is
    copied straight through the non-differentiable lookup: `quantized = z + stop_gradient(e_k - z)`.

    The codebook learns in one of two ways:
    - by gradient (`ema=False`): the loss `||sg[z] - e||^2 + beta * ||z - sg[e]||^2` is added to the
      layer's losses (Keras 3 collects it through `add_loss` inside `call`);
    - by exponential moving averages (`ema=True`, appendix A.1 of the paper): every training call
      moves each code towards the mean of the vectors assigned to it, with Laplace-smoothed cluster
      sizes; only `beta * ||z - sg[e]||^2` is a loss.

    The nearest code minimises `||E||^2 - 2 z.E`, the expansion of `||z - E||^2` without `||z||^2`,
    which is the same for every code (one matmul, never an `[N, K, D]` tensor), computed in float32
    even under a mixed-precision policy. Under a `tf.distribute`
    strategy, code counts and EMA sums are summed across replicas so every replica keeps the same
    codebook. Codebook updates (EMA, restarts, data initialisation) only happen when `training=True`.
    The layer has the quantizer protocol of `vqgen.models.quantization` (one code per position).

    Factorized and l2-normalised codes (ViT-VQGAN): with `codebook_dim` C, the lookup happens in a
    learned linear projection `D -> C` of the input, and the chosen code is projected back `C -> D`
    for the decoder; with `l2_normalize`, the projected vector and the codes are scaled to unit
    length before the distance (so the nearest code is the one of highest cosine similarity) and
    the quantized vector is the normalised code. The codebook, its losses, EMA statistics, restarts
    and data initialisation all live in this code space. With neither, the layer is the plain
    quantizer above.

    Args:
        num_embeddings: int. The number of codes K. At least 2.
        embedding_dim: int. The size D of each code; the input's last axis must equal it.
        beta: float. Weight of the commitment term. Defaults to the `VectorQuantizerSettings` value.
        ema: bool. Learn the codebook by exponential moving averages instead of gradients.
            Defaults to the `VectorQuantizerSettings` value.
        decay: float in (0, 1). EMA decay. Defaults to the `VectorQuantizerSettings` value.
        epsilon: float > 0. Laplace smoothing of the EMA cluster sizes. Defaults to the
            `VectorQuantizerSettings` value.
        restart_after_steps: int or None. A code unused for this many consecutive training steps is
            re-seeded from a random input vector of the current batch (and its EMA statistics
            reset). `None` disables restarts. Defaults to the `VectorQuantizerSettings` value.
        init_from_data: bool. Initialise the codebook from random input vectors of the first
            training batch. Defaults to the `VectorQuantizerSettings` value.
        seed: int or None. Seed of the random choices of restarts and data initialisation.
        codebook_dim: int or None. Size C of the space the codes live in: the input is projected
            `D -> C` before the lookup and the code back `C -> D`. `None` looks codes up in the
            input space itself. Defaults to the `VectorQuantizerSettings` value.
        l2_normalize: bool. Find the nearest code by cosine similarity and output normalised codes.
            Defaults to the `VectorQuantizerSettings` value.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape:
        `(..., embedding_dim)`, e.g. `(batch, h, w, D)`.

    Output shape:
        Same as the input.

    Raises:
        ValueError: an argument out of range, or an input whose last axis is not `embedding_dim`.

    Example:
    >>> quantizer = VectorQuantizer(num_embeddings=512, embedding_dim=64, ema=True)
    >>> z = keras.random.normal((8, 7, 7, 64))
    >>> quantizer(z).shape
    TensorShape([8, 7, 7, 64])
    >>> quantizer.indices(z).shape
    TensorShape([8, 7, 7])
    """

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        beta=VECTOR_QUANTIZER_DEFAULTS.beta,
        ema=VECTOR_QUANTIZER_DEFAULTS.ema,
        decay=VECTOR_QUANTIZER_DEFAULTS.decay,
        epsilon=VECTOR_QUANTIZER_DEFAULTS.epsilon,
        restart_after_steps=VECTOR_QUANTIZER_DEFAULTS.restart_after_steps,
        init_from_data=VECTOR_QUANTIZER_DEFAULTS.init_from_data,
        seed=None,
        codebook_dim=VECTOR_QUANTIZER_DEFAULTS.codebook_dim,
        l2_normalize=VECTOR_QUANTIZER_DEFAULTS.l2_normalize,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_embeddings, int) or num_embeddings < 2:
            raise ValueError(
                f"num_embeddings must be an integer >= 2. Received: num_embeddings={num_embeddings}"
            )
        if not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(
                f"embedding_dim must be a positive integer. Received: embedding_dim={embedding_dim}"
            )
        if beta < 0:
            raise ValueError(f"beta must be >= 0. Received: beta={beta}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1). Received: decay={decay}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0. Received: epsilon={epsilon}")
        if restart_after_steps is not None and (
            not isinstance(restart_after_steps, int) or restart_after_steps < 1
        ):
            raise ValueError(
                "restart_after_steps must be a positive integer or None. "
                f"Received: restart_after_steps={restart_after_steps}"
            )
        check_codebook_dim(codebook_dim)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.codebook_dim = codebook_dim
        self.l2_normalize = bool(l2_normalize)
        self.beta = float(beta)
        self.ema = bool(ema)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.restart_after_steps = restart_after_steps
        self.init_from_data = bool(init_from_data)
        self.seed = seed

    def build(self, input_shape):
        if input_shape[-1] != self.embedding_dim:
            raise ValueError(
                f"The encoder output depth is {input_shape[-1]} but the quantizer's embedding_dim "
                f"is {self.embedding_dim}; make them equal. Received: input_shape={input_shape}"
            )
        K, D = self.num_embeddings, self.embedding_dim
        C = self.code_dim
        # Learned by gradient (like the encoder): the commitment loss and the decoder reach them.
        self.projection = None if self.codebook_dim is None else CodeProjection(self, D, C, self.seed)
        # Every replica computes the same updates from all-reduced statistics, so a variable is
        # written once ("only_first_replica") and stays identical across replicas.
        self.codebook = self.add_weight(
            name="codebook",
            shape=(K, C),
            initializer=keras.initializers.VarianceScaling(
                scale=1.0, mode="fan_out", distribution="uniform", seed=self.seed
            ),
            trainable=not self.ema,
            # Gradients reach it through the optimizer (cross-replica); restarts, EMA and data
            # initialisation assign it from all-reduced values inside a replica.
            aggregation="only_first_replica",
            dtype="float32",
            autocast=False,  # distances stay float32 under a mixed-precision policy
        )
        if self.ema:
            # Each code starts as the mean of one pseudo-observation: itself.
            self.ema_cluster_size = self.add_weight(
                name="ema_cluster_size",
                shape=(K,),
                initializer="ones",
                trainable=False,
                aggregation="only_first_replica",
                dtype="float32",
            )
            self.ema_embedding_sum = self.add_weight(
                name="ema_embedding_sum",
                shape=(K, C),
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                dtype="float32",
            )
            self.ema_embedding_sum.assign(self.codebook.value)
        self.steps_since_used = self.add_weight(
            name="steps_since_used",
            shape=(K,),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            dtype="int32",
        )
        self.training_steps = self.add_weight(
            name="training_steps",
            shape=(),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            dtype="int32",
        )

    @property
    def code_dim(self):
        """The size of the codes: `codebook_dim`, or `embedding_dim` when codes are not factorized."""
        return self.embedding_dim if self.codebook_dim is None else self.codebook_dim

    @property
    def code_shape(self):
        """The shape of one position's codes: `()`, a single code."""
        return ()

    @property
    def statistic_names(self):
        """The keys of `Quantization.statistics`: `("perplexity", "codes_used")`."""
        return ("perplexity", "codes_used")

    def call(self, inputs, training=None):
        result = self.quantize_with_stats(inputs, training=training)
        self.add_loss(result.loss)
        return result.quantized

    def compute_output_shape(self, input_shape):
        return input_shape

    # ------------------------------------------------------------------ public operations

    def quantize_with_stats(self, inputs, training=False):
        """Quantizes `inputs` and, when training, updates the codebook.

        Unlike `__call__`, it returns every by-product of the pass and adds no loss to the layer;
        models that want the indices and statistics as well as the output (like `VQVAE`) use it.

        Args:
            inputs: float tensor `[..., embedding_dim]`.
            training: bool. Whether to update EMA statistics, restart dead codes and initialise
                from data.

        Returns:
            A `Quantization` namedtuple: `quantized`, `indices` int32 `[...]`, `loss`, and
            `statistics` with the batch's `perplexity` and `codes_used`.
        """
        if not self.built:
            self.build(inputs.shape)
        z = tf.cast(inputs, "float32")
        flat_z = self._to_code_space(tf.reshape(z, [-1, self.embedding_dim]))  # (N, C)
        if training and self.init_from_data:
            self._initialise_from_first_batch(flat_z)
        flat_indices = self._nearest_codes(flat_z)  # (N,)
        counts = sum_across_replicas(  # a segment sum, unlike bincount, also compiles under XLA
            tf.math.unsorted_segment_sum(tf.ones_like(flat_z[:, 0]), flat_indices, self.num_embeddings)
        )  # (K,)
        flat_z_q = tf.gather(self._codes(), flat_indices)  # (N, C)

        commitment = tf.reduce_mean(tf.square(flat_z - tf.stop_gradient(flat_z_q)))
        loss = self.beta * commitment
        if not self.ema:
            loss += tf.reduce_mean(tf.square(tf.stop_gradient(flat_z) - flat_z_q))

        if training:
            if self.ema:
                self._update_ema(flat_z, flat_indices, counts)
            if self.restart_after_steps is not None:
                self._restart_dead_codes(flat_z, counts)
            self.training_steps.assign_add(1)

        indices = tf.reshape(flat_indices, tf.shape(z)[:-1])
        if self.codebook_dim is None and not self.l2_normalize:
            z_q = tf.reshape(flat_z_q, tf.shape(z))
            quantized = z + tf.stop_gradient(z_q - z)  # straight-through estimator
        else:
            # Straight through in the code space, then back to the decoder's space.
            flat_quantized = flat_z + tf.stop_gradient(flat_z_q - flat_z)  # (N, C)
            quantized = tf.reshape(self._from_code_space(flat_quantized), tf.shape(z))
        return Quantization(tf.cast(quantized, inputs.dtype), indices, loss, code_usage(counts))

    def indices(self, inputs):
        """Returns the index of the nearest code at every position.

        Args:
            inputs: float tensor `[..., embedding_dim]`, e.g. encoder outputs `[B, h, w, D]`.

        Returns:
            int32 tensor `[...]`, e.g. `[B, h, w]`.
        """
        if not self.built:
            self.build(inputs.shape)
        z = tf.cast(inputs, "float32")
        flat_indices = self._nearest_codes(self._to_code_space(tf.reshape(z, [-1, self.embedding_dim])))
        return tf.reshape(flat_indices, tf.shape(z)[:-1])

    def lookup(self, codes):
        """Returns the codebook vectors of integer codes: the inverse of `indices`.

        Args:
            codes: int tensor `[...]` with values in `[0, num_embeddings)`.

        Returns:
            float32 tensor `[..., embedding_dim]`.

        Raises:
            ValueError: (eagerly) or `tf.errors.InvalidArgumentError` (in a graph) when a code is
                outside `[0, num_embeddings)`.
        """
        codes = checked_codes(codes, self.num_embeddings)
        return self._from_code_space(tf.gather(self._codes(), codes))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim,
                "beta": self.beta,
                "ema": self.ema,
                "decay": self.decay,
                "epsilon": self.epsilon,
                "restart_after_steps": self.restart_after_steps,
                "init_from_data": self.init_from_data,
                "seed": self.seed,
                "codebook_dim": self.codebook_dim,
                "l2_normalize": self.l2_normalize,
            }
        )
        return config

    # ------------------------------------------------------------------ internals

    def _to_code_space(self, flat_z):
        """Rows `(N, D)` as the codebook sees them `(N, C)`: projected, then unit length if asked."""
        if self.projection is not None:
            flat_z = self.projection.to_code_space(flat_z)
        if self.l2_normalize:
            flat_z = tf.math.l2_normalize(flat_z, axis=-1)
        return flat_z

    def _from_code_space(self, codes):
        """Code-space vectors `(..., C)` back in the input space `(..., D)`."""
        if self.projection is None:
            return codes
        return self.projection.from_code_space(codes)

    def _codes(self):
        """The codebook `(K, C)` as the lookup uses it: unit-length rows when `l2_normalize`."""
        codebook = tf.convert_to_tensor(self.codebook)
        return tf.math.l2_normalize(codebook, axis=-1) if self.l2_normalize else codebook

    def _nearest_codes(self, flat_z):
        """Index of the nearest code of each row of `flat_z` (N, C), in float32.

        `argmin_k ||z - e_k||^2 = argmin_k ||e_k||^2 - 2 z.e_k`: `||z||^2` is left out and the
        factor -2 is applied to the (K, D) codebook, so the only (N, K) work is the matmul, one
        add and the argmin: two fewer passes over N x K values than the direct form.
        """
        codebook = self._codes()
        distances = tf.matmul(flat_z, -2.0 * codebook, transpose_b=True) + tf.reduce_sum(
            tf.square(codebook), axis=1
        )  # (N, K): ||z - e_k||^2 - ||z||^2
        return tf.argmin(distances, axis=1, output_type="int32")

    def _random_rows(self, flat_z, count, salt):
        """`count` rows of the global batch's `flat_z` drawn with replacement, the same on every replica.

        The rows are drawn over the whole global batch (every replica holding an equal share), so a
        distributed step picks the rows one device picks from the same global batch.
        """
        seed = tf.stack([tf.cast(self.seed or 0, "int32"), self.training_steps * 2 + salt])
        global_rows = tf.shape(flat_z)[0] * replicas_in_sync()
        rows = tf.random.stateless_uniform([count], seed=seed, minval=0, maxval=global_rows, dtype="int32")
        return gather_global_rows(flat_z, rows)

    def _initialise_from_first_batch(self, flat_z):
        # Branch-free (tf.where, not tf.cond): a cross-replica all-reduce may not sit inside
        # control flow under a multi-worker strategy.
        first_step = tf.equal(self.training_steps, 0)
        samples = self._random_rows(flat_z, self.num_embeddings, salt=0)  # (K, C)
        self.codebook.assign(tf.where(first_step, samples, self.codebook))
        if self.ema:
            self.ema_embedding_sum.assign(tf.where(first_step, samples, self.ema_embedding_sum))
            self.ema_cluster_size.assign(tf.where(first_step, 1.0, self.ema_cluster_size))

    def _update_ema(self, flat_z, flat_indices, counts):
        # Sum of the vectors assigned to each code: a segment sum, O(N D), where a one-hot (N, K)
        # matrix times z would write N x K floats and multiply N x K x D.
        sums = sum_across_replicas(
            tf.math.unsorted_segment_sum(flat_z, flat_indices, self.num_embeddings)
        )  # (K, C)
        cluster_size = self.decay * self.ema_cluster_size + (1.0 - self.decay) * counts
        embedding_sum = self.decay * self.ema_embedding_sum + (1.0 - self.decay) * sums
        total = tf.reduce_sum(cluster_size)
        smoothed = (cluster_size + self.epsilon) / (total + self.num_embeddings * self.epsilon) * total
        self.ema_cluster_size.assign(cluster_size)
        self.ema_embedding_sum.assign(embedding_sum)
        self.codebook.assign(embedding_sum / smoothed[:, tf.newaxis])

    def _restart_dead_codes(self, flat_z, counts):
        steps_since_used = tf.where(counts > 0, 0, self.steps_since_used + 1)
        dead = steps_since_used >= self.restart_after_steps  # (K,)
        samples = self._random_rows(flat_z, self.num_embeddings, salt=1)  # (K, C)
        self.codebook.assign(tf.where(dead[:, tf.newaxis], samples, self.codebook))
        if self.ema:
            self.ema_cluster_size.assign(tf.where(dead, 1.0, self.ema_cluster_size))
            self.ema_embedding_sum.assign(tf.where(dead[:, tf.newaxis], samples, self.ema_embedding_sum))
        self.steps_since_used.assign(tf.where(dead, 0, steps_since_used))
