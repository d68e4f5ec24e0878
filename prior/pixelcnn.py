"""`PixelCNN`: a gated PixelCNN prior over integer code grids."""

import math
import re
import warnings

import keras
import tensorflow as tf
from keras import ops

from prior.arguments import is_int
from prior.autoregressive_prior import AutoregressivePrior
from prior.gated_block import GatedBlock
from prior.settings import PIXELCNN_DEFAULTS, PIXELCNN_MIN_LAYERS


def receptive_span(num_layers, kernel_size):
    """`n = num_layers * (kernel_size // 2)`: how far the receptive field reaches (see `PixelCNN`)."""
    return num_layers * (kernel_size // 2)


def span_to_cover(grid_shape):
    """The smallest span `n` whose receptive field holds every earlier position of the grid.

    The farthest earlier positions from the last one, `(rows - 1, cols - 1)`, are `(0, 0)` and
    `(rows - 1, 0)` (`cols - 1` columns to the left) and, from `(rows - 1, 0)`, the corner
    `(0, cols - 1)` (`rows - 1` rows up, of which the first comes free with the shift of the
    vertical stack): so `n >= max(cols - 1, rows - 2)`.

    Example:
    >>> span_to_cover((32, 32))
    31
    """
    rows, cols = grid_shape
    return max(cols - 1, rows - 2, 0)


def layers_to_cover(grid_shape, kernel_size):
    """The fewest gated blocks of `kernel_size` whose receptive field holds the whole grid.

    `num_layers=None` takes `max(PIXELCNN_MIN_LAYERS, layers_to_cover(...))`.

    Args:
        grid_shape: tuple `(rows, cols)`.
        kernel_size: odd int >= 3.

    Returns:
        int, `ceil(span_to_cover(grid_shape) / (kernel_size // 2))`.

    Example:
    >>> layers_to_cover((32, 32), 5), layers_to_cover((7, 7), 5)
    (16, 3)
    """
    return math.ceil(span_to_cover(grid_shape) / (kernel_size // 2))


@keras.saving.register_keras_serializable(package="prior")
class PixelCNN(AutoregressivePrior):
    """Gated PixelCNN prior over `(rows, cols)` grids of codes in `[0, K)`.

    The autoregressive model of van den Oord et al. (2016), "Conditional
    Image Generation with PixelCNN Decoders": codes enter through an
    `Embedding(num_embeddings, filters)`, pass `num_layers` `GatedBlock`s
    (vertical + horizontal stacks, gated activations, residual and skip
    connections, no blind spot); the last horizontal output plus the summed
    skip outputs go through `relu -> 1x1 conv -> relu -> 1x1 conv` to logits
    over the `K` codes at every position. The logits at `(r, c)` depend only
    on codes before `(r, c)` in raster order (and on the label when
    class-conditional, via a learned per-class bias added before every gate).

    Receptive field: with `n = num_layers * (kernel_size // 2)`, the logits
    at `(r, c)` see (at least) every earlier code up to `n + 1` rows above and
    `n` columns to either side, and up to `n` columns to the left on row `r`.
    The whole grid is covered when `n >= max(cols - 1, rows - 2)`. By default
    (`num_layers=None`) the depth is chosen so: `layers_to_cover` gives 5
    blocks on 7x7 grids, 8 on 16x16 and 16 on 32x32 (kernel 5). Deeper stacks
    of kernel 5 were preferred to wider kernels or dilation as the cheapest
    cover by multiply-adds per position (a block costs `2F²((k // 2 + 1) k + k)
    + 6F²`: 16 blocks of kernel 5 = 736F², 8 of kernel 9 = 912F²) that needs no
    change to `GatedBlock` or the cached sampler; a `num_layers` too small for
    the grid gets a `UserWarning` naming the receptive field.

    Training: `model.compile(optimizer="adam")` then `model.fit(codes)` (or a
    `tf.data.Dataset` of codes or of `{"codes", "labels"}` dicts): the
    targets are the input codes, the loss is the mean sparse categorical
    cross-entropy (nats per code) and a `bits_per_code` metric (the same
    negative log-likelihood divided by `ln 2`) is logged.

    Args:
        num_embeddings: int >= 2, the number `K` of distinct codes.
        grid_shape: tuple `(rows, cols)` of positive ints, the code grid shape.
        num_classes: optional int >= 1; when set the model is class-conditional.
        label_dropout: float in `[0, 1)`, the training probability of the "no label"
            class that classifier-free guidance needs (see `CodePrior`). Defaults to 0.
        num_layers: int >= 1 or None, number of gated blocks. None (the
            `PixelCNNSettings` default) chooses enough blocks to see the whole grid
            (`layers_to_cover`), and at least `PIXELCNN_MIN_LAYERS` (5).
        filters: int >= 1, channels of the embedding and of both stacks.
            Defaults to the `PixelCNNSettings` value.
        kernel_size: odd int >= 3, width of the stacks' kernels. Defaults to
            the `PixelCNNSettings` value.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Input shape:
        int `(batch, rows, cols)` codes, or a dict
        `{"codes": (batch, rows, cols), "labels": (batch,)}` when conditional.

    Output shape:
        float32 logits `(batch, rows, cols, num_embeddings)`.

    Raises:
        ValueError: if any argument is out of range.

    Example:

    >>> model = PixelCNN(num_embeddings=128, grid_shape=(7, 7))
    >>> model.compile(optimizer="adam")
    >>> model.fit(codes, epochs=5, batch_size=64)  # codes: int32 (N, 7, 7)
    >>> grids = model.sample(16, temperature=1.0, seed=0)
    >>> nats = model.log_prob(grids)
    """

    def __init__(
        self,
        num_embeddings,
        grid_shape,
        num_classes=None,
        num_layers=PIXELCNN_DEFAULTS.num_layers,
        filters=PIXELCNN_DEFAULTS.filters,
        kernel_size=PIXELCNN_DEFAULTS.kernel_size,
        **kwargs,
    ):
        if num_layers is not None and (not is_int(num_layers) or num_layers < 1):
            raise ValueError(f"num_layers must be None or an int >= 1. Received: num_layers={num_layers}")
        if not is_int(filters) or filters < 1:
            raise ValueError(f"filters must be an int >= 1. Received: filters={filters}")
        if not is_int(kernel_size) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd int >= 3. Received: kernel_size={kernel_size}")
        super().__init__(num_embeddings, grid_shape, num_classes, **kwargs)

        # Configuration; a chosen depth that leaves earlier positions unseen is allowed but flagged
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        if num_layers is None:
            num_layers = max(PIXELCNN_MIN_LAYERS, layers_to_cover(self.grid_shape, self.kernel_size))
        self.num_layers = int(num_layers)
        span = receptive_span(self.num_layers, self.kernel_size)
        if span < span_to_cover(self.grid_shape):
            rows, cols = self.grid_shape
            warnings.warn(
                f"PixelCNN(num_layers={self.num_layers}, kernel_size={self.kernel_size}) sees only "
                f"{span + 1} rows above and {span} columns either side of each position, not the whole "
                f"{rows}x{cols} grid; use num_layers >= {layers_to_cover(self.grid_shape, self.kernel_size)} "
                "or leave it None",
                UserWarning,
                stacklevel=2,
            )

        # Layers: code embedding, gated blocks, output head
        self.code_embedding = keras.layers.Embedding(self.num_embeddings, self.filters, name="code_embedding")
        self.gated_blocks = [
            GatedBlock(
                self.filters,
                self.kernel_size,
                first_block=index == 0,
                num_classes=self.label_rows,
                name=f"gated_block_{index}",
            )
            for index in range(self.num_layers)
        ]
        self.head_hidden = keras.layers.Conv2D(self.filters, 1, activation="relu", name="head_hidden")
        self.head_logits = keras.layers.Conv2D(self.num_embeddings, 1, name="head_logits")

        self.build()

    def build(self, input_shape=None):
        """Creates every weight for `grid_shape`; `__init__` calls it, so callers need not.

        Unlike `VQVAE.build`, a second call (a caller's `model.build()`, or
        Keras' `build_from_config` when loading a `.keras` file) returns
        without doing anything: Keras forbids new weights on a built layer.

        Args:
            input_shape: ignored; the shapes follow from `grid_shape`.
        """
        if self.built:
            return
        rows, cols = self.grid_shape
        feature_shape = (None, rows, cols, self.filters)
        self.code_embedding.build((None, rows, cols))
        for block in self.gated_blocks:
            block.build(feature_shape)
        self.head_hidden.build(feature_shape)
        self.head_logits.build(feature_shape)

    def call(self, inputs, training=None):
        """Logits over the codes at every position.

        Args:
            inputs: int codes `(batch, rows, cols)`, or for a conditional
                model `{"codes": codes, "labels": int (batch,)}`.
            training: bool or None; label dropout is applied only when training.

        Returns:
            float32 `(batch, rows, cols, num_embeddings)` logits.

        Raises:
            ValueError: labels given to an unconditional model, or missing
                for a conditional one.
        """
        codes, labels = self._split_inputs(inputs, training)
        features = self.code_embedding(codes)
        vertical = horizontal = features
        skip_sum = 0.0
        for block in self.gated_blocks:
            vertical, horizontal, skip = block(vertical, horizontal, labels)
            skip_sum = skip_sum + skip
        return self.output_logits(horizontal + skip_sum)

    def output_logits(self, features):
        """Output head: `relu -> 1x1 conv -> relu -> 1x1 conv` to logits.

        Args:
            features: float `(batch, rows, cols, filters)`, the last block's
                horizontal output plus the sum of every block's skip output.

        Returns:
            float32 `(batch, rows, cols, num_embeddings)` logits.
        """
        logits = self.head_logits(self.head_hidden(ops.relu(features)))
        return ops.cast(logits, "float32")

    # ------------------------------------------------------------------ one position at a time

    def initial_cache(self, batch_size):
        """The state of `call_with_cache` before the first position.

        Args:
            batch_size: int or int32 scalar tensor, the number of grids.

        Returns:
            A dict of per-block lists: the `"contribution"` rows of row 0 (from
            `GatedBlock.initial_vertical_cache`) and the `"horizontal"` histories from
            `initial_horizontal_history`.
        """
        cols = self.grid_shape[1]
        return {
            "contribution": [
                block.initial_vertical_cache(batch_size, cols)[1] for block in self.gated_blocks
            ],
            "horizontal": [block.initial_horizontal_history(batch_size) for block in self.gated_blocks],
        }

    def initial_row_cache(self, batch_size):
        """The state of `complete_row` before the first row: each block's vertical cache.

        Args:
            batch_size: int or int32 scalar tensor, the number of grids.

        Returns:
            A list of the blocks' caches from `GatedBlock.initial_vertical_cache`.
        """
        cols = self.grid_shape[1]
        return [block.initial_vertical_cache(batch_size, cols)[0] for block in self.gated_blocks]

    def call_with_cache(self, previous_codes, cache, index, labels=None):
        """Logits at raster position `index` from the code at `index - 1`: the horizontal stack's step.

        The incremental form of `call`, in the spirit of Ramachandran et al. (2017), "Fast
        Generation for Convolutional Autoregressive Models": every block's `horizontal_step` runs
        on column `c` of the current row with the vertical contribution of column `c` that
        `complete_row` cached; the first block consumes the embedded code of `c - 1` (zeros at
        `c = 0`). The last horizontal output plus the summed skip outputs go through
        `output_logits`. Every layer is the one the full pass uses, so the logits equal `call`'s
        at `index` up to float rounding.

        Args:
            previous_codes: int32 `(batch,)`, the codes drawn at `index - 1` (ignored at column 0).
            cache: the dict from `initial_cache`, the previous call or `complete_row`.
            index: int32 scalar tensor in `[0, rows * cols)`.
            labels: int32 `(batch,)` for a conditional model, else None.

        Returns:
            `(logits, cache)`: float32 `(batch, num_embeddings)` and the cache with the new
            horizontal histories.
        """
        column = index % self.grid_shape[1]
        embedded = self.code_embedding(previous_codes)[:, None, None, :]  # (B, 1, 1, F)
        block_input = tf.where(tf.equal(column, 0), tf.zeros_like(embedded), embedded)
        skip_sum, horizontal = 0.0, []
        for block, history, contribution_row in zip(
            self.gated_blocks, cache["horizontal"], cache["contribution"]
        ):
            history, block_input, skip = block.horizontal_step(
                history, block_input, contribution_row[:, :, column, None], labels
            )
            horizontal.append(history)
            skip_sum = skip_sum + skip
        logits = tf.reshape(self.output_logits(block_input + skip_sum), [tf.shape(previous_codes)[0], -1])
        return logits, {**cache, "horizontal": horizontal}

    def complete_row(self, row_codes, row_cache, labels=None):
        """Pushes a completed row through the vertical stack: the step between rows.

        The row's codes are embedded and go through every block's `vertical_step`, which returns
        the block's vertical contribution to every column of the next row (the full pass's
        down-shift). Kept apart from `call_with_cache`'s cache, the vertical caches are not
        carried through every position of the raster loop.

        Args:
            row_codes: int32 `(batch, cols)`, the codes of the row just drawn.
            row_cache: the list from `initial_row_cache` or the previous `complete_row`.
            labels: int32 `(batch,)` for a conditional model, else None.

        Returns:
            `(row_cache, cache)`: the vertical caches for the next row's `complete_row`, and the
            cache of the next row's first `call_with_cache` (its contribution rows, and the
            horizontal histories started again).
        """
        input_row = self.code_embedding(row_codes)[:, None]  # (B, 1, cols, F)
        vertical, contribution = [], []
        for block, block_cache in zip(self.gated_blocks, row_cache):
            block_cache, contribution_row, input_row = block.vertical_step(block_cache, input_row, labels)
            vertical.append(block_cache)
            contribution.append(contribution_row)
        batch_size = tf.shape(row_codes)[0]
        horizontal = [block.initial_horizontal_history(batch_size) for block in self.gated_blocks]
        return vertical, {"contribution": contribution, "horizontal": horizontal}

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
        }

    @classmethod
    def from_config(cls, config):
        """Rebuilds a saved PixelCNN without repeating the depth warning of its construction.

        The depth was chosen (and warned about) when the model was made; loading it again (`vqgen
        sample`, `vqgen export`, ...) has nothing new to say.

        Args:
            config: dict from `get_config`.

        Returns:
            A new `PixelCNN`.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=re.escape("PixelCNN(num_layers="), category=UserWarning)
            return super().from_config(config)
