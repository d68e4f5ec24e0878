"""`CodePrior`: what every prior over code grids shares, autoregressive or not (checks, caches)."""

import numbers
import secrets
import types

import keras
import numpy as np

from prior.arguments import check_code_grid, check_labels, is_int

# The largest finite float32: a temperature above it would become inf in the compiled samplers.
FLOAT32_MAX = float(np.finfo(np.float32).max)


@keras.saving.register_keras_serializable(package="prior")
class CodePrior(keras.Model):
    """Base of every prior over `(rows, cols)` grids of codes in `[0, K)`.

    Holds what a prior is, whatever its factorisation: the code count, the grid
    shape and the optional class conditioning, with their checks; `check_codes`
    for grids and labels; `check_sampling_arguments` for the arguments every
    `sample` takes; and `_compiled`, the one cache of the `tf.function`s a prior
    builds. `prior.AutoregressivePrior` (PixelCNN, Transformer) derives from it.

    Args:
        num_embeddings: int >= 2, the number `K` of distinct codes.
        grid_shape: tuple `(rows, cols)` of positive ints, the code grid shape.
        num_classes: optional int >= 1; when set the model is class-conditional.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Raises:
        ValueError: if any argument is out of range.

    Example:

    >>> class MyPrior(CodePrior):  # doctest: +SKIP
    ...     def call(self, inputs, training=None): ...
    """

    def __init__(self, num_embeddings, grid_shape, num_classes=None, **kwargs):
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
        super().__init__(**kwargs)
        self.num_embeddings = int(num_embeddings)
        self.grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
        self.num_classes = None if num_classes is None else int(num_classes)

        # Compiled functions keyed by static configuration (see `_compiled`)
        self._compiled_functions = types.SimpleNamespace(by_key={})

    @property
    def conditional(self):
        """Whether the model takes class labels."""
        return self.num_classes is not None

    def _split_inputs(self, inputs):
        """`(codes, labels)` from `call`'s inputs: a codes tensor, or a `{"codes", "labels"}` dict.

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
            return inputs["codes"], inputs["labels"]
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
                conditional prior; None for an unconditional one.

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
        return codes, check_labels(labels, codes.shape[0], self.num_classes)

    def check_sampling_arguments(self, num, temperature, labels, seed):
        """Validates the arguments every prior's `sample` takes.

        Args:
            num: int >= 1, the number of grids.
            temperature: finite number > 0 that stays > 0 as a float32.
            labels: for a conditional prior, an int (the class of every grid)
                or an integer array `(num,)` in `[0, num_classes)`; else None.
            seed: None (a fresh random seed is drawn) or an int64 integer.

        Returns:
            A tuple `(labels, seed)`: the labels as an int32 `(num,)` array (None
            when unconditional) and the seed as an int.

        Raises:
            ValueError: if `num` < 1, `temperature` is not a finite positive
                float32, `seed` is not an int64 integer, or the labels are
                invalid (see `check_codes`).

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
        if labels is not None and is_int(labels):
            labels = np.full((num,), labels)
        return check_labels(labels, num, self.num_classes), int(seed)

    def _compiled(self, key, build):
        """The `tf.function` for `key`, made by `build()` on first use and kept.

        The functions live in a plain `types.SimpleNamespace` created in
        `__init__`, so neither Keras tracking nor SavedModel export walks them.

        Args:
            key: hashable, the static configuration the function is traced for.
            build: callable with no arguments returning the `tf.function`.

        Returns:
            The kept `tf.function`.
        """
        functions = self._compiled_functions.by_key
        if key not in functions:
            functions[key] = build()
        return functions[key]

    def get_config(self):
        return {
            **super().get_config(),
            "num_embeddings": self.num_embeddings,
            "grid_shape": self.grid_shape,
            "num_classes": self.num_classes,
        }
