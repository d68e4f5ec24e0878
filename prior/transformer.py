"""`Transformer`: a decoder-only Transformer prior over integer code grids."""

import keras
from keras import ops

from prior.arguments import is_int
from prior.autoregressive_prior import AutoregressivePrior
from prior.settings import TRANSFORMER_DEFAULTS
from prior.transformer_block import TransformerBlock


def grid_position_embeddings(row_embedding, column_embedding, index, cols):
    """Factorised position embeddings `row[index // cols] + column[index % cols]` of raster positions.

    The positions of every Transformer over code grids (`Transformer`, `MaskGIT`): a learned
    vector per row plus one per column, `rows + cols` vectors instead of `rows * cols`.

    Args:
        row_embedding: `keras.layers.Embedding` with `rows` entries.
        column_embedding: `keras.layers.Embedding` with `cols` entries, of the same width.
        index: int tensor of any shape, raster positions `row * cols + column`.
        cols: int, the grid's column count.

    Returns:
        float tensor `index.shape + (width,)`.

    Example:

    >>> grid_position_embeddings(rows_layer, cols_layer, ops.arange(12), cols=4).shape  # doctest: +SKIP
    (12, 128)
    """
    return embedding_rows(row_embedding, index // cols) + embedding_rows(column_embedding, index % cols)


def embedding_rows(embedding, index):
    """Rows `index` of `embedding`'s table, picked by a one-hot product so the table's gradient is dense.

    `embedding(index)` gathers, and the gradient of a gather is `tf.IndexedSlices` with one slice per
    index. Keras' Adam squares those slices before summing the repeated ones, so where one batch's
    slices repeat an index (every grid of the batch adds the same position vectors, summed into one
    slice per position) its second moment depends on how the batch is split: the same global batch on
    one device and on two replicas took different steps. The one-hot product selects the same rows
    exactly (one times a value plus zeros) and its gradient is the dense sum.

    Args:
        embedding: a built `keras.layers.Embedding`.
        index: int tensor of any shape, rows of the table.

    Returns:
        tensor `index.shape + (output_dim,)` in the layer's compute dtype.

    Example:

    >>> table = keras.layers.Embedding(3, 2, embeddings_initializer="ones")
    >>> table.build((None,))
    >>> embedding_rows(table, ops.array([2, 0])).shape
    (2, 2)
    """
    table = ops.cast(embedding.embeddings, embedding.compute_dtype)
    return ops.matmul(ops.one_hot(index, embedding.input_dim, dtype=table.dtype), table)


@keras.saving.register_keras_serializable(package="prior")
class Transformer(AutoregressivePrior):
    """Decoder-only Transformer prior over `(rows, cols)` grids of codes in `[0, K)`.

    The prior of VQGAN (Esser et al. 2021, "Taming Transformers for
    High-Resolution Image Synthesis"): the grid is read in raster order as a
    sequence of `T = rows * cols` codes and a GPT-style stack of pre-norm
    `TransformerBlock`s (causal self-attention) predicts each code from every
    earlier one. Unlike the PixelCNN's receptive field, every position sees
    the whole past at every layer.

    The input at sequence position `t` is the code at `t - 1` (a learned
    start token at `t = 0`, plus a learned class embedding when
    class-conditional, so the label reaches every position through
    attention), plus factorised position embeddings `row[t // cols] +
    column[t % cols]` of the position `t` being predicted. A final layer norm
    and a Dense layer give logits over the `K` codes. The logits at `(r, c)`
    depend only on codes before `(r, c)` in raster order and on the label.

    Training and sampling work exactly as for `PixelCNN` (both derive from
    `AutoregressivePrior`). `sample(method="cached")` runs the raster loop
    of `prior.sampling` with `call_with_cache` as its step: each step
    computes the one new position, keeping every block's keys and values of
    earlier positions (as KerasHub's samplers do); `method="full"` recomputes
    the whole sequence per position.

    Defaults (`TransformerSettings`: 4 blocks, width 128, 4 heads, MLP 256,
    dropout 0.1) were picked by a short measurement on the embedded digits'
    7x7 codes (K=256): see scripts/compare_priors.py.

    Args:
        num_embeddings: int >= 2, the number `K` of distinct codes.
        grid_shape: tuple `(rows, cols)` of positive ints, the code grid shape.
        num_classes: optional int >= 1; when set the model is class-conditional.
        label_dropout: float in `[0, 1)`, the training probability of the "no label"
            class that classifier-free guidance needs (see `CodePrior`). Defaults to 0.
        num_layers: int >= 1, number of blocks. Defaults to the `TransformerSettings` value.
        hidden_dim: int >= 1, width of the embeddings and blocks, a multiple of
            `num_heads`. Defaults to the `TransformerSettings` value.
        num_heads: int >= 1, attention heads. Defaults to the `TransformerSettings` value.
        intermediate_dim: int >= 1, hidden width of the MLPs. Defaults to the
            `TransformerSettings` value.
        dropout: float in `[0, 1)`, dropout when training. Defaults to the
            `TransformerSettings` value.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Input shape:
        int `(batch, rows, cols)` codes, or a dict
        `{"codes": (batch, rows, cols), "labels": (batch,)}` when conditional.

    Output shape:
        float32 logits `(batch, rows, cols, num_embeddings)`.

    Raises:
        ValueError: if any argument is out of range.

    Example:

    >>> model = Transformer(num_embeddings=256, grid_shape=(7, 7), num_classes=10)
    >>> model.compile(optimizer="adam")
    >>> model.fit({"codes": codes, "labels": labels}, epochs=5, batch_size=64)
    >>> grids = model.sample(16, labels=3, seed=0)  # (16, 7, 7) int32
    """

    def __init__(
        self,
        num_embeddings,
        grid_shape,
        num_classes=None,
        num_layers=TRANSFORMER_DEFAULTS.num_layers,
        hidden_dim=TRANSFORMER_DEFAULTS.hidden_dim,
        num_heads=TRANSFORMER_DEFAULTS.num_heads,
        intermediate_dim=TRANSFORMER_DEFAULTS.intermediate_dim,
        dropout=TRANSFORMER_DEFAULTS.dropout,
        **kwargs,
    ):
        if not is_int(num_layers) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1. Received: num_layers={num_layers}")
        if not is_int(hidden_dim) or hidden_dim < 1:
            raise ValueError(f"hidden_dim must be an int >= 1. Received: hidden_dim={hidden_dim}")
        if not is_int(num_heads) or num_heads < 1 or hidden_dim % num_heads:
            raise ValueError(
                f"num_heads must be an int >= 1 dividing hidden_dim={hidden_dim}. "
                f"Received: num_heads={num_heads}"
            )
        if not is_int(intermediate_dim) or intermediate_dim < 1:
            raise ValueError(
                f"intermediate_dim must be an int >= 1. Received: intermediate_dim={intermediate_dim}"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a float in [0, 1). Received: dropout={dropout}")
        super().__init__(num_embeddings, grid_shape, num_classes, **kwargs)

        # Configuration
        self.num_layers = int(num_layers)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        rows, cols = self.grid_shape
        self.sequence_length = rows * cols

        # Layers: embeddings (codes, rows, columns, classes), blocks, output head
        self.code_embedding = keras.layers.Embedding(
            self.num_embeddings, self.hidden_dim, name="code_embedding"
        )
        self.row_embedding = keras.layers.Embedding(rows, self.hidden_dim, name="row_embedding")
        self.column_embedding = keras.layers.Embedding(cols, self.hidden_dim, name="column_embedding")
        self.class_embedding = (
            keras.layers.Embedding(self.label_rows, self.hidden_dim, name="class_embedding")
            if self.conditional
            else None
        )
        self.transformer_blocks = [
            TransformerBlock(
                self.hidden_dim,
                self.num_heads,
                self.intermediate_dim,
                dropout=self.dropout,
                name=f"transformer_block_{index}",
            )
            for index in range(self.num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.head = keras.layers.Dense(self.num_embeddings, name="head")
        self.build()

    def build(self, input_shape=None):
        """Creates every weight for `grid_shape`; `__init__` calls it, so callers need not.

        A second call (a caller's, or Keras' when loading a `.keras` file) does nothing, as for
        `PixelCNN.build`.

        Args:
            input_shape: ignored; the shapes follow from `grid_shape`.
        """
        if self.built:
            return
        sequence_shape = (None, self.sequence_length, self.hidden_dim)
        self.start_token = self.add_weight(
            name="start_token", shape=(self.hidden_dim,), initializer=keras.initializers.RandomNormal(0.02)
        )
        self.code_embedding.build((None, self.sequence_length))
        self.row_embedding.build((None,))
        self.column_embedding.build((None,))
        if self.class_embedding is not None:
            self.class_embedding.build((None,))
        for block in self.transformer_blocks:
            block.build(sequence_shape)
        self.final_norm.build(sequence_shape)
        self.head.build(sequence_shape)

    # ------------------------------------------------------------------ embeddings

    def _start(self, batch_size, labels):
        """The input at position 0: the start token (plus the class embedding), `(B, D)`."""
        start = ops.broadcast_to(
            ops.cast(self.start_token, self.compute_dtype), (batch_size, self.hidden_dim)
        )
        return start if labels is None else start + self.class_embedding(labels)

    def _positions(self, index):
        """Position embeddings of raster positions `index` (see `grid_position_embeddings`)."""
        return grid_position_embeddings(self.row_embedding, self.column_embedding, index, self.grid_shape[1])

    # ------------------------------------------------------------------ full pass

    def call(self, inputs, training=None):
        """Logits over the codes at every position.

        Args:
            inputs: int codes `(batch, rows, cols)`, or for a conditional
                model `{"codes": codes, "labels": int (batch,)}`.
            training: bool or None; dropout (and label dropout) is applied only when training.

        Returns:
            float32 `(batch, rows, cols, num_embeddings)` logits.

        Raises:
            ValueError: labels given to an unconditional model, or missing
                for a conditional one.
        """
        codes, labels = self._split_inputs(inputs, training)
        B, T = ops.shape(codes)[0], self.sequence_length
        rows, cols = self.grid_shape
        flat_codes = ops.reshape(codes, (B, T))
        # Inputs: the start token, then the codes shifted right by one position
        tokens = ops.concatenate(
            [self._start(B, labels)[:, None, :], self.code_embedding(flat_codes[:, :-1])], axis=1
        )  # (B, T, D)
        hidden = tokens + self._positions(ops.arange(T))[None]
        for block in self.transformer_blocks:
            hidden = block(hidden, training=training)
        logits = self.head(self.final_norm(hidden))  # (B, T, K)
        return ops.cast(ops.reshape(logits, (B, rows, cols, self.num_embeddings)), "float32")

    # ------------------------------------------------------------------ one position at a time

    def initial_cache(self, batch_size):
        """Empty key/value caches, one per block: a list of `[keys, values]`, each `(B, num_heads, T,
        head_dim)` zeros.

        Args:
            batch_size: int or int32 scalar tensor, the number of grids.

        Returns:
            The cache of the first `call_with_cache`.
        """
        return [block.initial_cache(batch_size, self.sequence_length) for block in self.transformer_blocks]

    def call_with_cache(self, previous_codes, cache, index, labels=None):
        """Logits at raster position `index` from the code at `index - 1` and the caches.

        The incremental form of `call` (KerasHub's `call_with_cache`): the one new input token
        goes through every block's `call_with_cache`, which attends over its cached keys and
        values of positions `< index` and stores those of `index`.

        Args:
            previous_codes: int32 `(batch,)`, the codes drawn at position `index - 1` (ignored
                at `index == 0`, where the start token is the input).
            cache: list of per-block caches from `initial_cache` or the previous step.
            index: int32 scalar tensor in `[0, rows * cols)`.
            labels: int32 `(batch,)` for a conditional model, else None.

        Returns:
            `(logits, cache)`: float32 `(batch, num_embeddings)`, equal (up to float rounding)
            to `call`'s logits at position `index`, and the updated caches.
        """
        batch_size = ops.shape(previous_codes)[0]
        token = ops.where(index == 0, self._start(batch_size, labels), self.code_embedding(previous_codes))
        hidden = (token + self._positions(index)[None])[:, None, :]  # (B, 1, D)
        new_cache = []
        for block, block_cache in zip(self.transformer_blocks, cache):
            hidden, block_cache = block.call_with_cache(hidden, block_cache, index)
            new_cache.append(block_cache)
        logits = self.head(self.final_norm(hidden))[:, 0, :]  # (B, K)
        return ops.cast(logits, "float32"), new_cache

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        }
