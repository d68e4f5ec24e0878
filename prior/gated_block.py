"""`GatedBlock`: one layer of the gated PixelCNN (vertical + horizontal stacks)."""

import keras
from keras import ops

from prior.arguments import is_int
from prior.masked_conv2d import MaskedConv2D


def gate(preactivation):
    """Gated activation `tanh(a) * sigmoid(b)` over the two channel halves."""
    filter_half, gate_half = ops.split(preactivation, 2, axis=-1)
    return ops.tanh(filter_half) * ops.sigmoid(gate_half)


@keras.saving.register_keras_serializable(package="prior")
class GatedBlock(keras.layers.Layer):
    """One gated PixelCNN layer with a vertical and a horizontal stack.

    Implements the block of van den Oord et al. (2016), "Conditional Image
    Generation with PixelCNN Decoders", which removes the blind spot of a
    plain masked PixelCNN by splitting the receptive field in two stacks:

    - the vertical stack convolves a `(k // 2 + 1, k)` kernel over the rows
      at and above each row (zero padded at the top, left and right), so row
      `r` of its output depends on input rows `<= r` only;
    - the horizontal stack applies a `(1, k)` `MaskedConv2D` (type `"A"` on
      the first block, `"B"` after) along the current row, plus the vertical
      pre-activation shifted down by one row through a 1x1 convolution, so
      position `(r, c)` sees every row above and the row's columns left of
      `c` (and `c` itself after the first block).

    Both stacks use the gated activation `tanh(W_f * x) * sigmoid(W_g * x)`.
    The horizontal stack has a residual connection (except on the first
    block, whose input is the current code) and emits a skip output. When
    `num_classes` is set, a learned per-class bias (an `Embedding`) is added
    to both pre-activations before the gates.

    Incremental computation for sampling: `initial_vertical_cache` and
    `vertical_step` compute the vertical stack one row at a time,
    `initial_horizontal_history` and `horizontal_step` the horizontal stack
    one position at a time, with the same weights and outputs as `call`; a
    sampler only loops over them and never needs the block's geometry.

    Args:
        filters: int, channels of both stacks (the gates use `2 * filters`).
        kernel_size: odd int >= 3, the width `k` of both stacks' kernels.
        first_block: bool, whether this is the network's first block
            (centre excluded, no residual).
        num_classes: optional int, number of labels for class conditioning.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape:
        `vertical` and `horizontal`: `(batch, rows, cols, filters)`;
        `labels` (conditional only): int `(batch,)`.

    Output shape:
        A tuple `(vertical, horizontal, skip)`, each
        `(batch, rows, cols, filters)`.

    Raises:
        ValueError: if `filters` < 1, `kernel_size` is not an odd int >= 3 or
            `num_classes` is not None or an int >= 1.

    Example:

    >>> block = GatedBlock(filters=32, kernel_size=5, first_block=True)
    >>> features = keras.random.normal((2, 7, 7, 32))
    >>> vertical, horizontal, skip = block(features, features)
    """

    def __init__(self, filters, kernel_size, first_block=False, num_classes=None, **kwargs):
        if not is_int(filters) or filters < 1:
            raise ValueError(f"filters must be an int >= 1. Received: filters={filters}")
        if not is_int(kernel_size) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd int >= 3. Received: kernel_size={kernel_size}")
        if num_classes is not None and (not is_int(num_classes) or num_classes < 1):
            raise ValueError(f"num_classes must be None or an int >= 1. Received: num_classes={num_classes}")
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.first_block = bool(first_block)
        self.num_classes = num_classes
        self.padding = kernel_size // 2
        gate_channels = 2 * filters
        self.vertical_conv = keras.layers.Conv2D(
            gate_channels, (self.padding + 1, kernel_size), name="vertical_conv", dtype=self.dtype_policy
        )
        self.vertical_to_horizontal = keras.layers.Conv2D(
            gate_channels, 1, name="vertical_to_horizontal", dtype=self.dtype_policy
        )
        self.horizontal_conv = MaskedConv2D(
            gate_channels,
            (1, kernel_size),
            mask_type="A" if self.first_block else "B",
            name="horizontal_conv",
            dtype=self.dtype_policy,
        )
        self.horizontal_output = keras.layers.Conv2D(
            filters, 1, name="horizontal_output", dtype=self.dtype_policy
        )
        self.skip_output = keras.layers.Conv2D(filters, 1, name="skip_output", dtype=self.dtype_policy)
        if num_classes is None:
            self.vertical_label_bias = None
            self.horizontal_label_bias = None
        else:
            self.vertical_label_bias = keras.layers.Embedding(
                num_classes, gate_channels, name="vertical_label_bias", dtype=self.dtype_policy
            )
            self.horizontal_label_bias = keras.layers.Embedding(
                num_classes, gate_channels, name="horizontal_label_bias", dtype=self.dtype_policy
            )

    def build(self, vertical_shape, horizontal_shape=None, labels_shape=None):
        batch, rows, cols, channels = vertical_shape  # both stacks have this shape; labels are (batch,)
        pad = self.padding
        gate_shape = (batch, rows, cols, 2 * self.filters)
        self.vertical_conv.build((batch, rows + pad, cols + 2 * pad, channels))
        self.vertical_to_horizontal.build(gate_shape)
        self.horizontal_conv.build((batch, rows, cols + 2 * pad, channels))
        self.horizontal_output.build((batch, rows, cols, self.filters))
        self.skip_output.build((batch, rows, cols, self.filters))
        if self.num_classes is not None:
            self.vertical_label_bias.build((batch,))
            self.horizontal_label_bias.build((batch,))

    def call(self, vertical, horizontal, labels=None):
        pad = self.padding
        # Vertical stack: rows r - k // 2 .. r of the top/left/right padded input.
        vertical_pre = self._vertical_preactivation(
            ops.pad(vertical, [[0, 0], [pad, 0], [pad, pad], [0, 0]]), labels
        )  # (B, rows, cols, 2F)
        # Its contribution to the horizontal stack, shifted down one row.
        shifted_down = ops.pad(vertical_pre[:, :-1], [[0, 0], [1, 0], [0, 0], [0, 0]])
        # Horizontal stack: a masked (1, k) window along each row.
        horizontal, skip = self._horizontal_outputs(
            ops.pad(horizontal, [[0, 0], [0, 0], [pad, pad], [0, 0]]),
            horizontal,
            self.vertical_to_horizontal(shifted_down),
            labels,
        )
        return gate(vertical_pre), horizontal, skip

    # ------------------------------------------------------------------ incremental steps

    def initial_vertical_cache(self, batch, cols):
        """The vertical-stack state before row 0 of a `cols`-wide grid.

        The cache holds the last `k // 2 + 1` vertical input rows, zero padded
        as `call` pads them (all zero before row 0). The contribution row is
        what the vertical stack adds to the horizontal pre-activations of row
        0: the 1x1 projection of the zero row above the grid.

        Args:
            batch: int or int32 scalar tensor, the number of grids.
            cols: int, the grid width.

        Returns:
            A tuple `(cache, contribution_row)`: `cache` to pass to the first
            `vertical_step`, and the float `(batch, 1, cols, 2 * filters)`
            contribution of row 0.

        Example:

        >>> cache, contribution_row = block.initial_vertical_cache(4, cols=7)
        """
        pad = self.padding
        cache = ops.zeros((batch, pad + 1, cols + 2 * pad, self.filters), self.compute_dtype)
        zero_row = ops.zeros((batch, 1, cols, 2 * self.filters), self.compute_dtype)
        return cache, self.vertical_to_horizontal(zero_row)

    def vertical_step(self, cache, input_row, labels=None):
        """Pushes one completed vertical input row through the vertical stack.

        Equivalent to row `r` of `call`'s vertical output when `input_row` is
        row `r` of the vertical input and `cache` came from the steps over rows
        `0 .. r - 1` (or `initial_vertical_cache` for `r = 0`).

        Args:
            cache: the state returned by `initial_vertical_cache` or by the
                previous `vertical_step`.
            input_row: float `(batch, 1, cols, filters)`, row `r` of the
                vertical input (the embedded codes of row `r` for the first
                block, the previous block's `output_row` after).
            labels: int `(batch,)` class labels, or None when unconditional.

        Returns:
            A tuple `(new_cache, contribution_row, output_row)`: the state for
            row `r + 1`; the float `(batch, 1, cols, 2 * filters)` vertical
            contribution to the horizontal stack on row `r + 1`; and the float
            `(batch, 1, cols, filters)` vertical output row `r` (the next
            block's `input_row`).

        Example:

        >>> cache, contribution_row = block.initial_vertical_cache(2, cols=7)
        >>> cache, contribution_row, output_row = block.vertical_step(cache, row_0)
        """
        pad = self.padding
        padded_row = ops.pad(input_row, [[0, 0], [0, 0], [pad, pad], [0, 0]])
        cache = ops.concatenate([cache[:, 1:], padded_row], axis=1)  # (B, k // 2 + 1, cols + 2p, F)
        preactivation = self._vertical_preactivation(cache, labels)  # (B, 1, cols, 2F)
        return cache, self.vertical_to_horizontal(preactivation), gate(preactivation)

    def initial_horizontal_history(self, batch):
        """The horizontal-stack state at the start of a row: no input seen yet.

        Args:
            batch: int or int32 scalar tensor, the number of grids.

        Returns:
            The history to pass to the row's first `horizontal_step`: the
            horizontal inputs left of the current column (the zero padding).

        Example:

        >>> history = block.initial_horizontal_history(4)
        """
        return ops.zeros((batch, 1, self.padding, self.filters), self.compute_dtype)

    def horizontal_step(self, history, block_input, contribution, labels=None):
        """Computes the horizontal and skip outputs at the next column of a row.

        Equivalent to column `c` of `call`'s horizontal and skip outputs on row
        `r`, given the row's earlier steps (or `initial_horizontal_history` for
        `c = 0`) and the vertical contribution of column `c`.

        The first block (mask type `"A"`) must not see the code it helps draw:
        its input at column `c` is that code, unknown until the draw. So, as in
        a language model's cached step, a first block consumes the input of the
        *previous* column (the embedding of the code drawn at `c - 1`, zeros
        at `c = 0`), while later blocks consume their input at column `c` (the
        previous block's `output`) and add it back as the residual.

        Args:
            history: the state from `initial_horizontal_history` or from the
                previous `horizontal_step` on this row.
            block_input: float `(batch, 1, 1, filters)`: for the first block
                the horizontal input at column `c - 1` (zeros at `c = 0`), for
                later blocks the horizontal input at column `c`.
            contribution: float `(batch, 1, 1, 2 * filters)`, column `c` of the
                `contribution_row` that `vertical_step` returned for row `r`
                (or `initial_vertical_cache` for row 0).
            labels: int `(batch,)` class labels, or None when unconditional.

        Returns:
            A tuple `(new_history, output, skip)`: the state for column
            `c + 1`, and the float `(batch, 1, 1, filters)` horizontal output
            (the next block's `block_input`) and skip output at column `c`.

        Example:

        >>> history = block.initial_horizontal_history(2)
        >>> history, output, skip = block.horizontal_step(
        ...     history, block_input, contribution_row[:, :, column, None]
        ... )
        """
        if self.first_block:
            # Inputs at columns c - k // 2 .. c - 1, then the masked centre and right side.
            history = ops.concatenate([history[:, :, 1:], block_input], axis=2)
            window = ops.concatenate([history, ops.zeros_like(block_input), ops.zeros_like(history)], axis=2)
        else:
            # Inputs at columns c - k // 2 .. c, then the masked right side.
            window = ops.concatenate([history, block_input, ops.zeros_like(history)], axis=2)
            history = ops.concatenate([history[:, :, 1:], block_input], axis=2)
        output, skip = self._horizontal_outputs(window, block_input, contribution, labels)
        return history, output, skip

    # ------------------------------------------------------------------ shared by call and steps

    def _vertical_preactivation(self, padded_vertical, labels):
        """Vertical pre-activation `(B, rows, cols, 2F)` of the top/left/right padded input.

        Output row `r` depends on padded input rows `r .. r + k // 2` only.
        """
        preactivation = self.vertical_conv(padded_vertical)
        if labels is not None:
            preactivation = preactivation + self.vertical_label_bias(labels)[:, None, None, :]
        return preactivation

    def _horizontal_outputs(self, padded_horizontal, horizontal, vertical_contribution, labels):
        """Horizontal and skip outputs, each `(B, rows, cols, F)`.

        `padded_horizontal` is the horizontal input padded by `k // 2` columns
        on each side (the right side is masked out, so any finite values may
        stand there); `horizontal` is the unpadded input for the residual;
        `vertical_contribution` is the 1x1-projected vertical pre-activation of
        the row above.
        """
        preactivation = self.horizontal_conv(padded_horizontal) + vertical_contribution
        if labels is not None:
            preactivation = preactivation + self.horizontal_label_bias(labels)[:, None, None, :]
        gated = gate(preactivation)
        output = self.horizontal_output(gated)
        if not self.first_block:
            output = horizontal + output
        return output, self.skip_output(gated)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "first_block": self.first_block,
            "num_classes": self.num_classes,
        }
