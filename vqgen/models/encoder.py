"""The VQ-VAE encoder of van den Oord et al. 2017 ("Neural Discrete Representation Learning")."""

import math

import keras

from vqgen.models.residual_stack import ResidualStack
from vqgen.settings import VQVAE_DEFAULTS

DOWNSAMPLE_FACTORS = (2, 4, 8)


def check_downsample(downsample):
    """Raises ValueError unless `downsample` is one of the supported factors 2, 4, 8.

    Args:
        downsample: the factor to check.

    Raises:
        ValueError: for any other value.
    """
    if downsample not in DOWNSAMPLE_FACTORS:
        raise ValueError(f"downsample must be one of {DOWNSAMPLE_FACTORS}. Received: downsample={downsample}")


@keras.saving.register_keras_serializable(package="vqgen")
class Encoder(keras.layers.Layer):
    """Maps images `(B, H, W, C)` to a feature map `(B, H/f, W/f, embedding_dim)`.

    log2(f) stride-2 4x4 convolutions with ReLU, a 3x3 convolution, residual blocks, and a 1x1
    convolution to `embedding_dim` channels (the quantizer's input).

    Args:
        embedding_dim: int. Depth of the output (the codebook's D).
        downsample: int, one of 2, 4, 8. The spatial reduction f. Defaults to the `VQVAESettings` value.
        hidden_channels: int. Width of the convolutions. Defaults to the `VQVAESettings` value.
        residual_channels: int. Width inside the residual blocks. Defaults to the `VQVAESettings` value.
        num_residual_blocks: int. Defaults to the `VQVAESettings` value.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        `(batch, H, W, C)` with H and W divisible by `downsample`.

    Output shape:
        `(batch, H / downsample, W / downsample, embedding_dim)`.

    Example:
    >>> Encoder(embedding_dim=16, downsample=4)(keras.ops.zeros((2, 28, 28, 1))).shape
    (2, 7, 7, 16)
    """

    def __init__(
        self,
        embedding_dim,
        downsample=VQVAE_DEFAULTS.downsample,
        hidden_channels=VQVAE_DEFAULTS.hidden_channels,
        residual_channels=VQVAE_DEFAULTS.residual_channels,
        num_residual_blocks=VQVAE_DEFAULTS.num_residual_blocks,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_downsample(downsample)
        self.embedding_dim = embedding_dim
        self.downsample = downsample
        self.hidden_channels = hidden_channels
        self.residual_channels = residual_channels
        self.num_residual_blocks = num_residual_blocks
        num_strided = int(math.log2(downsample))
        self.strided_convs = [
            keras.layers.Conv2D(
                hidden_channels // 2 if i < num_strided - 1 else hidden_channels,
                4,
                strides=2,
                padding="same",
                activation="relu",
                name=f"down{i}",
                dtype=self.dtype_policy,
            )
            for i in range(num_strided)
        ]
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
        self.project = keras.layers.Conv2D(embedding_dim, 1, name="to_embedding", dtype=self.dtype_policy)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.strided_convs + [self.conv3x3]:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.residual_stack.build(shape)
        self.project.build(shape)

    def call(self, images):
        x = images
        for conv in self.strided_convs:
            x = conv(x)
        return self.project(self.residual_stack(self.conv3x3(x)))

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        f = self.downsample
        return (
            batch,
            None if height is None else height // f,
            None if width is None else width // f,
            self.embedding_dim,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embedding_dim": self.embedding_dim,
                "downsample": self.downsample,
                "hidden_channels": self.hidden_channels,
                "residual_channels": self.residual_channels,
                "num_residual_blocks": self.num_residual_blocks,
            }
        )
        return config
