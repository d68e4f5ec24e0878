"""Factorized codes (Yu et al., "Vector-quantized Image Modeling with Improved VQGAN", ViT-VQGAN,
2022): the learned linear maps between a quantizer's input space and the smaller space its codes
live in, shared by `VectorQuantizer` and `ResidualVectorQuantizer`."""

import keras
import tensorflow as tf


def check_codebook_dim(codebook_dim):
    """Returns `codebook_dim` if it is a positive integer or None.

    Raises:
        ValueError: any other value.

    Example:
    >>> check_codebook_dim(8)
    8
    """
    if codebook_dim is not None and (
        isinstance(codebook_dim, bool) or not isinstance(codebook_dim, int) or codebook_dim < 1
    ):
        raise ValueError(
            f"codebook_dim must be a positive integer or None. Received: codebook_dim={codebook_dim}"
        )
    return codebook_dim


class CodeProjection:
    """A learned affine map `D -> C` into a code space and one `C -> D` back, as weights of a layer.

    The four weights (`input_projection` `(D, C)` and its bias `(C,)`, `output_projection` `(C, D)`
    and its bias `(D,)`) are created on `layer` by `add_weight`, in that order and under those
    names, so they are the layer's own, saved with it and trained by gradient with the rest of the
    model (float32 even under a mixed-precision policy). Kernels start Glorot-uniform, biases zero.

    Args:
        layer: the `keras.layers.Layer` that owns the weights, inside its `build`.
        embedding_dim: int. D, the size of the layer's input vectors.
        codebook_dim: int. C, the size of the codes.
        seed: int or None. Seed of the kernels' initialisation (the way back uses `seed + 1`).

    Example:
    >>> projection = CodeProjection(self, embedding_dim=64, codebook_dim=8, seed=0)  # doctest: +SKIP
    >>> projection.to_code_space(z).shape  # doctest: +SKIP
    TensorShape([8, 7, 7, 8])
    """

    def __init__(self, layer, embedding_dim, codebook_dim, seed):
        options = dict(trainable=True, dtype="float32", autocast=False)
        self.input_projection = layer.add_weight(
            name="input_projection",
            shape=(embedding_dim, codebook_dim),
            initializer=keras.initializers.GlorotUniform(seed=seed),
            **options,
        )
        self.input_projection_bias = layer.add_weight(
            name="input_projection_bias", shape=(codebook_dim,), initializer="zeros", **options
        )
        self.output_projection = layer.add_weight(
            name="output_projection",
            shape=(codebook_dim, embedding_dim),
            initializer=keras.initializers.GlorotUniform(seed=None if seed is None else seed + 1),
            **options,
        )
        self.output_projection_bias = layer.add_weight(
            name="output_projection_bias", shape=(embedding_dim,), initializer="zeros", **options
        )

    def to_code_space(self, vectors):
        """float32 `(..., D)` -> `(..., C)`."""
        return tf.tensordot(vectors, self.input_projection, axes=1) + self.input_projection_bias

    def from_code_space(self, codes):
        """float32 `(..., C)` -> `(..., D)`."""
        return tf.tensordot(codes, self.output_projection, axes=1) + self.output_projection_bias
