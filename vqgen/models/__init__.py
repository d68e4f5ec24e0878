"""Stage 1 of vqgen: the VQ-VAE and its layers, importable on their own.

Nothing here imports `prior`; the workflow in `vqgen.runs` joins the two stages.
"""

from vqgen.models.adversarial_loss import AdversarialLoss
from vqgen.models.decoder import Decoder
from vqgen.models.discriminator import PatchDiscriminator
from vqgen.models.encoder import Encoder
from vqgen.models.finite_scalar_quantizer import FiniteScalarQuantizer
from vqgen.models.losses import LossTerm, MeanAbsoluteError, MeanSquaredError
from vqgen.models.perceptual_loss import PerceptualLoss
from vqgen.models.quantization import Quantization, check_quantizer
from vqgen.models.quantizers import QUANTIZERS, build_quantizer
from vqgen.models.residual_stack import ResidualStack
from vqgen.models.residual_vector_quantizer import ResidualVectorQuantizer
from vqgen.models.vector_quantizer import VectorQuantizer
from vqgen.models.vqvae import VQVAE

__all__ = [
    "QUANTIZERS",
    "AdversarialLoss",
    "Decoder",
    "Encoder",
    "FiniteScalarQuantizer",
    "LossTerm",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "PatchDiscriminator",
    "PerceptualLoss",
    "Quantization",
    "ResidualStack",
    "ResidualVectorQuantizer",
    "VQVAE",
    "VectorQuantizer",
    "build_quantizer",
    "check_quantizer",
]
