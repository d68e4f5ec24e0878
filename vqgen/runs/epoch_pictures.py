"""The pictures each epoch adds to TensorBoard: reconstructions and codebook usage (stage 1), samples (prior).

Each function returns a `pictures(model)` function for `EpochSummaries` (through `train_stage`):
it is called at every epoch end with the model being trained and returns
`{"images": {tag: uint8 [k, H, W, C]}, "histograms": {tag: values}}`.
"""

import numpy as np

from vqgen.data.float_images import to_float_images
from vqgen.evaluation.codebook_usage import codebook_usage, usage_histogram_picture
from vqgen.runs.image_grid import make_image_grid

# Validation images shown with their reconstructions (two rows of 8 originals, each above its row
# of reconstructions), and samples per class row in the prior's grid.
RECONSTRUCTED_IMAGES = 16
COLUMNS = 8


def comparison_picture(originals, reconstructions, columns=COLUMNS):
    """Originals in odd rows above their reconstructions, as one uint8 `[H, W, C]` picture."""
    rows = []
    for start in range(0, len(originals), columns):
        rows += [originals[start : start + columns], reconstructions[start : start + columns]]
    return make_image_grid(np.concatenate(rows), columns=columns)


def vqvae_pictures(validation_images):
    """Stage 1: reconstructions of the first validation images and the codebook usage of them all.

    Args:
        validation_images: uint8 or float array `[N, H, W, C]` of the run's validation split.

    Returns:
        function `vqvae -> pictures`: images `reconstructions` and `codebook_usage` (bars per code
        over the whole validation split, dead codes as red ticks) and the histogram `codes`.
    """
    images = to_float_images(validation_images)
    shown = images[:RECONSTRUCTED_IMAGES]

    def pictures(vqvae):
        codes = vqvae.encode(images)
        levels = codes.reshape(-1) if codes.ndim == 3 else codes[..., 0].reshape(-1)  # RVQ: level 0
        usage = codebook_usage(levels, vqvae.num_embeddings)
        return {
            "images": {
                "reconstructions": comparison_picture(shown, vqvae.reconstruct(shown))[None],
                "codebook_usage": usage_histogram_picture(usage["counts"])[None],
            },
            "histograms": {"codes": codes.reshape(-1).astype(np.float32)},
        }

    return pictures


def prior_pictures(vqvae, num_classes, seed):
    """Stage 2: a grid of samples from the prior being trained, decoded by the run's VQ-VAE.

    Args:
        vqvae: the run's trained `VQVAE`.
        num_classes: int or None. A conditional prior samples one row of 8 per class (10 at most).
        seed: int. The same seed every epoch, so the epochs' grids differ only by the prior.

    Returns:
        function `prior -> pictures` with the image `samples`.
    """

    def pictures(prior_model):
        if prior_model.conditional:
            labels = np.repeat(np.arange(min(num_classes, 10)), COLUMNS)
            tokens = prior_model.sample(len(labels), labels=labels, seed=seed)
        else:
            tokens = prior_model.sample(2 * COLUMNS, seed=seed)
        images = vqvae.decode(vqvae.from_token_grid(tokens))
        return {"images": {"samples": make_image_grid(images, columns=COLUMNS)[None]}}

    return pictures
