"""Stage 2 of vqgen: an autoregressive prior over integer code grids.

A gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN
Decoders") or a decoder-only Transformer (as in Esser et al., 2021, "Taming Transformers for
High-Resolution Image Synthesis") models `p(codes) = prod_t p(code_t | code_<t)` over int32
grids `(batch, rows, cols)` with values in `[0, K)`, optionally conditioned on a class label.
Both derive from `AutoregressivePrior`, which gives them one surface; `MaskGIT` decodes many
codes per step instead. `prior.registry` names each prior and says what it can do. Sampling runs in one
compiled `tf.while_loop`, either with a full network pass per position or incrementally: the
PixelCNN's cached sampler in the spirit of Ramachandran et al. (2017), "Fast Generation for
Convolutional Autoregressive Models", the Transformer's key/value cache (all in
`prior.sampling`). The package works on any integer grids and imports nothing from `vqgen`.
"""

from keras_backend_check import require_tensorflow_backend

require_tensorflow_backend("prior")  # one ImportError under another Keras backend, before Keras loads it

from prior.autoregressive_prior import AutoregressivePrior
from prior.code_prior import CodePrior
from prior.gated_block import GatedBlock
from prior.masked_conv2d import MaskedConv2D
from prior.maskgit import MaskGIT
from prior.pixelcnn import PixelCNN
from prior.registry import DEFAULT_PRIOR, PRIORS, PriorKind, kind_of, prior_kind
from prior.settings import MaskGITSettings, PixelCNNSettings, TransformerSettings
from prior.transformer import Transformer
from prior.transformer_block import TransformerBlock

__all__ = [
    "DEFAULT_PRIOR",
    "PRIORS",
    "AutoregressivePrior",
    "CodePrior",
    "GatedBlock",
    "MaskedConv2D",
    "MaskGIT",
    "MaskGITSettings",
    "PixelCNN",
    "PixelCNNSettings",
    "PriorKind",
    "Transformer",
    "TransformerBlock",
    "TransformerSettings",
    "kind_of",
    "prior_kind",
]
