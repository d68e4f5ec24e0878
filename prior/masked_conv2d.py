"""`MaskedConv2D`: a causally masked 2-D convolution for raster-order models."""

import keras
import numpy as np
from keras import ops

MASK_TYPES = ("A", "B")


@keras.saving.register_keras_serializable(package="prior")
class MaskedConv2D(keras.layers.Conv2D):
    """2-D convolution whose kernel only sees earlier pixels in raster order.

    The masked convolution of PixelCNN (van den Oord et al., 2016, "Pixel
    Recurrent Neural Networks"). A constant 0/1 mask over the kernel's spatial
    taps is multiplied into the kernel inside every forward pass (the stored
    kernel weights stay dense), so the output at `(r, c)` only depends on
    inputs at rows above `r` and, on row `r`, on columns left of `c`. Mask
    type `"A"` excludes the centre tap (use it on the first layer, where the
    centre is the value being predicted); type `"B"` includes it (later
    layers, whose centre already holds only past information). Because the
    masked taps are multiplied by zero, their gradients are exactly zero.

    Args:
        filters: int, number of output channels.
        kernel_size: int or tuple of 2 odd ints, the kernel's height and width;
            the centre tap is `(kernel_height // 2, kernel_width // 2)`.
        mask_type: `"A"` (centre excluded) or `"B"` (centre included).
        **kwargs: any other `keras.layers.Conv2D` argument (`padding`,
            `strides`, `dilation_rate`, `activation`, `use_bias`, ...).

    Input shape:
        4-D tensor `(batch, rows, cols, channels)` (or channels first when
        `data_format="channels_first"`).

    Output shape:
        4-D tensor `(batch, new_rows, new_cols, filters)`, as `Conv2D`.

    Raises:
        ValueError: if `mask_type` is not `"A"` or `"B"`, or a kernel side is
            even (the mask needs a centre tap).

    Example:

    >>> inputs = keras.Input((8, 8, 1))
    >>> features = MaskedConv2D(16, 5, mask_type="A", padding="same")(inputs)
    >>> features = MaskedConv2D(16, 3, mask_type="B", padding="same")(features)
    >>> model = keras.Model(inputs, features)
    """

    def __init__(self, filters, kernel_size, mask_type="B", **kwargs):
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be 'A' or 'B'. Received: mask_type={mask_type!r}")
        super().__init__(filters, kernel_size, **kwargs)
        if any(side % 2 == 0 for side in self.kernel_size):
            raise ValueError(
                "kernel_size must be odd on both sides so the mask has a centre tap. "
                f"Received: kernel_size={kernel_size}"
            )
        self.mask_type = mask_type
        self.kernel_mask = None

    def build(self, input_shape):
        super().build(input_shape)
        kernel_height, kernel_width = self.kernel_size
        centre_row, centre_col = kernel_height // 2, kernel_width // 2
        mask = np.zeros(tuple(self.kernel.shape), dtype=self.kernel.dtype)
        mask[:centre_row] = 1.0
        mask[centre_row, :centre_col] = 1.0
        if self.mask_type == "B":
            mask[centre_row, centre_col] = 1.0
        self.kernel_mask = mask

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * ops.cast(self.kernel_mask, kernel.dtype))

    def get_config(self):
        return {**super().get_config(), "mask_type": self.mask_type}
