"""The registry of priors: each prior's name, class, default settings and what it can do.

Callers ask the registry what a prior can do (`kind_of(model).exact_likelihood`, ...) instead of
testing its class, and find a prior's class and defaults by the name the workflow uses
(`vqgen train-prior --prior NAME`, `config["prior"]["kind"]` of a run folder).

Example:
>>> kind = prior_kind("transformer")
>>> model = kind.model_class(num_embeddings=16, grid_shape=(4, 4), num_layers=2)
>>> kind_of(model) is kind, kind.decoding, kind.exact_likelihood
(True, 'raster', True)
"""

import dataclasses

from prior.maskgit import MaskGIT
from prior.pixelcnn import PixelCNN
from prior.settings import MASKGIT_DEFAULTS, PIXELCNN_DEFAULTS, TRANSFORMER_DEFAULTS
from prior.transformer import Transformer

# The two ways a prior draws a grid of codes (`PriorKind.decoding`).
RASTER = "raster"
PARALLEL = "parallel"


@dataclasses.dataclass(frozen=True)
class PriorKind:
    """One prior of the toolkit: its name, class, defaults and capabilities.

    Args:
        name: str. The name the workflow uses (`--prior NAME`, the run config's "kind").
        model_class: the `keras.Model` subclass, built as
            `model_class(num_embeddings=..., grid_shape=..., **settings fields)`.
        settings: a frozen settings dataclass instance holding the architecture defaults
            (`prior.PixelCNNSettings()`, ...); its fields are the class's architecture arguments.
        option_prefix: str. The prefix of its command-line options: `""` for the PixelCNN (whose
            options came first), `"NAME_"` for the others (`--transformer-num-layers`).
        decoding: `RASTER` (one code per step in raster order, `log_prob` and `sample_codes` of
            `prior.AutoregressivePrior`; the exports' noise-driven sampler draws one position per
            call) or `PARALLEL` (MaskGIT's iterative decoding: many codes per step, a `steps`
            argument, `check_steps`; the exports' noise-driven sampler takes noise for each step).
            Every prior exports in every format (SavedModel, LiteRT, ONNX).
        exact_likelihood: bool. `log_prob` gives the exact log-likelihood of a grid (a raster
            prior's chain rule); without it, `masked_bits_per_code` is the measure.

    Example:
    >>> PRIORS["maskgit"].decoding
    'parallel'
    """

    name: str
    model_class: type
    settings: object
    option_prefix: str
    decoding: str
    exact_likelihood: bool

    @property
    def display_name(self):
        """The prior's name in messages and help texts: its class name ("PixelCNN", "MaskGIT")."""
        return self.model_class.__name__


# Every prior by name; the PixelCNN, listed first, is the default.
PRIORS = {
    kind.name: kind
    for kind in (
        PriorKind("pixelcnn", PixelCNN, PIXELCNN_DEFAULTS, "", RASTER, True),
        PriorKind("transformer", Transformer, TRANSFORMER_DEFAULTS, "transformer_", RASTER, True),
        PriorKind("maskgit", MaskGIT, MASKGIT_DEFAULTS, "maskgit_", PARALLEL, False),
    )
}
DEFAULT_PRIOR = "pixelcnn"


def prior_kind(name):
    """The registered prior named `name`.

    Args:
        name: str, a key of `PRIORS` ("pixelcnn", "transformer", "maskgit").

    Returns:
        `PriorKind`.

    Raises:
        ValueError: no prior has that name (the message lists the names).

    Example:
    >>> prior_kind("pixelcnn").model_class.__name__
    'PixelCNN'
    """
    if name not in PRIORS:
        raise ValueError(f"Unknown prior {name!r}; choose one of {sorted(PRIORS)}.")
    return PRIORS[name]


def kind_of(model):
    """The registered prior `model` is an instance of: the one place that tests a prior's class.

    Args:
        model: any object, usually a trained prior.

    Returns:
        `PriorKind`.

    Raises:
        ValueError: `model` is not an instance of a registered prior class.

    Example:
    >>> kind_of(MaskGIT(num_embeddings=16, grid_shape=(4, 4))).name
    'maskgit'
    """
    for kind in PRIORS.values():
        if isinstance(model, kind.model_class):
            return kind
    *others, last = [f"a prior.{kind.display_name}" for kind in PRIORS.values()]
    raise ValueError(
        f"prior must be {', '.join(others)} or {last} (see prior.registry). "
        f"Received: prior={type(model).__name__}"
    )
