"""`AutoregressivePrior`: what every raster-order prior shares (loss, log_prob, sampling)."""

import functools
import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from prior import sampling
from prior.code_prior import CodePrior
from tf_distribute_helpers import logs_for_all_strategies, scale_loss_for_replicas

LOG_PROB_BATCH_SIZE = 256


@keras.saving.register_keras_serializable(package="prior")
class AutoregressivePrior(CodePrior):
    """Base of the priors over `(rows, cols)` grids of codes in `[0, K)`.

    A subclass models `p(codes) = prod_t p(code_t | code_<t)` in raster order
    (optionally given a class label): it builds its layers in `__init__`,
    returns logits `(batch, rows, cols, K)` from `call`, and gives its
    incremental step, `initial_cache(batch)` and `call_with_cache(previous_codes,
    cache, index, labels)`, the logits of one position from the code drawn
    before it (and `complete_row` if it has once-per-row work). On top of
    `CodePrior` (checks, `_compiled`), this class gives every autoregressive
    prior the same surface: the loss and the `bits_per_code` metric for
    `compile`/`fit`, `log_prob`, and `sample` / `inpaint` / `sample_codes`
    over `prior.sampling.sample_raster` with the model's own step
    (`method="cached"`) or `sampling.FullPassStep` (`method="full"`), both
    drawing with `sampling.draw_codes`, so a seed gives the same grids with
    either step, in-process or exported.

    Args:
        num_embeddings: int >= 2, the number `K` of distinct codes.
        grid_shape: tuple `(rows, cols)` of positive ints, the code grid shape.
        num_classes: optional int >= 1; when set the model is class-conditional.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: if any argument is out of range.

    Example:

    >>> class MyPrior(AutoregressivePrior):  # doctest: +SKIP
    ...     def call(self, inputs, training=None): ...
    ...     def initial_cache(self, batch_size): ...
    ...     def call_with_cache(self, previous_codes, cache, index, labels=None): ...
    """

    def __init__(self, num_embeddings, grid_shape, num_classes=None, **kwargs):
        super().__init__(num_embeddings, grid_shape, num_classes=num_classes, **kwargs)
        # Metric shown by fit/evaluate
        self.bits_per_code_tracker = keras.metrics.Mean(name="bits_per_code")

    # ------------------------------------------------------------------ training

    def _mean_nats_per_code(self, x, y, y_pred, sample_weight):
        if y is not None:
            raise ValueError(
                f"{type(self).__name__} is trained to predict its input codes; "
                "call fit/evaluate with x only (no y)"
            )
        codes = x["codes"] if isinstance(x, dict) else x
        nats = keras.losses.sparse_categorical_crossentropy(codes, y_pred, from_logits=True)
        nats_per_grid = ops.mean(ops.reshape(nats, (ops.shape(nats)[0], -1)), axis=1)
        if sample_weight is None:
            return ops.mean(nats_per_grid)
        weights = ops.cast(ops.reshape(sample_weight, (-1,)), nats_per_grid.dtype)
        return ops.sum(nats_per_grid * weights) / ops.maximum(ops.sum(weights), 1e-12)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean negative log-likelihood of the input codes, in nats per code.

        Args:
            x: the codes, or a `{"codes", "labels"}` dict.
            y: must be None (the targets are the input codes).
            y_pred: the model's logits on `x`.
            sample_weight: optional per-grid weights.
            training: whether this is a training step.

        Returns:
            Scalar loss (plus any regularization losses), divided by the
            number of replicas under a `tf.distribute` strategy, as Keras'
            own losses are, so replica gradients sum to the global mean's.

        Raises:
            ValueError: if `y` is given.
        """
        loss = self._mean_nats_per_code(x, y, y_pred, sample_weight)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return scale_loss_for_replicas(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates `bits_per_code` (nats per code / ln 2) and returns all metrics.

        Each batch's mean counts with the batch's weight (its grid count, or the sum of
        `sample_weight`), as Keras weights the loss, so a short last batch is not over-counted.
        """
        nats = self._mean_nats_per_code(x, y, y_pred, sample_weight)
        codes = x["codes"] if isinstance(x, dict) else x
        weight = ops.shape(codes)[0] if sample_weight is None else ops.sum(sample_weight)
        self.bits_per_code_tracker.update_state(
            nats / math.log(2.0), sample_weight=ops.cast(weight, nats.dtype)
        )
        return logs_for_all_strategies(super().compute_metrics(x, y, y_pred, sample_weight))

    # ------------------------------------------------------------------ likelihood

    def log_prob(self, codes, labels=None):
        """Log-likelihood of each code grid, in nats.

        `log p(x) = sum over positions of log softmax(logits)[code]`, exact for
        an autoregressive model.

        Args:
            codes: integer array `(batch, rows, cols)` with values in `[0, K)`.
            labels: integer array `(batch,)` when conditional, else None.

        Returns:
            float32 NumPy array `(batch,)`.

        Raises:
            ValueError: as `check_codes`.

        Example:

        >>> nats = model.log_prob(codes)
        """
        codes, labels = self.check_codes(codes, labels)

        def grid_log_prob(codes, labels):
            logits = self(codes if labels is None else {"codes": codes, "labels": labels})
            log_probs = tf.nn.log_softmax(logits, axis=-1)
            picked = tf.gather(log_probs, codes, batch_dims=3)
            return tf.reduce_sum(picked, axis=[1, 2])

        function = self._compiled(("log_prob", self.conditional), grid_log_prob)
        results = [
            function(
                codes[start : start + LOG_PROB_BATCH_SIZE],
                None if labels is None else labels[start : start + LOG_PROB_BATCH_SIZE],
            ).numpy()
            for start in range(0, codes.shape[0], LOG_PROB_BATCH_SIZE)
        ]
        return np.concatenate(results).astype(np.float32) if results else np.zeros((0,), np.float32)

    # ------------------------------------------------------------------ sampling

    def resolve_sampling_method(self, method):
        """Maps `"auto"` to the faster sampler; see `prior.sampling.resolve_sampling_method`.

        Args:
            method: `"auto"`, `"cached"` or `"full"`.

        Returns:
            `"cached"` or `"full"`.

        Raises:
            ValueError: for any other method.
        """
        return sampling.resolve_sampling_method(method)

    def sample_codes(
        self,
        num_samples,
        temperature,
        seed,
        labels=None,
        top_k=None,
        method="auto",
        guidance=None,
        codes=None,
        mask=None,
    ):
        """Graph-level sampler: tensors in, an int32 code-grid tensor out.

        Runs the whole autoregressive loop in one compiled `tf.function`
        (built once per static configuration and kept), drawing position `t`
        with the stateless key `[seed, t]`, so a seed gives the same grids
        in-process and inside an exported SavedModel. Meant to be wrapped in
        an exporter's own `tf.function` signature; the argument checks are
        `tf.debugging` assertions.

        Args:
            num_samples: int32 scalar tensor, >= 1.
            temperature: float32 scalar tensor, > 0.
            seed: int64 scalar tensor.
            labels: int32 `(num_samples,)` tensor when conditional, else None.
            top_k: optional int32 scalar tensor in `[1, num_embeddings]`.
            method: `"auto"`, `"cached"` (the model's incremental step,
                `call_with_cache`) or `"full"` (one full pass per position,
                `sampling.FullPassStep`); a Python string.
            guidance: optional float32 scalar tensor >= 0, the classifier-free
                guidance scale (needs `supports_guidance`); None (not 1.0: the
                choice is static) samples without the "no label" pass.
            codes: optional int32 `(num_samples, rows, cols)` tensor of grids to
                inpaint, with `mask`.
            mask: bool tensor like `codes`: True draws a position, False keeps
                the given code (raster-order inpainting, see `inpaint`).

        Returns:
            int32 tensor `(num_samples, rows, cols)`.

        Raises:
            ValueError: for an unknown `method`, labels given to / missing
                from the model, guidance for a prior trained without label
                dropout, or only one of `codes` and `mask`.
            tf.errors.InvalidArgumentError: when an assertion fails.

        Example:

        >>> grids = model.sample_codes(tf.constant(4), tf.constant(1.0), tf.constant(0, tf.int64))
        """
        method = self.resolve_sampling_method(method)
        if (codes is None) != (mask is None):
            raise ValueError("inpainting needs both codes and mask; received only one of them")
        num_samples, temperature, labels, top_k, guidance, checks = self.graph_sampling_arguments(
            num_samples, temperature, labels, top_k, guidance
        )
        seed = tf.cast(seed, tf.int64)
        if codes is not None:
            codes, mask = tf.cast(codes, tf.int32), tf.cast(mask, tf.bool)
            grid = tf.stack([num_samples, *self.grid_shape])
            message = "codes and mask must have shape (num_samples, rows, cols)"
            checks.append(tf.debugging.assert_equal(tf.shape(codes), grid, message=message))
            checks.append(tf.debugging.assert_equal(tf.shape(mask), grid, message=message))
        function = self._compiled(
            ("sample", method, labels is None, top_k is None, guidance is None, codes is None),
            functools.partial(
                self._sample_raster, self if method == "cached" else sampling.FullPassStep(self)
            ),
            jit_compile=sampling.JIT_COMPILE[method],
        )
        with tf.control_dependencies(checks):
            return function(num_samples, temperature, seed, labels, top_k, guidance, codes, mask)

    def _sample_raster(self, step, num_samples, temperature, seed, labels, top_k, guidance, codes, mask):
        """`sampling.sample_raster` with `step` and the seeded draw: the function `sample_codes` compiles."""
        draw = sampling.seeded_draw(temperature, seed, top_k)
        return sampling.sample_raster(
            step, draw, num_samples, self.grid_shape, labels, guidance, self.no_label, codes, mask
        )

    def sample(self, num, temperature=1.0, top_k=None, labels=None, seed=None, method="auto", guidance=1.0):
        """Samples `num` code grids autoregressively.

        Args:
            num: int >= 1, number of grids.
            temperature: float > 0; logits are divided by it (-> 0: argmax).
            top_k: optional int in `[1, num_embeddings]`: sample only among
                the `top_k` most likely codes at each position.
            labels: for a conditional prior, an int (same class for all) or
                an integer array `(num,)` in `[0, num_classes)`; with label
                dropout `num_classes` is the "no label" class.
            seed: optional int; the same seed gives the same grids. None draws
                a fresh random seed.
            method: `"auto"` (the faster sampler for this grid), `"cached"` or
                `"full"`; all give the same grids for the same seed.
            guidance: float >= 0, the classifier-free guidance scale: each
                position is drawn from `u + guidance * (c - u)`, `c` the logits
                given the labels and `u` given the "no label" class. 1 (the
                default) is plain sampling and runs no "no label" pass; other
                values need a prior trained with `label_dropout > 0`.

        Returns:
            int32 NumPy array `(num, rows, cols)`.

        Raises:
            ValueError: if `num` < 1, `temperature` <= 0, `top_k` outside
                `[1, num_embeddings]`, `seed` is not an int, `method` is
                unknown, the labels are invalid (see `check_codes`) or the
                guidance is refused (see `check_sampling_arguments`).

        Example:

        >>> grids = model.sample(16, temperature=0.8, top_k=32, seed=0)
        >>> guided = model.sample(16, labels=3, seed=0, guidance=2.0)  # needs label_dropout > 0
        """
        labels, seed = self.check_sampling_arguments(num, temperature, labels, seed, guidance)
        return self._run_sampler(num, temperature, top_k, labels, seed, method, guidance)

    def inpaint(
        self, codes, mask, labels=None, temperature=1.0, seed=None, guidance=1.0, top_k=None, method="auto"
    ):
        """Re-samples the masked positions of code grids, keeping every other code.

        Positions are filled in raster order: a re-sampled position is drawn
        given every earlier position (kept or already drawn) but not the kept
        codes after it, which an autoregressive prior cannot see (so a hole's
        lower and right borders may not join up as well as its upper and left
        ones; `prior.MaskGIT` sees both sides). The draw at position `t` is
        the one `sample` makes there with the same seed, so `full` and
        `cached` give the same grids, and with no True in `mask` the codes come
        back unchanged.

        Args:
            codes: integer array `(num, rows, cols)` in `[0, K)`, the grids.
            mask: bool array `(num, rows, cols)`: True re-samples the position,
                False keeps its code.
            labels, temperature, seed, guidance, top_k, method: as for `sample`.

        Returns:
            int32 NumPy array `(num, rows, cols)`, equal to `codes` wherever
            `mask` is False.

        Raises:
            ValueError: as `sample`, or for codes or a mask of the wrong shape or
                type (see `check_inpaint_arguments`).

        Example:

        >>> mask = np.zeros(codes.shape, bool); mask[:, 3:, :] = True  # redraw the lower rows
        >>> completed = model.inpaint(codes, mask, labels=7, seed=0)
        """
        codes, mask, labels, seed = self.check_inpaint_arguments(
            codes, mask, labels, temperature, seed, guidance
        )
        return self._run_sampler(
            codes.shape[0], temperature, top_k, labels, seed, method, guidance, codes, mask
        )

    def _run_sampler(self, num, temperature, top_k, labels, seed, method, guidance, codes=None, mask=None):
        """`sample_codes` on checked NumPy/Python arguments; guidance 1 runs the plain loop."""
        self.check_top_k(top_k)
        method = self.resolve_sampling_method(method)
        grids = self.sample_codes(
            tf.constant(num, tf.int32),
            tf.constant(temperature, tf.float32),
            tf.constant(seed, tf.int64),
            labels=None if labels is None else tf.constant(labels),
            top_k=None if top_k is None else tf.constant(top_k, tf.int32),
            method=method,
            guidance=None if guidance == 1 else tf.constant(guidance, tf.float32),
            codes=None if codes is None else tf.constant(codes),
            mask=None if mask is None else tf.constant(mask),
        )
        return grids.numpy()
