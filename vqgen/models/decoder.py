"""The VQ-VAE decoder of van den Oord et al. 2017, the mirror of `vqgen.Encoder`."""

import math

import keras

from vqgen.models.encoder import check_downsample
from vqgen.models.residual_stack import ResidualStack
from vqgen.settings import VQVAE_DEFAULTS


@keras.saving.register_keras_serializable(package="vqgen")
class Decoder(keras.layers.Layer):
    """Maps quantized feature maps `(B, h, w, D)` back to images `(B, h*f, w*f, C)`.

    A 3x3 convolution, residual blocks, then log2(f) stride-2 4x4 transposed convolutions (ReLU
    between them), the last one linear with `channels` outputs. The output is trained towards
    images in [0, 1] but not squashed (a sigmoid output saturates early under a squared-error loss
    on mostly-black digits and stops learning); `VQVAE.decode` clips it to [0, 1].

    Args:
        channels: int, 1 or 3. Channels of the output images.
        downsample: int, one of 2, 4, 8. The spatial factor f to undo. Defaults to the `VQVAESettings` value.
        hidden_channels: int. Width of the convolutions. Defaults to the `VQVAESettings` value.
        residual_channels: int. Width inside the residual blocks. Defaults to the `VQVAESettings` value.
        num_residual_blocks: int. Defaults to the `VQVAESettings` value.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        `(batch, h, w, D)`.

    Output shape:
        `(batch, h * downsample, w * downsample, channels)`.

    Example:
    >>> Decoder(channels=1, downsample=4)(keras.ops.zeros((2, 7, 7, 16))).shape
    (2, 28, 28, 1)
    """

    def __init__(
        self,
        channels,
        downsample=VQVAE_DEFAULTS.downsample,
        hidden_channels=VQVAE_DEFAULTS.hidden_channels,
        residual_channels=VQVAE_DEFAULTS.residual_channels,
        num_residual_blocks=VQVAE_DEFAULTS.num_residual_blocks,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_downsample(downsample)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3. Received: channels={channels}")
        self.channels = channels
        self.downsample = downsample
        self.hidden_channels = hidden_channels
        self.residual_channels = residual_channels
        self.num_residual_blocks = num_residual_blocks
        self.conv3x3 = keras.layers.Conv2D(
            hidden_channels, 3, padding="same", name="conv3x3", dtype=self.dtype_policy
        )
        self.residual_stack = ResidualStack(
            hidden_channels,
            residual_channels,
            num_residual_blocks,
            name="residual_stack",
            dtype=self.dtype_policy,
        )
        num_strided = int(math.log2(downsample))
        self.strided_transposed_convs = [
            keras.layers.Conv2DTranspose(
                channels if i == num_strided - 1 else hidden_channels // 2,
                4,
                strides=2,
                padding="same",
                activation=None if i == num_strided - 1 else "relu",  # linear output
                name=f"up{i}",
                dtype=self.dtype_policy,
            )
            for i in range(num_strided)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.conv3x3.build(shape)
        shape = self.conv3x3.compute_output_shape(shape)
        self.residual_stack.build(shape)
        for conv in self.strided_transposed_convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)

    def call(self, quantized):
        x = self.residual_stack(self.conv3x3(quantized))
        for conv in self.strided_transposed_convs:
            x = conv(x)
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        f = self.downsample
        return (
            batch,
            None if height is None else height * f,
            None if width is None else width * f,
            self.channels,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "downsample": self.downsample,
                "hidden_channels": self.hidden_channels,
                "residual_channels": self.residual_channels,
                "num_residual_blocks": self.num_residual_blocks,
            }
        )
        return config
