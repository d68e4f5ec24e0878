"""Every public layer through Keras' own layer harness (`keras.src.testing.TestCase.run_layer_test`).

The harness is what a user meets who puts our layers into a model of their own: a config round trip,
the weight counts after `build`, a symbolic and an eager call, one `fit` step, and a call under the
`mixed_float16` policy whose outputs must have the dtype `compute_output_spec` promises while the
weights stay float32. The weight counts below are counted from each layer's architecture by hand.
"""

import keras
import numpy as np
import pytest
from keras.src import testing

from prior import GatedBlock, MaskedConv2D, TransformerBlock
from vqgen import (
    Decoder,
    Encoder,
    FiniteScalarQuantizer,
    ResidualStack,
    ResidualVectorQuantizer,
    VectorQuantizer,
)

# (name, class, constructor arguments, input shape, output shape, trainable weights). The quantizers keep
# the shape of their input; their weight counts are left to the harness (their internals are being
# reworked). Otherwise: a kernel and a bias per convolution or Dense, a gamma and a beta per
# LayerNormalization (Encoder: one strided, one 3x3, two per residual block and a 1x1 convolution).
LAYER_CASES = [
    (
        "vector_quantizer_gradient",
        VectorQuantizer,
        dict(num_embeddings=8, embedding_dim=4, ema=False, seed=1),
        (2, 3, 3, 4),
        (2, 3, 3, 4),
        None,
    ),
    (
        "vector_quantizer_ema",
        VectorQuantizer,
        dict(num_embeddings=8, embedding_dim=4, ema=True, seed=1),
        (2, 3, 3, 4),
        (2, 3, 3, 4),
        None,
    ),
    (
        "vector_quantizer_factorized_l2",
        VectorQuantizer,
        dict(num_embeddings=8, embedding_dim=4, ema=True, codebook_dim=2, l2_normalize=True, seed=1),
        (2, 3, 3, 4),
        (2, 3, 3, 4),
        4,  # the input and output projections' kernels and biases (the EMA codebook is not trainable)
    ),
    (
        "finite_scalar_quantizer",
        FiniteScalarQuantizer,
        dict(levels=(5, 3, 3)),
        (2, 3, 3, 3),
        (2, 3, 3, 3),
        None,
    ),
    (
        "residual_vector_quantizer",
        ResidualVectorQuantizer,
        dict(num_quantizers=2, num_embeddings=8, embedding_dim=4, seed=1),
        (2, 3, 3, 4),
        (2, 3, 3, 4),
        None,
    ),
    (
        "residual_stack",
        ResidualStack,
        dict(channels=4, residual_channels=2, num_blocks=2),
        (2, 4, 4, 4),
        (2, 4, 4, 4),
        8,
    ),
    (
        "encoder",
        Encoder,
        dict(embedding_dim=4, downsample=2, hidden_channels=4, residual_channels=2, num_residual_blocks=1),
        (2, 8, 8, 1),
        (2, 4, 4, 4),
        10,
    ),
    (
        "decoder",
        Decoder,
        dict(channels=3, downsample=2, hidden_channels=4, residual_channels=2, num_residual_blocks=1),
        (2, 4, 4, 4),
        (2, 8, 8, 3),
        8,
    ),
    (
        "masked_conv2d_a",
        MaskedConv2D,
        dict(filters=3, kernel_size=3, mask_type="A", padding="same"),
        (2, 5, 5, 2),
        (2, 5, 5, 3),
        2,
    ),
    (
        "masked_conv2d_b",
        MaskedConv2D,
        dict(filters=3, kernel_size=3, mask_type="B"),
        (2, 5, 5, 2),
        (2, 3, 3, 3),
        2,
    ),
    (
        "transformer_block_causal",
        TransformerBlock,
        dict(hidden_dim=8, num_heads=2, intermediate_dim=16, dropout=0.1),
        (2, 5, 8),
        (2, 5, 8),
        12,
    ),
    (
        "transformer_block_bidirectional",
        TransformerBlock,
        dict(hidden_dim=8, num_heads=2, intermediate_dim=16, causal=False),
        (2, 5, 8),
        (2, 5, 8),
        12,
    ),
]


class LayerHarnessTest(testing.TestCase):
    """One `run_layer_test` per public layer, with the training and mixed-precision checks on."""


@pytest.mark.parametrize("case", LAYER_CASES, ids=[case[0] for case in LAYER_CASES])
def test_layer_passes_the_keras_layer_harness(case):
    _, layer_class, arguments, input_shape, output_shape, trainable_weights = case
    LayerHarnessTest().run_layer_test(
        layer_class,
        init_kwargs=arguments,
        input_shape=input_shape,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=trainable_weights,
        run_training_check=True,
        run_mixed_precision_check=True,
    )


@pytest.mark.parametrize("num_classes", [None, 3], ids=["unconditional", "conditional"])
@pytest.mark.parametrize("first_block", [True, False], ids=["first", "later"])
def test_gated_block_passes_the_keras_layer_harness(first_block, num_classes):
    shapes = {"vertical_shape": (2, 4, 4, 3), "horizontal_shape": (2, 4, 4, 3)}
    dtypes = {"vertical_shape": "float32", "horizontal_shape": "float32"}
    if num_classes is not None:
        shapes["labels_shape"], dtypes["labels_shape"] = (2,), "int32"
    arguments = dict(filters=3, kernel_size=3, first_block=first_block, num_classes=num_classes)
    # The harness's own training step calls a layer with one positional input, which a layer of
    # several named inputs cannot take (Keras runs its MultiHeadAttention test without it too); the
    # step is taken below through a functional model instead.
    LayerHarnessTest().run_layer_test(
        GatedBlock,
        init_kwargs=arguments,
        input_shape=shapes,
        input_dtype=dtypes,
        expected_output_shape=((2, 4, 4, 3),) * 3,
        # five convolutions (kernel and bias), and a per-class bias table per stack when conditional
        expected_num_trainable_weights=10 if num_classes is None else 12,
        run_training_check=False,
        run_mixed_precision_check=True,
    )
    inputs = {
        name[: -len("_shape")]: keras.Input(shape[1:], dtype=dtypes[name]) for name, shape in shapes.items()
    }
    block = GatedBlock(**arguments)
    model = keras.Model(inputs, keras.layers.Add()(list(block(**inputs))))
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    data = {
        name: rng.normal(size=(2, *tensor.shape[1:])).astype("float32") for name, tensor in inputs.items()
    }
    if num_classes is not None:
        data["labels"] = np.array([0, 2], np.int32)
    before = [weight.numpy().copy() for weight in block.trainable_weights]
    model.fit(data, rng.normal(size=(2, 4, 4, 3)).astype("float32"), epochs=1, verbose=0)
    changed = [not np.array_equal(old, new.numpy()) for old, new in zip(before, block.trainable_weights)]
    assert sum(changed) > 0 and len(before) == len(block.trainable_weights)
