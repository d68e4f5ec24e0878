"""The quantizer shortcuts `"vq" | "fsq" | "rvq"`: one builder from the flat stage-1 settings.

The CLI, the run config and `VQVAE(quantizer="fsq", levels=...)` name a quantizer by a string and a
few flat settings (`vqgen.settings.VQVAESettings`); `build_quantizer` turns them into the layer. A
quantizer object passed to `VQVAE(quantizer=...)` needs none of this.
"""

import inspect

from vqgen.models.finite_scalar_quantizer import FiniteScalarQuantizer
from vqgen.models.residual_vector_quantizer import ResidualVectorQuantizer
from vqgen.models.vector_quantizer import VectorQuantizer
from vqgen.settings import VQVAE_DEFAULTS

QUANTIZERS = ("vq", "fsq", "rvq")


def build_quantizer(
    kind,
    num_embeddings=VQVAE_DEFAULTS.num_embeddings,
    embedding_dim=VQVAE_DEFAULTS.embedding_dim,
    beta=VQVAE_DEFAULTS.beta,
    ema=VQVAE_DEFAULTS.ema,
    decay=VQVAE_DEFAULTS.decay,
    epsilon=VQVAE_DEFAULTS.epsilon,
    restart_after_steps=VQVAE_DEFAULTS.restart_after_steps,
    init_from_data=VQVAE_DEFAULTS.init_from_data,
    levels=VQVAE_DEFAULTS.levels,
    num_quantizers=VQVAE_DEFAULTS.num_quantizers,
    quantizer_dropout=VQVAE_DEFAULTS.quantizer_dropout,
    latent_decay=VQVAE_DEFAULTS.latent_decay,
    codebook_dim=VQVAE_DEFAULTS.codebook_dim,
    l2_normalize=VQVAE_DEFAULTS.l2_normalize,
    seed=None,
    name="quantizer",
):
    """Builds the quantizer a shortcut names from the flat stage-1 settings.

    Each kind reads the settings it has and ignores the others: `"vq"` a `VectorQuantizer` of
    `num_embeddings` codes of size `embedding_dim` (looked up in `codebook_dim` dimensions, by cosine
    with `l2_normalize`); `"rvq"` a `ResidualVectorQuantizer` of `num_quantizers` such levels
    (all in one projection of `codebook_dim` dimensions; no `l2_normalize`); `"fsq"` a
    `FiniteScalarQuantizer(levels)`, standardising by running statistics when `init_from_data` (its
    counterpart of a data-initialised codebook), with `latent_decay` as their EMA decay.

    Args:
        kind: str, one of `"vq"`, `"fsq"`, `"rvq"`.
        num_embeddings, embedding_dim, beta, ema, decay, epsilon, restart_after_steps,
        init_from_data, levels, num_quantizers, quantizer_dropout, latent_decay, codebook_dim,
        l2_normalize: the
            `VQVAESettings` fields of that name (see their help). Default to the `VQVAESettings`
            values.
        seed: int or None. Seed of the quantizer's random choices. Defaults to `None`.
        name: str. The layer's name. Defaults to `"quantizer"`.

    Returns:
        The quantizer layer.

    Raises:
        ValueError: an unknown `kind`, or a setting the quantizer refuses.

    Example:
    >>> build_quantizer("fsq", levels=[8, 5, 5, 5]).num_embeddings
    1000
    """
    if not 0.0 <= latent_decay < 1.0:
        raise ValueError(f"latent_decay must be in [0, 1). Received: latent_decay={latent_decay}")
    vq_options = dict(
        beta=beta,
        ema=ema,
        decay=decay,
        epsilon=epsilon,
        restart_after_steps=restart_after_steps,
        init_from_data=init_from_data,
        seed=seed,
        name=name,
    )
    if kind == "vq":
        return VectorQuantizer(
            num_embeddings, embedding_dim, codebook_dim=codebook_dim, l2_normalize=l2_normalize, **vq_options
        )
    if kind == "rvq":
        return ResidualVectorQuantizer(
            num_quantizers,
            num_embeddings,
            embedding_dim,
            quantizer_dropout=quantizer_dropout,
            codebook_dim=codebook_dim,
            **vq_options,
        )
    if kind == "fsq":
        return FiniteScalarQuantizer(levels, standardize=init_from_data, decay=latent_decay, name=name)
    raise ValueError(
        f"quantizer must be one of {QUANTIZERS} or a quantizer layer. Received: quantizer={kind!r}"
    )


# The flat settings of the shortcuts (`VQVAE` takes them too, for a quantizer named by a string).
SHORTCUT_SETTINGS = tuple(
    name for name in inspect.signature(build_quantizer).parameters if name not in ("kind", "seed", "name")
)
