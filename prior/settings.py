"""`PixelCNNSettings`, `TransformerSettings`, `MaskGITSettings`: the one home of the priors' defaults.

Free of TensorFlow and Keras, so a command line can build its options (names, defaults and
`help` texts from each field's metadata) without loading a model. Which settings belong to which
prior, by name, is in `prior.registry`.
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

    # Depth: gated blocks, each widening the receptive field by kernel_size // 2 per side. None:
    # the fewest blocks whose receptive field holds every earlier position of the grid, and at
    # least PIXELCNN_MIN_LAYERS (16 blocks of kernel 5 on a 32x32 grid; see prior/pixelcnn.py).
    num_layers: int | None = dataclasses.field(
        default=None,
        metadata={
            "help": "number of gated PixelCNN blocks; None: enough to see the whole code grid (at least 5)"
        },
    )
    # Width: channels of the code embedding and of both stacks (the gates use twice as many).
    filters: int = dataclasses.field(
        default=64, metadata={"help": "channels of the code embedding and of both stacks"}
    )
    # Odd kernel width k of both stacks; the vertical kernel is (k // 2 + 1, k).
    kernel_size: int = dataclasses.field(
        default=5, metadata={"help": "odd kernel width (>= 3) of the vertical and horizontal stacks"}
    )


PIXELCNN_DEFAULTS = PixelCNNSettings()
# The fewest blocks `num_layers=None` chooses: the depth measured on 7x7 digit codes
# (scripts/compare_priors.py).
PIXELCNN_MIN_LAYERS = 5


@dataclasses.dataclass(frozen=True)
class TransformerSettings:
    """Architecture hyperparameters of `prior.Transformer` with their defaults.

    `Transformer.__init__` takes its defaults from `TRANSFORMER_DEFAULTS`. Small widths for
    small grids on a CPU, chosen by a short measurement on the embedded digits' 7x7 codes
    (see `prior/transformer.py` and scripts/compare_priors.py).

    Example:

    >>> settings = TransformerSettings(num_layers=2)
    >>> model = Transformer(num_embeddings=128, grid_shape=(7, 7), **dataclasses.asdict(settings))
    """

    # Depth: pre-norm blocks of causal self-attention and an MLP.
    num_layers: int = dataclasses.field(default=4, metadata={"help": "number of Transformer blocks"})
    # Width of the token embeddings, attention and residual stream; a multiple of num_heads.
    hidden_dim: int = dataclasses.field(
        default=128, metadata={"help": "width of the embeddings and of every block (a multiple of num_heads)"}
    )
    # Attention heads per block, each of width hidden_dim // num_heads.
    num_heads: int = dataclasses.field(default=4, metadata={"help": "attention heads per block"})
    # Hidden width of each block's MLP (GELU).
    intermediate_dim: int = dataclasses.field(
        default=256, metadata={"help": "hidden width of each block's MLP"}
    )
    # Dropout on the attention weights and on each residual branch, during training only.
    dropout: float = dataclasses.field(
        default=0.1, metadata={"help": "dropout rate in [0, 1) on attention weights and residual branches"}
    )


TRANSFORMER_DEFAULTS = TransformerSettings()


@dataclasses.dataclass(frozen=True)
class MaskGITSettings(TransformerSettings):
    """Architecture hyperparameters of `prior.MaskGIT` with their defaults.

    The same fields as `TransformerSettings` (a stack of the same `TransformerBlock`s, here
    bidirectional), with the same small CPU-friendly defaults: 4 blocks, width 128, 4 heads,
    MLP 256, dropout 0.1; `MaskGIT.__init__` reads them from `MASKGIT_DEFAULTS`. The sampling
    default, `MASKGIT_STEPS`, is below.

    Example:

    >>> settings = MaskGITSettings(num_layers=2)
    >>> model = MaskGIT(num_embeddings=128, grid_shape=(7, 7), **dataclasses.asdict(settings))
    """


MASKGIT_DEFAULTS = MaskGITSettings()
# MaskGIT's decoding steps when sampling (`MaskGIT.sample`, `vqgen sample --steps`): the paper
# decodes 16x16 grids in 8 to 12 steps; 8 keeps sampling cheap on a CPU.
MASKGIT_STEPS = 8
