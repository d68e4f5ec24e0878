"""vqgen: two-stage discrete generative modelling in Keras 3.

Stage 1 is a VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning") that codes
images as grids of integers, with a vector quantizer, finite scalar quantization or residual VQ; stage 2
(the `prior` package) is a prior over those grids: a gated PixelCNN, a decoder-only Transformer or
MaskGIT. `vqgen.data` reads the image sources and `vqgen.export_saved_model` exports both stages.
"""

from keras_backend_check import require_tensorflow_backend

require_tensorflow_backend("vqgen")  # one ImportError under another Keras backend, before Keras loads it

from vqgen import data
from vqgen.models import (
    VQVAE,
    Decoder,
    Encoder,
    FiniteScalarQuantizer,
    LossTerm,
    Quantization,
    ResidualStack,
    ResidualVectorQuantizer,
    VectorQuantizer,
)
from vqgen.version import __version__


def __getattr__(name):
    """Imports `export_saved_model` on first use: the exporter joins both stages and imports `prior`,
    which `import vqgen` and the stage-1 models never do (tests/test_package_boundaries.py)."""
    if name == "export_saved_model":
        from vqgen.export import export_saved_model

        return export_saved_model
    raise AttributeError(f"module 'vqgen' has no attribute {name!r}")


__all__ = [
    "__version__",
    "data",
    "Decoder",
    "Encoder",
    "export_saved_model",
    "FiniteScalarQuantizer",
    "LossTerm",
    "Quantization",
    "ResidualStack",
    "ResidualVectorQuantizer",
    "VQVAE",
    "VectorQuantizer",
]
