"""`TransformerBlock`: a pre-norm decoder block with causal self-attention and a key/value cache."""

import math

import keras
import numpy as np
from keras import ops

from prior.arguments import is_int
from tf_distribute_helpers import ReplicaDropout


@keras.saving.register_keras_serializable(package="prior")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm Transformer block: multi-head self-attention (causal or not), then an MLP.

    The block of GPT-2 (Radford et al. 2019) as used over VQ codes by VQGAN
    (Esser et al. 2021, "Taming Transformers for High-Resolution Image
    Synthesis"): `x + attention(norm(x))`, then `x + mlp(norm(x))` with a GELU
    MLP; position `t` attends to positions `<= t` only. With `causal=False`
    every position attends to every position: the bidirectional encoder block
    of BERT (Devlin et al. 2019) that MaskGIT (Chang et al. 2022) uses over
    codes (`prior.MaskGIT`); such a block has no incremental step.

    It owns its incremental step: `call_with_cache` takes the one new
    position, writes its key and value into a per-block cache `[keys,
    values]`, each `(batch, num_heads, sequence_length, head_dim)`, and
    attends over the cached positions `<= index`,
    the way KerasHub's `CachedMultiHeadAttention` does. The attention is
    written here rather than taken from `keras.layers.MultiHeadAttention`
    because the cache needs the per-head query, key and value projections of
    a single position separately: `MultiHeadAttention` offers those only
    through private attributes (`_query_dense`, `_key_dense`, ...) whose
    names and shapes are not public API. Both the full pass and the step use
    the same Dense layers and the same score, mask and softmax code, so they
    compute the same numbers up to float rounding.

    Args:
        hidden_dim: int >= 1, width of the input and output (the residual
            stream). A multiple of `num_heads`.
        num_heads: int >= 1, attention heads, each `hidden_dim // num_heads` wide.
        intermediate_dim: int >= 1, hidden width of the MLP.
        dropout: float in `[0, 1)`, dropout on the attention weights and on
            both residual branches when training. Defaults to `0.0`.
        causal: bool, whether position `t` sees only positions `<= t` (a
            decoder block) rather than the whole sequence. Defaults to `True`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, ...).

    Input shape:
        float `(batch, sequence_length, hidden_dim)`.

    Output shape:
        float `(batch, sequence_length, hidden_dim)`.

    Raises:
        ValueError: if an argument is out of range, or `build` receives a
            depth other than `hidden_dim`; `call_with_cache` on a block with
            `causal=False`.

    Example:

    >>> block = TransformerBlock(hidden_dim=32, num_heads=4, intermediate_dim=64)
    >>> block(keras.random.normal((2, 10, 32))).shape
    (2, 10, 32)
    """

    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout=0.0, causal=True, **kwargs):
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
        if not isinstance(causal, bool):
            raise ValueError(f"causal must be a bool. Received: causal={causal!r}")
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.head_dim = self.hidden_dim // self.num_heads
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.causal = causal

        # Attention: one Dense for the queries, keys and values of every head, one for the output
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, name="attention_norm", dtype=self.dtype_policy
        )
        self.query_key_value = keras.layers.Dense(
            3 * self.hidden_dim, name="query_key_value", dtype=self.dtype_policy
        )
        # 1 for the query and value thirds of its bias, 0 for the keys' (see `_queries_keys_values`)
        self._bias_mask = np.repeat(np.array([1.0, 0.0, 1.0], "float32"), self.hidden_dim)
        self.attention_output = keras.layers.Dense(
            self.hidden_dim, name="attention_output", dtype=self.dtype_policy
        )
        # MLP
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, name="mlp_norm", dtype=self.dtype_policy
        )
        self.mlp_hidden = keras.layers.Dense(
            self.intermediate_dim, activation="gelu", name="mlp_hidden", dtype=self.dtype_policy
        )
        self.mlp_output = keras.layers.Dense(self.hidden_dim, name="mlp_output", dtype=self.dtype_policy)
        # Dropout (no weights; one layer, separate calls), drawn independently on each replica
        self.dropout_layer = ReplicaDropout(self.dropout, name="dropout", dtype=self.dtype_policy)

    def build(self, input_shape):
        if input_shape[-1] != self.hidden_dim:
            raise ValueError(
                f"TransformerBlock expects inputs of depth hidden_dim={self.hidden_dim}. "
                f"Received: input_shape={input_shape}"
            )
        self.attention_norm.build(input_shape)
        self.query_key_value.build(input_shape)
        self.attention_output.build(input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_hidden.build(input_shape)
        self.mlp_output.build((*input_shape[:-1], self.intermediate_dim))

    def _heads(self, tensor):
        """`(B, T, hidden_dim)` -> `(B, num_heads, T, head_dim)`, the layout of the cache.

        Heads before positions, so attending over a cache is a batched matrix product that reads
        the cache in place (with positions before heads, every step transposed the whole cache).
        """
        heads = ops.reshape(tensor, (ops.shape(tensor)[0], -1, self.num_heads, self.head_dim))
        return ops.transpose(heads, (0, 2, 1, 3))

    def _queries_keys_values(self, inputs):
        """Per-head queries, keys and values of `inputs`, each `(B, num_heads, T, head_dim)`.

        The keys take no bias: a key bias `b` adds the same `q . b` to every score of a query, so
        the softmax ignores it and its gradient is zero in exact arithmetic. Adam divides the
        rounding of that zero by its own tiny second moment, and the steps it takes differ between
        one device and two replicas (3e-5 apart after four steps of the multi-worker test), so the
        key third of `query_key_value`'s bias is multiplied by an exact zero: its gradient is
        exactly 0 and Adam leaves it where it is.
        The variable keeps its shape, so models saved with a key bias load and compute the same
        attention (up to float rounding).
        """
        normed = self.attention_norm(inputs)
        dense = self.query_key_value
        bias = ops.cast(dense.bias, normed.dtype) * ops.cast(self._bias_mask, normed.dtype)
        projected = ops.matmul(normed, ops.cast(dense.kernel, normed.dtype)) + bias  # (B, T, 3 * D)
        queries, keys, values = ops.split(projected, 3, axis=-1)
        return self._heads(queries), self._heads(keys), self._heads(values)

    def _attend(self, inputs, queries, keys, values, visible, training):
        """Attention over `keys`/`values` where `visible` `(T_query, T_key)` allows, then the MLP.

        Masked scores become `-inf`, so masked positions get a weight of exactly 0 and whatever
        a cache holds there (zeros, before it is filled) does not matter. `visible=None` (a
        bidirectional block) masks nothing and skips the pass over the scores.
        """
        scores = ops.einsum("bhqd,bhkd->bhqk", queries, keys) / math.sqrt(self.head_dim)
        if visible is not None:
            scores = ops.where(visible[None, None], scores, ops.cast(float("-inf"), scores.dtype))
        weights = self.dropout_layer(ops.softmax(ops.cast(scores, "float32"), axis=-1), training=training)
        attended = ops.einsum("bhqk,bhkd->bhqd", ops.cast(weights, values.dtype), values)
        attended = ops.transpose(attended, (0, 2, 1, 3))  # (B, T, H, Dh)
        attended = ops.reshape(attended, (ops.shape(attended)[0], -1, self.hidden_dim))  # (B, T, D)
        hidden = inputs + self.dropout_layer(self.attention_output(attended), training=training)
        mlp = self.mlp_output(self.mlp_hidden(self.mlp_norm(hidden)))
        return hidden + self.dropout_layer(mlp, training=training)

    def call(self, inputs, training=None):
        """The block on a whole sequence, each position attending to itself and earlier ones
        (to every position when `causal=False`).

        Args:
            inputs: float `(batch, sequence_length, hidden_dim)`.
            training: bool or None; dropout is applied only when training.

        Returns:
            float `(batch, sequence_length, hidden_dim)`.
        """
        queries, keys, values = self._queries_keys_values(inputs)
        visible = None  # bidirectional: every position sees every position
        if self.causal:
            positions = ops.arange(ops.shape(inputs)[1])
            visible = positions[None, :] <= positions[:, None]  # (T, T) lower triangle
        return self._attend(inputs, queries, keys, values, visible, training)

    def initial_cache(self, batch_size, sequence_length):
        """An empty key/value cache: `[keys, values]`, each zeros `(batch_size, num_heads,
        sequence_length, head_dim)`."""
        shape = (batch_size, self.num_heads, sequence_length, self.head_dim)
        return [ops.zeros(shape, dtype=self.compute_dtype), ops.zeros(shape, dtype=self.compute_dtype)]

    def call_with_cache(self, inputs, cache, index):
        """The block on the one position `index`, given the cache of positions `< index`.

        Args:
            inputs: float `(batch, 1, hidden_dim)`, the block's input at position `index`.
            cache: `[keys, values]`, each float `(batch, num_heads, sequence_length, head_dim)`,
                from `initial_cache` or the previous step; entries `< index` are filled.
            index: int scalar tensor, the position being computed.

        Returns:
            `(outputs, cache)`: float `(batch, 1, hidden_dim)`, equal (up to float rounding) to
            `call` on the whole sequence at position `index`, and the cache with position
            `index`'s key and value written in.

        Raises:
            ValueError: for a bidirectional block (`causal=False`), whose positions all change
                when any input does.
        """
        if not self.causal:
            raise ValueError(f"{self.name} is bidirectional (causal=False); it has no incremental step")
        queries, keys, values = self._queries_keys_values(inputs)  # each (B, H, 1, Dh)
        # Keys and values in two tensors, not stacked in one: taking a stacked cache apart costs a
        # copy of it at every step, in XLA and more so in LiteRT, which runs `cache[:, 0]` as an
        # element-wise strided slice (timed by scripts/bench_samplers.py and benchmark_export.py)
        cache = [
            ops.slice_update(part, (0, 0, index, 0), ops.cast(new, part.dtype))
            for part, new in zip(cache, (keys, values))
        ]
        visible = (ops.arange(ops.shape(cache[0])[2]) <= index)[None, :]  # (1, T)
        outputs = self._attend(inputs, queries, cache[0], cache[1], visible, training=False)
        return outputs, cache

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "causal": self.causal,
        }
