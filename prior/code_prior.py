"""`CodePrior`: what every prior over code grids shares, autoregressive or not (checks, caches)."""

import numbers
import secrets
import types

import keras
import numpy as np
import tensorflow as tf

from prior.arguments import FLOAT32_MAX, check_code_grid, check_inpaint_mask, check_labels, is_int
from prior.guidance import check_guidance, drop_labels


@keras.saving.register_keras_serializable(package="prior")
class CodePrior(keras.Model):
    """Base of every prior over `(rows, cols)` grids of codes in `[0, K)`.

    Holds what a prior is, whatever its factorisation: the code count, the grid
    shape and the optional class conditioning, with their checks; `check_codes`
    for grids and labels; `check_sampling_arguments` for the arguments every
    `sample` takes; and `_compiled`, the one cache of the `tf.function`s a prior
    builds. `prior.AutoregressivePrior` (PixelCNN, Transformer) derives from it.

    Classifier-free guidance (`prior.guidance`): a conditional prior built with
    `label_dropout > 0` has one more label, the "no label" class `num_classes`
    (`no_label`), which replaces each training label with probability
    `label_dropout` (`_split_inputs` with `training=True`); its label embeddings
    have `label_rows = num_classes + 1` rows and `supports_guidance` is True.
    With `label_dropout == 0` (the default, and every prior saved before the
    option existed) the embeddings keep `num_classes` rows.

    Args:
        num_embeddings: int >= 2, the number `K` of distinct codes.
        grid_shape: tuple `(rows, cols)` of positive ints, the code grid shape.
        num_classes: optional int >= 1; when set the model is class-conditional.
        label_dropout: float in `[0, 1)`, the probability that a training label is
            replaced by the "no label" class; > 0 only for a conditional prior.
            Defaults to 0.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: if any argument is out of range.

    Example:

    >>> class MyPrior(CodePrior):  # doctest: +SKIP
    ...     def call(self, inputs, training=None): ...
    """

    def __init__(self, num_embeddings, grid_shape, num_classes=None, label_dropout=0.0, **kwargs):
        if not is_int(num_embeddings) or num_embeddings < 2:
            raise ValueError(f"num_embeddings must be an int >= 2. Received: num_embeddings={num_embeddings}")
        if (
            not isinstance(grid_shape, (tuple, list))
            or len(grid_shape) != 2
            or not all(is_int(side) and side >= 1 for side in grid_shape)
        ):
            raise ValueError(
                f"grid_shape must be (rows, cols) with positive ints. Received: grid_shape={grid_shape}"
            )
        if num_classes is not None and (not is_int(num_classes) or num_classes < 1):
            raise ValueError(f"num_classes must be None or an int >= 1. Received: num_classes={num_classes}")
        if (
            not isinstance(label_dropout, numbers.Real)
            or isinstance(label_dropout, bool)
            or not 0 <= label_dropout < 1
        ):
            raise ValueError(
                f"label_dropout must be a float in [0, 1). Received: label_dropout={label_dropout}"
            )
        if label_dropout > 0 and num_classes is None:
            raise ValueError(
                f"label_dropout needs a class-conditional prior (num_classes set). "
                f"Received: label_dropout={label_dropout}, num_classes=None"
            )
        super().__init__(**kwargs)
        self.num_embeddings = int(num_embeddings)
        self.grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
        self.num_classes = None if num_classes is None else int(num_classes)
        self.label_dropout = float(label_dropout)
        # The draws of label dropout; only a prior that drops labels has (and saves) this state
        self.label_dropout_seeds = (
            keras.random.SeedGenerator(name="label_dropout_seeds") if label_dropout else None
        )

        # Compiled functions keyed by static configuration (see `_compiled`)
        self._compiled_functions = types.SimpleNamespace(by_key={})

    @property
    def conditional(self):
        """Whether the model takes class labels."""
        return self.num_classes is not None

    @property
    def supports_guidance(self):
        """Whether `sample`/`inpaint` accept a guidance other than 1: trained with label dropout."""
        return self.label_dropout > 0

    @property
    def no_label(self):
        """The "no label" class, `num_classes`, of a prior that supports guidance; else None."""
        return self.num_classes if self.supports_guidance else None

    @property
    def label_rows(self):
        """Rows of the label embeddings: `num_classes`, plus the "no label" row with label dropout."""
        if self.num_classes is None:
            return None
        return self.num_classes + 1 if self.supports_guidance else self.num_classes

    def _split_inputs(self, inputs, training=False):
        """`(codes, labels)` from `call`'s inputs: a codes tensor, or a `{"codes", "labels"}` dict.

        When `training` is true, labels are replaced by the "no label" class with probability
        `label_dropout` (`prior.guidance.drop_labels`).

        Raises:
            ValueError: labels given to an unconditional model, or missing for a conditional one.
        """
        kind = type(self).__name__
        if isinstance(inputs, dict):
            if not self.conditional:
                raise ValueError(
                    f"this {kind} is unconditional (num_classes=None); "
                    "call it on the codes tensor, not a dict"
                )
            labels = inputs["labels"]
            if training and self.supports_guidance:
                labels = drop_labels(labels, self.label_dropout, self.num_classes, self.label_dropout_seeds)
            return inputs["codes"], labels
        if self.conditional:
            raise ValueError(
                f'this {kind} is class-conditional; call it on {{"codes": codes, "labels": labels}}'
            )
        return inputs, None

    def check_codes(self, codes, labels=None):
        """Validates code grids (and labels) for this prior.

        Args:
            codes: integer array `(batch, rows, cols)` with values in `[0, K)`.
            labels: integer array `(batch,)` in `[0, num_classes)` for a
                conditional prior (`[0, num_classes]` when it supports guidance:
                `num_classes` is the "no label" class); None for an unconditional one.

        Returns:
            A tuple `(codes, labels)` as int32 NumPy arrays (`labels` None when
            unconditional).

        Raises:
            ValueError: for non-integer codes, a grid shape other than
                `grid_shape`, codes outside `[0, K)`, labels given to an
                unconditional prior or missing for a conditional one, labels
                outside `[0, num_classes)` or a label count that does not
                match the number of grids.

        Example:

        >>> codes, labels = model.check_codes(codes, labels)
        """
        codes = check_code_grid(codes, self.grid_shape, self.num_embeddings)
        return codes, check_labels(labels, codes.shape[0], self.label_rows)

    def check_sampling_arguments(self, num, temperature, labels, seed, guidance=1.0):
        """Validates the arguments every prior's `sample` takes.

        Args:
            num: int >= 1, the number of grids.
            temperature: finite number > 0 that stays > 0 as a float32.
            labels: for a conditional prior, an int (the class of every grid)
                or an integer array `(num,)` in `[0, num_classes)`; else None.
            seed: None (a fresh random seed is drawn) or an int64 integer.
            guidance: the classifier-free guidance scale, a finite number >= 0;
                other than 1 only for a prior that `supports_guidance` (see
                `prior.guidance.check_guidance`). Defaults to 1.

        Returns:
            A tuple `(labels, seed)`: the labels as an int32 `(num,)` array (None
            when unconditional) and the seed as an int.

        Raises:
            ValueError: if `num` < 1, `temperature` is not a finite positive
                float32, `seed` is not an int64 integer, the labels are
                invalid (see `check_codes`) or the guidance is refused.

        Example:

        >>> labels, seed = model.check_sampling_arguments(4, 1.0, labels=3, seed=None)
        """
        if not is_int(num) or num < 1:
            raise ValueError(f"num must be an int >= 1; received num={num!r}")
        if (
            not isinstance(temperature, numbers.Real)
            or isinstance(temperature, bool)
            or not 0 < temperature <= FLOAT32_MAX
            or np.float32(temperature) == 0
        ):
            raise ValueError(
                "temperature must be a finite number > 0 (as a float32); "
                f"received temperature={temperature!r}"
            )
        if seed is None:
            seed = secrets.randbits(63)
        elif not is_int(seed) or not -(2**63) <= seed < 2**63:
            raise ValueError(f"seed must be None or an int64 integer; received seed={seed!r}")
        check_guidance(guidance, self.num_classes, self.label_dropout)
        if labels is not None and is_int(labels):
            labels = np.full((num,), labels)
        return check_labels(labels, num, self.label_rows), int(seed)

    def check_top_k(self, top_k):
        """Validates `top_k`: None, or an int in `[1, num_embeddings]`.

        Args:
            top_k: the number of most likely codes to sample among, or None (all).

        Returns:
            `top_k`.

        Raises:
            ValueError: for any other value.

        Example:

        >>> model.check_top_k(32)
        32
        """
        if top_k is not None and (not is_int(top_k) or not 1 <= top_k <= self.num_embeddings):
            raise ValueError(
                f"top_k must be None or an int in [1, {self.num_embeddings}] (num_embeddings); "
                f"received top_k={top_k!r}"
            )
        return top_k

    def check_inpaint_arguments(self, codes, mask, labels, temperature, seed, guidance=1.0):
        """Validates the arguments every prior's `inpaint` takes.

        Args:
            codes: integer array `(num, rows, cols)` in `[0, K)`, the grids to complete.
            mask: bool array `(num, rows, cols)`: True re-samples a position, False keeps its code.
            labels, temperature, seed, guidance: as for `check_sampling_arguments` (`labels` may be
                one int for every grid).

        Returns:
            A tuple `(codes, mask, labels, seed)`: int32 codes, the bool mask, int32 labels (None
            when unconditional) and the seed as an int.

        Raises:
            ValueError: as `check_codes` and `check_sampling_arguments`, or for a mask that is not
                a bool array of the codes' shape.

        Example:

        >>> codes, mask, labels, seed = model.check_inpaint_arguments(codes, mask, 3, 1.0, 0)
        """
        codes = check_code_grid(codes, self.grid_shape, self.num_embeddings)
        mask = check_inpaint_mask(mask, codes.shape)
        if codes.shape[0] < 1:
            raise ValueError("codes must hold at least one grid to inpaint; received 0")
        labels, seed = self.check_sampling_arguments(codes.shape[0], temperature, labels, seed, guidance)
        return codes, mask, labels, seed

    def graph_sampling_arguments(self, num_samples, temperature, labels=None, top_k=None, guidance=None):
        """The tensor arguments of a graph-level sampler, cast, with their assertions.

        Every prior's `sample_codes` takes these tensors and checks them the same way; the
        checks are `tf.debugging` assertions, to run under `tf.control_dependencies`.

        Args:
            num_samples: int scalar tensor, >= 1.
            temperature: float scalar tensor, > 0.
            labels: int `(num_samples,)` tensor when conditional, else None.
            top_k: optional int scalar tensor in `[1, num_embeddings]`.
            guidance: optional float scalar tensor >= 0 (needs `supports_guidance`).

        Returns:
            A tuple `(num_samples, temperature, labels, top_k, guidance, checks)`: the
            arguments cast to int32 / float32 (None stays None) and the list of assertions.

        Raises:
            ValueError: labels given to / missing from the model, or guidance for a prior
                trained without label dropout.

        Example:

        >>> *arguments, checks = model.graph_sampling_arguments(tf.constant(4), tf.constant(1.0))
        """
        if (labels is None) == self.conditional:
            raise ValueError(
                f"labels are required for a class-conditional {type(self).__name__} and not accepted "
                f"otherwise; num_classes={self.num_classes}"
            )
        if guidance is not None and not self.supports_guidance:
            raise ValueError(
                f"guidance needs a {type(self).__name__} trained with label dropout; "
                f"label_dropout={self.label_dropout}, num_classes={self.num_classes}"
            )
        num_samples = tf.cast(num_samples, tf.int32)
        temperature = tf.cast(temperature, tf.float32)
        checks = [
            tf.debugging.assert_greater_equal(num_samples, 1, message="num_samples must be >= 1"),
            tf.debugging.assert_greater(temperature, 0.0, message="temperature must be > 0"),
        ]
        if top_k is not None:
            top_k = tf.cast(top_k, tf.int32)
            checks += [
                tf.debugging.assert_greater_equal(top_k, 1, message="top_k must be >= 1"),
                tf.debugging.assert_less_equal(
                    top_k, self.num_embeddings, message="top_k must be <= num_embeddings"
                ),
            ]
        if labels is not None:
            labels = tf.cast(labels, tf.int32)
            checks += [
                tf.debugging.assert_equal(
                    tf.size(labels), num_samples, message="labels must hold one label per sample"
                ),
                tf.debugging.assert_greater_equal(labels, 0, message="labels must be >= 0"),
                tf.debugging.assert_less(
                    labels,
                    self.label_rows,
                    message="labels must be < num_classes (or == num_classes, no label, with label dropout)",
                ),
            ]
        if guidance is not None:
            guidance = tf.cast(guidance, tf.float32)
            checks.append(tf.debugging.assert_greater_equal(guidance, 0.0, message="guidance must be >= 0"))
        return num_samples, temperature, labels, top_k, guidance, checks

    def _compiled(self, key, python_function, **options):
        """The `tf.function` of `python_function` for `key`, traced on first use and kept.

        The functions live in a plain `types.SimpleNamespace` created in
        `__init__`, so neither Keras tracking nor SavedModel export walks them.
        Each is built with `reduce_retracing=True` and `autograph=False`: their
        loops are explicit `tf.while_loop`s and their branches Python ones on
        static settings, so AutoGraph would only convert the model's whole call
        tree again at every trace (seconds per sampler; `vqgen export` traces
        four).

        Args:
            key: hashable, the static configuration the function is traced for.
            python_function: callable, wrapped the first time `key` is seen (later
                calls with the same `key` return the kept function and ignore it).
            **options: further `tf.function` options, e.g. `jit_compile`.

        Returns:
            The kept `tf.function`.
        """
        functions = self._compiled_functions.by_key
        if key not in functions:
            functions[key] = tf.function(python_function, reduce_retracing=True, autograph=False, **options)
        return functions[key]

    @classmethod
    def from_config(cls, config):
        """Rebuilds a saved prior in the dtype policy in force now, not the one it trained under.

        A prior trained under `mixed_bfloat16` saves that policy in its config; restored on the
        model alone, it would compute in bfloat16 while the layers it builds in `__init__` take
        the global policy (float32 by default), and their outputs would not add up. Without the
        saved `dtype`, model and layers follow the global policy together.

        Args:
            config: dict from `get_config`.

        Returns:
            A new prior of this class.
        """
        return super().from_config({key: value for key, value in config.items() if key != "dtype"})

    def get_config(self):
        return {
            **super().get_config(),
            "num_embeddings": self.num_embeddings,
            "grid_shape": self.grid_shape,
            "num_classes": self.num_classes,
            "label_dropout": self.label_dropout,
        }
