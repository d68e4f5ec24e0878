"""vqgen: two-stage discrete generative modelling in Keras 3.

Stage 1 is a VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning") that codes
images as grids of integers; stage 2 (the `prior` package) is a gated PixelCNN over those grids.
"""

from vqgen import data
from vqgen.export import export_saved_model
from vqgen.models import (
    VQVAE,
    Decoder,
    Encoder,
    FiniteScalarQuantizer,
    Quantization,
    ResidualStack,
    ResidualVectorQuantizer,
    VectorQuantizer,
)

__version__ = "0.1.0"

__all__ = [
    "data",
    "Decoder",
    "Encoder",
    "export_saved_model",
    "FiniteScalarQuantizer",
    "Quantization",
    "ResidualStack",
    "ResidualVectorQuantizer",
    "VQVAE",
    "VectorQuantizer",
]
