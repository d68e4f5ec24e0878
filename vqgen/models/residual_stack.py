"""The residual blocks shared by the VQ-VAE encoder and decoder (van den Oord et al. 2017, sec. 4.1)."""

import keras


@keras.saving.register_keras_serializable(package="vqgen")
class ResidualStack(keras.layers.Layer):
    """A stack of residual blocks `x + conv1x1(relu(conv3x3(relu(x))))`, followed by a ReLU.

    Args:
        channels: int. Depth of the input and output.
        residual_channels: int. Depth inside each block (after the 3x3 convolution).
        num_blocks: int >= 0. Number of blocks.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        `(batch, h, w, channels)`.

    Output shape:
        Same as the input.

    Example:
    >>> ResidualStack(channels=64, residual_channels=32, num_blocks=2)(keras.ops.zeros((1, 7, 7, 64))).shape
    (1, 7, 7, 64)
    """

    def __init__(self, channels, residual_channels, num_blocks, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("channels", channels), ("residual_channels", residual_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value}")
        if not isinstance(num_blocks, int) or num_blocks < 0:
            raise ValueError(f"num_blocks must be an integer >= 0. Received: num_blocks={num_blocks}")
        self.channels = channels
        self.residual_channels = residual_channels
        self.num_blocks = num_blocks
        self.blocks = [
            (
                keras.layers.Conv2D(
                    residual_channels, 3, padding="same", name=f"block{i}_conv3x3", dtype=self.dtype_policy
                ),
                keras.layers.Conv2D(channels, 1, name=f"block{i}_conv1x1", dtype=self.dtype_policy),
            )
            for i in range(num_blocks)
        ]

    def build(self, input_shape):
        if input_shape[-1] != self.channels:
            raise ValueError(
                f"ResidualStack expects {self.channels} input channels. Received: input_shape={input_shape}"
            )
        residual_shape = tuple(input_shape[:-1]) + (self.residual_channels,)
        for conv3x3, conv1x1 in self.blocks:
            conv3x3.build(input_shape)
            conv1x1.build(residual_shape)

    def call(self, inputs):
        x = inputs
        for conv3x3, conv1x1 in self.blocks:
            x = x + conv1x1(keras.activations.relu(conv3x3(keras.activations.relu(x))))
        return keras.activations.relu(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "residual_channels": self.residual_channels,
                "num_blocks": self.num_blocks,
            }
        )
        return config
