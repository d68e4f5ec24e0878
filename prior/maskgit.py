"""`MaskGIT`: a masked-token (non-autoregressive) Transformer prior over integer code grids."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from prior import parallel_decode
from prior.arguments import is_int
from prior.code_prior import CodePrior
from prior.mask_schedule import check_schedule, mask_ratio
from prior.settings import MASKGIT_DEFAULTS, MASKGIT_STEPS
from prior.transformer import grid_position_embeddings
from prior.transformer_block import TransformerBlock
from tf_distribute_helpers import (
    logs_for_all_strategies,
    replica_rows_uniform,
    scale_loss_for_replicas,
    sum_across_replicas,
)

# Grids per compiled call of `masked_bits_per_code`.
LOSS_BATCH_SIZE = 256


@keras.saving.register_keras_serializable(package="prior")
class MaskGIT(CodePrior):
    """Masked-token Transformer prior over `(rows, cols)` grids of codes in `[0, K)`.

    MaskGIT (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer"):
    a bidirectional Transformer (BERT-like, the project's `TransformerBlock`
    with `causal=False`) reads a grid in which some codes are replaced by a
    `[MASK]` token (id `K = num_embeddings`) and predicts the code at every
    position. Inputs are the code (or mask) embedding plus the factorised row
    and column embeddings of `prior.transformer.grid_position_embeddings`
    (plus a class embedding added at every position when class-conditional).

    Training (`fit`): each grid draws a ratio `r ~ U(0, 1)`, masks
    `ceil(rows * cols * gamma(r))` positions chosen uniformly at random
    (`gamma` the cosine schedule of `prior.mask_schedule`), and the loss is
    the cross-entropy of the true codes at the masked positions only, logged
    as `masked_bits_per_code`. With `label_dropout > 0` labels are replaced by
    the "no label" class at random, for classifier-free guidance. Under a
    `tf.distribute` strategy each replica draws its own masks and dropped labels, its rows of
    one draw for the global batch (`tf_distribute_helpers.replica_rows_uniform`), and the loss is
    the mean over the masked codes of the whole global batch, so a step with equal shares equals
    one device's (dropout aside: each replica draws its own, `ReplicaDropout`).

    Sampling (`sample`) is MaskGIT's iterative decoding (`prior.parallel_decode`),
    in one compiled `tf.while_loop` of `steps` network passes: starting from an
    all-masked grid, each step draws a code at every masked position, keeps the
    most confident draws and re-masks the rest, as many as
    `prior.mask_schedule.masked_counts` says. All draws are stateless, keyed by
    the seed and the step, so a seed gives the same grids in-process and in an
    exported SavedModel. `inpaint` runs the same loop from a partly given grid.

    Unlike `PixelCNN` and `Transformer` it defines no likelihood: `log_prob`
    raises; `masked_bits_per_code` gives the held-out masked-token loss.

    Args:
        num_embeddings: int >= 2, the number `K` of distinct codes.
        grid_shape: tuple `(rows, cols)` of positive ints, the code grid shape.
        num_classes: optional int >= 1; when set the model is class-conditional.
        label_dropout: float in `[0, 1)`, the training probability of the "no
            label" class that classifier-free guidance needs (see `CodePrior`).
            Defaults to 0.
        num_layers: int >= 1, number of blocks. Defaults to the `MaskGITSettings` value.
        hidden_dim: int >= 1, width of the embeddings and blocks, a multiple of
            `num_heads`. Defaults to the `MaskGITSettings` value.
        num_heads: int >= 1, attention heads. Defaults to the `MaskGITSettings` value.
        intermediate_dim: int >= 1, hidden width of the MLPs. Defaults to the
            `MaskGITSettings` value.
        dropout: float in `[0, 1)`, dropout when training. Defaults to the
            `MaskGITSettings` value.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Input shape:
        int `(batch, rows, cols)` codes in `[0, K]` (`K`: masked), or a dict
        `{"codes": (batch, rows, cols), "labels": (batch,)}` when conditional.

    Output shape:
        float32 logits `(batch, rows, cols, num_embeddings)` over the real codes.

    Raises:
        ValueError: if any argument is out of range.

    Example:

    >>> model = MaskGIT(num_embeddings=256, grid_shape=(7, 7), num_classes=10, label_dropout=0.1)
    >>> model.compile(optimizer="adam")
    >>> model.fit({"codes": codes, "labels": labels}, epochs=5, batch_size=64)
    >>> grids = model.sample(16, labels=3, seed=0, steps=8, guidance=2.0)  # (16, 7, 7) int32
    """

    def __init__(
        self,
        num_embeddings,
        grid_shape,
        num_classes=None,
        label_dropout=0.0,
        num_layers=MASKGIT_DEFAULTS.num_layers,
        hidden_dim=MASKGIT_DEFAULTS.hidden_dim,
        num_heads=MASKGIT_DEFAULTS.num_heads,
        intermediate_dim=MASKGIT_DEFAULTS.intermediate_dim,
        dropout=MASKGIT_DEFAULTS.dropout,
        **kwargs,
    ):
        if not is_int(num_layers) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1. Received: num_layers={num_layers}")
        super().__init__(num_embeddings, grid_shape, num_classes, label_dropout=label_dropout, **kwargs)

        # Configuration (the blocks check hidden_dim, num_heads, intermediate_dim and dropout)
        self.num_layers = int(num_layers)
        rows, cols = self.grid_shape
        self.sequence_length = rows * cols
        self.transformer_blocks = [
            TransformerBlock(
                hidden_dim, num_heads, intermediate_dim, dropout=dropout, causal=False, name=f"block_{index}"
            )
            for index in range(self.num_layers)
        ]
        self.hidden_dim = self.transformer_blocks[0].hidden_dim
        self.num_heads = self.transformer_blocks[0].num_heads
        self.intermediate_dim = self.transformer_blocks[0].intermediate_dim
        self.dropout = self.transformer_blocks[0].dropout

        # Layers: embeddings (codes and [MASK], rows, columns, classes), output head. Embeddings
        # start N(0, 1) rather than Keras' uniform +-0.05: an all-masked grid differs between
        # positions only through them, and at +-0.05 the blocks' outputs drown them, which slows
        # learning to tell positions apart.
        def embedding(rows, name):
            initializer = keras.initializers.RandomNormal(stddev=1.0)
            return keras.layers.Embedding(
                rows, self.hidden_dim, embeddings_initializer=initializer, name=name
            )

        self.code_embedding = embedding(self.num_embeddings + 1, "code_embedding")
        self.row_embedding = embedding(rows, "row_embedding")
        self.column_embedding = embedding(cols, "column_embedding")
        self.class_embedding = embedding(self.label_rows, "class_embedding") if self.conditional else None
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.head = keras.layers.Dense(self.num_embeddings, name="head")

        # The training masks' draws, and the metric shown by fit/evaluate
        self.masking_seeds = keras.random.SeedGenerator(name="masking_seeds")
        self.masked_bits_per_code_tracker = keras.metrics.Mean(name="masked_bits_per_code")
        self.build()

    @property
    def mask_id(self):
        """The `[MASK]` token's id, `num_embeddings`."""
        return self.num_embeddings

    def build(self, input_shape=None):
        """Creates every weight for `grid_shape`; `__init__` calls it, so callers need not.

        Args:
            input_shape: ignored; the shapes follow from `grid_shape`.
        """
        if self.built:
            return
        sequence_shape = (None, self.sequence_length, self.hidden_dim)
        self.code_embedding.build((None, self.sequence_length))
        self.row_embedding.build((None,))
        self.column_embedding.build((None,))
        if self.class_embedding is not None:
            self.class_embedding.build((None,))
        for block in self.transformer_blocks:
            block.build(sequence_shape)
        self.final_norm.build(sequence_shape)
        self.head.build(sequence_shape)

    # ------------------------------------------------------------------ full pass

    def call(self, inputs, training=None):
        """Logits over the codes at every position, each seeing the whole (partly masked) grid.

        Args:
            inputs: int codes `(batch, rows, cols)` in `[0, K]` (`K` = `mask_id`), or for a
                conditional model `{"codes": codes, "labels": int (batch,)}`.
            training: bool or None; dropout (and label dropout) is applied only when training.

        Returns:
            float32 `(batch, rows, cols, num_embeddings)` logits.

        Raises:
            ValueError: labels given to an unconditional model, or missing for a conditional one.
        """
        codes, labels = self._split_inputs(inputs, training)
        B, T = ops.shape(codes)[0], self.sequence_length
        rows, cols = self.grid_shape
        hidden = self.code_embedding(ops.reshape(codes, (B, T)))  # (B, T, D)
        hidden = (
            hidden
            + grid_position_embeddings(self.row_embedding, self.column_embedding, ops.arange(T), cols)[None]
        )
        if labels is not None:
            hidden = hidden + self.class_embedding(labels)[:, None, :]
        for block in self.transformer_blocks:
            hidden = block(hidden, training=training)
        logits = self.head(self.final_norm(hidden))  # (B, T, K)
        return ops.cast(ops.reshape(logits, (B, rows, cols, self.num_embeddings)), "float32")

    # ------------------------------------------------------------------ training

    def mask_codes(self, codes, ratios, noise):
        """Masks each grid as in training, given the uniform draws.

        Grid `i` masks `ceil(rows * cols * cos(pi ratios[i] / 2))` positions (at least one): the
        ones with the smallest `noise[i]`, a uniformly random subset when `noise` is uniform.

        Args:
            codes: int tensor `(batch, rows, cols)` in `[0, K)`.
            ratios: float tensor `(batch,)` in `[0, 1)`, each grid's point of the schedule.
            noise: float tensor `(batch, rows * cols)`, the order in which positions are masked.

        Returns:
            `(masked_codes, mask)`: int32 `(batch, rows, cols)` with `mask_id` at the masked
            positions, and the bool mask `(batch, rows, cols)` (True = masked).

        Example:

        >>> ratios, noise = np.full(4, 0.5), rng.uniform(size=(4, 49))  # 4 grids of 7x7
        >>> masked, mask = model.mask_codes(codes[:4], ratios, noise)  # 35 masked per grid
        """
        codes = ops.cast(codes, "int32")
        T = self.sequence_length
        counts = ops.clip(ops.ceil(T * mask_ratio(ops.cast(ratios, "float32"))), 1, T)  # (B,)
        ranks = ops.argsort(ops.argsort(noise, axis=-1), axis=-1)  # a random permutation per grid
        mask = ops.reshape(ops.cast(ranks, "float32") < counts[:, None], ops.shape(codes))
        return ops.where(mask, self.mask_id, codes), mask

    def _masked_batch(self, data):
        """A training batch `codes` -> (masked inputs, (codes, mask), sample_weight).

        The draws come from `masking_seeds`, through `tf_distribute_helpers.replica_rows_uniform`:
        under a `tf.distribute` strategy each replica keeps its rows of one draw for the whole global
        batch, so the replicas mask their shares of the batch independently (not with copies of one
        draw) and, with equal shares, exactly as one device masks the global batch; on one device the
        draws are `keras.random.uniform`'s.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is not None:
            raise ValueError(
                f"{type(self).__name__} is trained to predict its input codes; "
                "call fit/evaluate with x only (no y)"
            )
        codes = x["codes"] if isinstance(x, dict) else x
        B = ops.shape(codes)[0]
        masked, mask = self.mask_codes(
            codes,
            replica_rows_uniform([B], self.masking_seeds),
            replica_rows_uniform([B, self.sequence_length], self.masking_seeds),
        )
        inputs = {**x, "codes": masked} if isinstance(x, dict) else masked
        return inputs, (ops.cast(codes, "int32"), mask), sample_weight

    def train_step(self, data):
        """Keras' train step on a batch whose codes are masked by `mask_codes`."""
        return super().train_step(self._masked_batch(data))

    def test_step(self, data):
        """Keras' test step on a batch whose codes are masked by `mask_codes`."""
        return super().test_step(self._masked_batch(data))

    def _masked_nats(self, y, y_pred, sample_weight):
        """`(nats, count)`: summed cross-entropy at this replica's masked positions, and their count."""
        codes, mask = y
        nats = keras.losses.sparse_categorical_crossentropy(codes, y_pred, from_logits=True)  # (B, r, c)
        weights = ops.cast(mask, nats.dtype)
        if sample_weight is not None:
            weights = weights * ops.reshape(ops.cast(sample_weight, nats.dtype), (-1, 1, 1))
        return ops.sum(nats * weights), ops.stop_gradient(ops.sum(weights))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean cross-entropy of the true codes at the masked positions, in nats per masked code.

        Args:
            x: the masked inputs (unused).
            y: `(codes, mask)` from `train_step`/`test_step`: the true codes and the bool mask.
            y_pred: the model's logits on the masked inputs.
            sample_weight: optional per-grid weights.
            training: whether this is a training step.

        Returns:
            Scalar loss (plus any regularization losses). Under a `tf.distribute` strategy, this
            replica's share: its masked nats over the masked count of the whole global batch (the
            replicas' counts differ, so a mean of their means would not be the global mean), plus the
            regularization losses divided by the number of replicas; the replicas' summed gradients
            are then those of one device on the global batch.
        """
        nats, count = self._masked_nats(y, y_pred, sample_weight)
        loss = nats / ops.maximum(sum_across_replicas(count), 1e-12)
        if self.losses:
            loss = loss + scale_loss_for_replicas(ops.sum(self.losses))
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates `masked_bits_per_code` (nats per masked code / ln 2) and returns all metrics.

        Each batch counts with its grid count, as Keras weights the loss, so a short last batch is
        not over-counted. Under a `tf.distribute` strategy each replica records the global batch's
        mean (summed over the replicas) with its own grid count, so the metric is the one device's.
        """
        nats, count = self._masked_nats(y, y_pred, sample_weight)
        mean_nats = sum_across_replicas(nats) / ops.maximum(sum_across_replicas(count), 1e-12)
        weight = ops.cast(ops.shape(y[0])[0], nats.dtype)
        self.masked_bits_per_code_tracker.update_state(mean_nats / np.log(2.0), sample_weight=weight)
        return logs_for_all_strategies(super().compute_metrics(x, y, y_pred, sample_weight))

    # ------------------------------------------------------------------ held-out loss

    def log_prob(self, codes, labels=None):
        """Not defined: MaskGIT's masked-token objective gives no likelihood of a grid.

        Raises:
            NotImplementedError: always; `masked_bits_per_code` gives its held-out loss.
        """
        raise NotImplementedError(
            "MaskGIT defines no log_prob (its masked-token objective is not a likelihood of the grid); "
            "use masked_bits_per_code(codes) for its held-out masked-token loss"
        )

    def masked_bits_per_code(self, codes, labels=None, seed=0):
        """The masked-token loss on given grids, in bits per masked code (the training objective).

        Each grid is masked as in training (`mask_codes`) with stateless draws keyed by `seed`
        (and the batch of 256 grids),
        so the figure is reproducible; the mean is over all masked positions of all grids.

        Args:
            codes: integer array `(batch, rows, cols)` with values in `[0, K)`.
            labels: integer array `(batch,)` when conditional, else None.
            seed: int, the key of the masks. Defaults to 0.

        Returns:
            float, bits per masked code.

        Raises:
            ValueError: as `check_codes`.

        Example:

        >>> model.masked_bits_per_code(validation_codes, validation_labels)
        """
        codes, labels = self.check_codes(codes, labels)
        if not is_int(seed):
            raise ValueError(f"seed must be an int; received seed={seed!r}")

        def masked_nats(codes, labels, key):
            B = tf.shape(codes)[0]
            ratios = tf.random.stateless_uniform([B], seed=key)
            noise = tf.random.stateless_uniform([B, self.sequence_length], seed=tf.reverse(key, [0]))
            masked, mask = self.mask_codes(codes, ratios, noise)
            logits = self(masked if labels is None else {"codes": masked, "labels": labels})
            nats = keras.losses.sparse_categorical_crossentropy(codes, logits, from_logits=True)
            weights = tf.cast(mask, nats.dtype)
            return tf.reduce_sum(nats * weights), tf.reduce_sum(weights)

        function = self._compiled(("masked_nats", self.conditional), masked_nats)
        total_nats = total_count = 0.0
        for batch, start in enumerate(range(0, codes.shape[0], LOSS_BATCH_SIZE)):
            key = tf.constant([seed % 2**31, batch], tf.int32)
            batch_labels = None if labels is None else labels[start : start + LOSS_BATCH_SIZE]
            nats, count = function(codes[start : start + LOSS_BATCH_SIZE], batch_labels, key)
            total_nats += float(nats)
            total_count += float(count)
        return total_nats / max(total_count, 1.0) / np.log(2.0)

    # ------------------------------------------------------------------ decoding

    def _compiled_decode(self, guided):
        # Not XLA-compiled: each step is one full pass of large matrix products, which XLA does
        # not speed up on a CPU, while compiling adds time (scripts/benchmark_parallel_decoding.py).
        def seeded_decode(flat_codes, counts, temperature, seed, labels, guidance, top_k):
            draws = parallel_decode.seeded_draws(temperature, seed, top_k)
            return parallel_decode.decode(self, flat_codes, counts, draws, labels, guidance)

        return self._compiled(("decode", self.conditional, guided), seeded_decode)

    def sample_codes(
        self, num_samples, temperature, seed, labels=None, guidance=None, steps=None, top_k=None
    ):
        """Graph-level sampler: tensors in, an int32 code-grid tensor out.

        Runs the whole decoding in one compiled `tf.function` (kept per configuration), from an
        all-masked grid through `steps` steps of `masked_counts(steps, rows * cols, "cosine")`
        (`masked_counts_tensor`, so `steps` may be a graph input). Meant to be wrapped in an
        exporter's own `tf.function` signature; the argument checks are `tf.debugging` assertions.

        Args:
            num_samples: int32 scalar tensor, >= 1.
            temperature: float32 scalar tensor, > 0.
            seed: int64 scalar tensor.
            labels: int32 `(num_samples,)` tensor when conditional, else None.
            guidance: float32 scalar tensor >= 0 for a prior that `supports_guidance`, or None
                (plain conditional sampling, no "no label" pass at all).
            steps: the decoding steps (see `sample`): a Python int in `[1, rows * cols]`, None (the
                default), or an int32 scalar tensor, asserted in `[1, rows * cols]`.
            top_k: optional int32 scalar tensor in `[1, num_embeddings]`.

        Returns:
            int32 tensor `(num_samples, rows, cols)`.

        Raises:
            ValueError: labels given to / missing from the model, guidance given to a prior
                without label dropout, or `steps` out of range.
            tf.errors.InvalidArgumentError: when an assertion fails.

        Example:

        >>> grids = model.sample_codes(tf.constant(4), tf.constant(1.0), tf.constant(0, tf.int64))
        """
        num_samples, temperature, labels, top_k, guidance, checks = self.graph_sampling_arguments(
            num_samples, temperature, labels, top_k, guidance
        )
        if tf.is_tensor(steps):
            steps = tf.cast(steps, tf.int32)
            message = f"steps must be an int in [1, {self.sequence_length}] (rows * cols)"
            checks = checks + [
                tf.debugging.assert_greater_equal(steps, 1, message=message),
                tf.debugging.assert_less_equal(steps, self.sequence_length, message=message),
            ]
        else:
            steps = self.check_steps(steps, "cosine")
        with tf.control_dependencies(checks):
            all_masked, counts = parallel_decode.graph_sampling_plan(
                num_samples, self.sequence_length, tf.identity(steps), self.mask_id
            )
        decoded = self._compiled_decode(guidance is not None)(
            all_masked, counts, temperature, tf.cast(seed, tf.int64), labels, guidance, top_k
        )
        return tf.reshape(decoded, [num_samples, *self.grid_shape])

    def check_steps(self, steps, schedule):
        """Validates `steps` (an int in `[1, rows * cols]`, or None) and `schedule` (a `SCHEDULES` name).

        Args:
            steps: int or None, the decoding steps asked for.
            schedule: str, a key of `prior.mask_schedule.SCHEDULES`.

        Returns:
            The steps as an int: `min(MASKGIT_STEPS, rows * cols)` for None.

        Raises:
            ValueError: naming the argument and its valid range.

        Example:

        >>> MaskGIT(16, (2, 2)).check_steps(None, "cosine")  # 4 positions: at most 4 steps
        4
        """
        check_schedule(schedule)
        if steps is None:
            return min(MASKGIT_STEPS, self.sequence_length)
        if not is_int(steps) or not 1 <= steps <= self.sequence_length:
            raise ValueError(
                f"steps must be an int in [1, {self.sequence_length}] (rows * cols); received steps={steps!r}"
            )
        return int(steps)

    def sample(
        self,
        num,
        temperature=1.0,
        labels=None,
        seed=None,
        guidance=1.0,
        top_k=None,
        steps=None,
        schedule="cosine",
    ):
        """Samples `num` code grids by MaskGIT's iterative decoding.

        Args:
            num: int >= 1, number of grids.
            temperature: float > 0; the draws come from `softmax(logits / temperature)`.
            labels: for a conditional prior, an int (same class for all) or an integer array
                `(num,)` in `[0, num_classes)` (`num_classes`: the "no label" class of a prior
                trained with label dropout).
            seed: optional int; the same seed gives the same grids. None draws a fresh seed.
            guidance: float >= 0, the classifier-free guidance scale (1: none, 0: as with the
                "no label" class); other than 1 only for a prior with `label_dropout > 0`.
            top_k: optional int in `[1, num_embeddings]`: draw only among the `top_k` most likely
                codes at each position.
            steps: int in `[1, rows * cols]`, network passes; `rows * cols` commits one code per
                step. None (the default): `MASKGIT_STEPS`, or `rows * cols` if that is fewer.
            schedule: `"cosine"` (the paper's), `"linear"` or `"square"`: how many codes stay
                masked after each step (`prior.mask_schedule`). Defaults to `"cosine"`.

        Returns:
            int32 NumPy array `(num, rows, cols)`.

        Raises:
            ValueError: for an invalid `num`, `temperature`, `seed`, `guidance`, `top_k`,
                `steps`, `schedule` or labels.

        Example:

        >>> grids = model.sample(16, labels=3, seed=0, steps=8)
        """
        labels, seed = self.check_sampling_arguments(num, temperature, labels, seed, guidance)
        steps = self.check_steps(steps, schedule)
        start, counts = parallel_decode.sampling_plan(
            num, self.sequence_length, steps, schedule, self.mask_id
        )
        return self._run_decode(
            start,
            counts,
            temperature,
            seed,
            labels,
            guidance,
            self.check_top_k(top_k),
        ).reshape(num, *self.grid_shape)

    def inpaint(
        self,
        codes,
        mask,
        labels=None,
        temperature=1.0,
        seed=None,
        guidance=1.0,
        top_k=None,
        steps=None,
        schedule="cosine",
    ):
        """Re-samples the masked positions of given grids, keeping the rest, by iterative decoding.

        The masked positions start as `[MASK]` and are decoded as in `sample`, every step seeing
        all kept codes (before and after, unlike an autoregressive prior), on the plan of
        `prior.parallel_decode.inpainting_plan` (fewer than `steps` passes change a grid with
        fewer than `steps` masked positions).

        Args:
            codes: integer array `(num, rows, cols)` in `[0, K)`; the values at masked positions
                are ignored.
            mask: bool array `(num, rows, cols)`, True = re-sample, False = keep.
            labels, temperature, seed, guidance, top_k, steps, schedule: as in `sample`.

        Returns:
            int32 NumPy array `(num, rows, cols)`: `codes` where `mask` is False; the input
            unchanged when `mask` has no True.

        Raises:
            ValueError: as `sample`, or codes or a mask of the wrong shape or type (see
                `check_inpaint_arguments`).

        Example:

        >>> mask = np.zeros((1, 7, 7), bool); mask[:, 3:] = True  # re-draw the lower rows
        >>> filled = model.inpaint(codes[:1], mask, labels=[3], seed=0)
        """
        codes, mask, labels, seed = self.check_inpaint_arguments(
            codes, mask, labels, temperature, seed, guidance
        )
        steps = self.check_steps(steps, schedule)
        self.check_top_k(top_k)
        if not mask.any():
            return codes
        start, counts = parallel_decode.inpainting_plan(codes, mask, steps, schedule, self.mask_id)
        decoded = self._run_decode(start, counts, temperature, seed, labels, guidance, top_k)
        return decoded.reshape(codes.shape)

    def _run_decode(self, flat_codes, counts, temperature, seed, labels, guidance, top_k=None):
        """Runs the compiled decoding on NumPy inputs; guidance 1 runs no "no label" pass."""
        guided = guidance != 1.0
        decoded = self._compiled_decode(guided)(
            tf.constant(flat_codes),
            tf.constant(counts),
            tf.constant(temperature, tf.float32),
            tf.constant(seed, tf.int64),
            None if labels is None else tf.constant(labels),
            tf.constant(guidance, tf.float32) if guided else None,
            None if top_k is None else tf.constant(top_k, tf.int32),
        )
        return decoded.numpy()

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        }
