"""A PatchGAN discriminator: a convolutional network scoring each patch of an image as real or not.

Reference: Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks" (2017), as
used by Esser, Rombach and Ommer, "Taming Transformers for High-Resolution Image Synthesis" (2021;
taming-transformers' `NLayerDiscriminator`).
"""

import keras

# Widths grow by doubling up to this multiple of `filters` (taming's `min(2**n, 8)`).
MAX_WIDTH_MULTIPLE = 8
# With `num_layers=None`, stride-2 layers are added while the patch grid keeps at least this side,
# up to DEFAULT_MAX_LAYERS: 28x28 images get 2 (a 7x7 grid), 128x128 ones 3 (taming's default).
MIN_GRID_SIDE = 7
DEFAULT_MAX_LAYERS = 3


def default_num_layers(image_side):
    """The number of stride-2 layers a `PatchDiscriminator` uses for images of side `image_side`.

    Args:
        image_side: int. The smaller side of the images.

    Returns:
        int in `[1, DEFAULT_MAX_LAYERS]`.

    Example:
    >>> default_num_layers(28), default_num_layers(128)
    (2, 3)
    """
    layers = 1
    while layers < DEFAULT_MAX_LAYERS and image_side // 2 ** (layers + 1) >= MIN_GRID_SIDE:
        layers += 1
    return layers


@keras.saving.register_keras_serializable(package="vqgen")
class PatchDiscriminator(keras.layers.Layer):
    """Patch logits of images: real (positive) or reconstructed (negative), one logit per patch.

    taming's `NLayerDiscriminator` shape: a 4x4 stride-2 convolution with `filters` channels and
    LeakyReLU(0.2); then `num_layers - 1` more 4x4 stride-2 convolutions, each doubling the width (up
    to 8 x `filters`), normalised and LeakyReLU(0.2); one 4x4 stride-1 convolution likewise; and a
    final 4x4 stride-1 convolution to one channel. "same" padding. The normalisation is a per-image
    `GroupNormalization(groups=1)` rather than taming's batch normalisation, so a step does not depend
    on how a batch is split across replicas and there are no moving statistics.

    Args:
        filters: int. Width of the first convolution. Defaults to 64.
        num_layers: int or None. Stride-2 convolutions; None: `default_num_layers` of the images'
            smaller side (2 for 28x28, 3 from 56x56 up). Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        `(B, H, W, C)` images.

    Output shape:
        `(B, H / 2**num_layers, W / 2**num_layers, 1)` float32 logits (rounded up).

    Raises:
        ValueError: `filters` or `num_layers` below 1.

    Example:
    >>> PatchDiscriminator(filters=16)(tf.zeros((2, 28, 28, 1))).shape
    TensorShape([2, 7, 7, 1])
    """

    def __init__(self, filters=64, num_layers=None, **kwargs):
        super().__init__(**kwargs)
        if filters < 1:
            raise ValueError(f"filters must be a positive integer. Received: filters={filters}")
        if num_layers is not None and num_layers < 1:
            raise ValueError(
                f"num_layers must be a positive integer or None. Received: num_layers={num_layers}"
            )
        self.filters = filters
        self.num_layers = num_layers

    def build(self, input_shape):
        num_layers = self.num_layers or default_num_layers(min(input_shape[1], input_shape[2]))
        layers = []
        for index in range(num_layers + 1):  # the stride-2 convolutions, then one of stride 1
            width = self.filters * min(2**index, MAX_WIDTH_MULTIPLE)
            strides = 2 if index < num_layers else 1
            layers.append(self._conv(width, strides, f"conv_{index}"))
            if index > 0:
                layers.append(
                    keras.layers.GroupNormalization(groups=1, name=f"norm_{index}", dtype=self.dtype_policy)
                )
            layers.append(keras.layers.LeakyReLU(0.2, name=f"leaky_relu_{index}", dtype=self.dtype_policy))
        layers.append(self._conv(1, 1, "logits"))
        shape = tuple(input_shape)
        for layer in layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.blocks = layers

    def _conv(self, width, strides, name):
        return keras.layers.Conv2D(
            width, 4, strides=strides, padding="same", name=name, dtype=self.dtype_policy
        )

    def call(self, images, training=None):
        x = images
        for layer in self.blocks:
            x = layer(x, training=training)
        return keras.ops.cast(x, "float32")

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.blocks:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "num_layers": self.num_layers})
        return config
