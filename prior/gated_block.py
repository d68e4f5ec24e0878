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

    def __init__(
        self, filters, kernel_size, first_block=False, num_classes=None, **kwargs
    ):
        if not is_int(filters) or filters < 1:
            raise ValueError(f"filters must be an int >= 1. Received: filters={filters}")
        if not is_int(kernel_size) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be an odd int >= 3. Received: kernel_size={kernel_size}"
            )
        if num_classes is not None and (not is_int(num_classes) or num_classes < 1):
            raise ValueError(
                f"num_classes must be None or an int >= 1. Received: num_classes={num_classes}"
            )
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.first_block = bool(first_block)
        self.num_classes = num_classes
        self.padding = kernel_size // 2
        gate_channels = 2 * filters
        self.vertical_conv = keras.layers.Conv2D(
            gate_channels, (self.padding + 1, kernel_size), name="vertical_conv"
        )
        self.vertical_to_horizontal = keras.layers.Conv2D(
            gate_channels, 1, name="vertical_to_horizontal"
        )
        self.horizontal_conv = MaskedConv2D(
            gate_channels,
            (1, kernel_size),
            mask_type="A" if self.first_block else "B",
            name="horizontal_conv",
        )
        self.horizontal_output = keras.layers.Conv2D(filters, 1, name="horizontal_output")
        self.skip_output = keras.layers.Conv2D(filters, 1, name="skip_output")
        if num_classes is None:
            self.vertical_label_bias = None
            self.horizontal_label_bias = None
        else:
            self.vertical_label_bias = keras.layers.Embedding(
                num_classes, gate_channels, name="vertical_label_bias"
            )
            self.horizontal_label_bias = keras.layers.Embedding(
                num_classes, gate_channels, name="horizontal_label_bias"
            )

    def build(self, input_shape):
        batch, rows, cols, channels = input_shape
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
        vertical_pre = self.vertical_preactivation(
            ops.pad(vertical, [[0, 0], [pad, 0], [pad, pad], [0, 0]]), labels
        )
        shifted_down = ops.pad(vertical_pre[:, :-1], [[0, 0], [1, 0], [0, 0], [0, 0]])
        horizontal, skip = self.horizontal_outputs(
            ops.pad(horizontal, [[0, 0], [0, 0], [pad, pad], [0, 0]]),
            horizontal,
            self.vertical_to_horizontal(shifted_down),
            labels,
        )
        return gate(vertical_pre), horizontal, skip

    def vertical_preactivation(self, padded_vertical, labels=None):
        """Vertical-stack pre-activation (before the gate).

        Args:
            padded_vertical: `(batch, rows + k // 2, cols + 2 * (k // 2), filters)`,
                the vertical input zero padded at the top, left and right.
            labels: int `(batch,)` class labels, or None when unconditional.

        Returns:
            `(batch, rows, cols, 2 * filters)`: output row `r` depends on
            input rows `r - k // 2 .. r` only.
        """
        preactivation = self.vertical_conv(padded_vertical)
        if labels is not None:
            preactivation = preactivation + self.vertical_label_bias(labels)[:, None, None, :]
        return preactivation

    def horizontal_outputs(self, padded_horizontal, horizontal, vertical_contribution, labels=None):
        """Horizontal-stack output and skip output.

        Args:
            padded_horizontal: `(batch, rows, cols + 2 * (k // 2), filters)`,
                the horizontal input zero padded left and right (the right
                side is masked out, so any finite values may stand there).
            horizontal: `(batch, rows, cols, filters)`, the unpadded input,
                used for the residual connection.
            vertical_contribution: `(batch, rows, cols, 2 * filters)`, the
                1x1-projected vertical pre-activation of the row above.
            labels: int `(batch,)` class labels, or None when unconditional.

        Returns:
            A tuple `(horizontal, skip)`, each `(batch, rows, cols, filters)`.
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
