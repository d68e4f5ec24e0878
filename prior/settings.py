"""`PixelCNNSettings`: the one home of the prior's architecture defaults.

Free of TensorFlow and Keras, so a command line can build its options (names, defaults and
`help` texts from each field's metadata) without loading a model.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class PixelCNNSettings:
    """Architecture hyperparameters of `prior.PixelCNN` with their defaults.

    `PixelCNN.__init__` takes its defaults from `PIXELCNN_DEFAULTS`, so each value is written
    here once. Every field carries a `help` text in `dataclasses.field(metadata=...)`.

    Example:

    >>> settings = PixelCNNSettings(num_layers=8)
    >>> model = PixelCNN(num_embeddings=128, grid_shape=(7, 7), **dataclasses.asdict(settings))
    >>> [(field.name, field.metadata["help"]) for field in dataclasses.fields(PixelCNNSettings)]
    """

    # Depth: gated blocks, each widening the receptive field by kernel_size // 2 per side.
    num_layers: int = dataclasses.field(default=5, metadata={"help": "number of gated PixelCNN blocks"})
    # Width: channels of the code embedding and of both stacks (the gates use twice as many).
    filters: int = dataclasses.field(
        default=64, metadata={"help": "channels of the code embedding and of both stacks"}
    )
    # Odd kernel width k of both stacks; the vertical kernel is (k // 2 + 1, k).
    kernel_size: int = dataclasses.field(
        default=5, metadata={"help": "odd kernel width (>= 3) of the vertical and horizontal stacks"}
    )


PIXELCNN_DEFAULTS = PixelCNNSettings()
