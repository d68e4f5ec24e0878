"""What every quantizer of a VQ-VAE provides: the quantizer protocol and the pieces its members share.

A quantizer is a Keras layer that maps encoder outputs `[B, h, w, D]` to quantized vectors of the same
shape and to integer codes. `VQVAE` uses nothing else, so any layer with these members can be its
quantizer (`VQVAE(quantizer=layer)`):

- `num_embeddings`: int, the number of codes K of one code (each code is in `[0, K)`).
- `embedding_dim`: int, the depth D of the vectors it quantizes (the encoder's output depth).
- `code_shape`: tuple, the shape of one position's codes: `()` for one code, `(d,)` for d codes
  (residual VQ). A quantizer with `(d,)` also decodes any prefix `[..., k]`, `1 <= k <= d`.
- `statistic_names`: tuple of str, the keys of `Quantization.statistics`, which `fit` logs.
- `quantize_with_stats(inputs, training=False)`: a `Quantization` (quantized vectors, codes, loss,
  statistics); with `training=True` it also updates whatever the quantizer learns outside gradients.
  (Not `quantize`: Keras layers already have a `quantize(mode)`, for int8 and float8 weights.)
- `indices(inputs)`: int32 codes `[..., *code_shape]`; `lookup(codes)`: their vectors `[..., D]`.
- `call(inputs, training=None)`: the quantized vectors.

`VectorQuantizer`, `FiniteScalarQuantizer` and `ResidualVectorQuantizer` implement it; `check_quantizer`
tells a user which member their own layer lacks.
"""

import collections

import keras
import tensorflow as tf

Quantization = collections.namedtuple("Quantization", ["quantized", "indices", "loss", "statistics"])
Quantization.__doc__ = """What one pass through a quantizer produced.

Fields:
    quantized: the straight-through quantized tensor, same shape and dtype as the input.
    indices: int32 tensor `[..., *code_shape]` of the code at every position.
    loss: float32 scalar, the quantizer's own loss (zero for a quantizer without one).
    statistics: dict of str to float32 scalar, what the pass measured (keys `statistic_names`), e.g.
        `perplexity`, exp(-sum p log p) of the batch's code histogram, and `codes_used`, the fraction
        of the K codes the batch used.
"""

# The members `VQVAE` uses (see the module docstring).
PROTOCOL = (
    "num_embeddings",
    "embedding_dim",
    "code_shape",
    "statistic_names",
    "quantize_with_stats",
    "indices",
    "lookup",
)


def check_quantizer(quantizer):
    """Refuses an object that cannot be a VQ-VAE's quantizer.

    Args:
        quantizer: the object to check.

    Returns:
        `quantizer`, unchanged.

    Raises:
        ValueError: it is not a Keras layer, or it lacks a member of the protocol.

    Example:
    >>> check_quantizer(VectorQuantizer(num_embeddings=8, embedding_dim=4))  # doctest: +SKIP
    """
    if not isinstance(quantizer, keras.layers.Layer):
        raise ValueError(
            "quantizer must be 'vq', 'fsq', 'rvq' or a Keras layer with the quantizer protocol "
            f"(vqgen.models.quantization). Received: quantizer={quantizer!r}"
        )
    missing = [name for name in PROTOCOL if not hasattr(quantizer, name)]
    if missing:
        raise ValueError(
            f"The quantizer {type(quantizer).__name__} lacks {', '.join(missing)}; implement the quantizer "
            "protocol (vqgen.models.quantization)."
        )
    return quantizer


def code_usage(counts):
    """The perplexity and the fraction of codes used of a histogram of codes.

    Args:
        counts: float32 tensor `[K]`, how often each code occurred.

    Returns:
        dict with `perplexity`, exp(-sum p log p) (from 1 to K), and `codes_used`, the fraction of
        the K codes with a nonzero count: float32 scalars.

    Example:
    >>> code_usage(tf.constant([2.0, 2.0, 0.0, 0.0]))["perplexity"]  # doctest: +SKIP
    2.0
    """
    probabilities = counts / tf.maximum(tf.reduce_sum(counts), 1.0)
    return {
        "perplexity": tf.exp(-tf.reduce_sum(probabilities * tf.math.log(probabilities + 1e-10))),
        "codes_used": tf.reduce_mean(tf.cast(counts > 0, "float32")),
    }


def checked_codes(codes, num_embeddings):
    """Returns `codes` as int32, refusing non-integers and codes outside `[0, num_embeddings)`.

    Shared by every quantizer's `lookup`.

    Args:
        codes: integer tensor-like of any shape.
        num_embeddings: int. The number of codes.

    Returns:
        int32 tensor of the same shape (in a graph, guarded by assertions).

    Raises:
        ValueError: non-integer codes, or (eagerly) a code out of range; in a graph a code out of
            range fails with `tf.errors.InvalidArgumentError`.

    Example:
    >>> checked_codes([[0, 3]], num_embeddings=4)  # doctest: +SKIP
    """
    codes = tf.convert_to_tensor(codes)
    if not codes.dtype.is_integer:
        raise ValueError(f"codes must be integers. Received: dtype={codes.dtype.name}")
    codes = tf.cast(codes, "int32")
    message = f"codes must be in [0, {num_embeddings}): use codes produced by this model"
    if tf.executing_eagerly():
        if tf.size(codes) > 0 and (tf.reduce_min(codes) < 0 or tf.reduce_max(codes) >= num_embeddings):
            low, high = int(tf.reduce_min(codes)), int(tf.reduce_max(codes))
            raise ValueError(f"{message}. Received codes in [{low}, {high}]")
        return codes
    checks = [
        tf.debugging.assert_non_negative(codes, message=message),
        tf.debugging.assert_less(codes, num_embeddings, message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(codes)
