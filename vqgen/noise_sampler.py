"""Sampling code grids from a prior's logits with the randomness given as input: NumPy only.

The portable exports (`vqgen.portable_export`: LiteRT and ONNX) hold no random op and no sampling
loop: they hold `prior_logits`, one full pass of the prior (codes `[N, rows, cols]`, and labels
`[N]` for a class-conditional prior, to logits `[N, rows, cols, K]`). This module is the loop that
drives it, and it is copied into every portable export as `noise_sampler.py`, so the export needs
only NumPy and its runtime. Position `t` (raster order) is drawn by the Gumbel-max trick,
`argmax(logits[:, t] + temperature * gumbel[:, t])`, from the caller's Gumbel noise; the exported
SavedModel's `sample_from_noise` signature computes the same, so one noise tensor gives the same
codes in all three formats (up to the runtimes' float rounding of the logits).

Example (a LiteRT export; ONNX Runtime's `InferenceSession.run` works the same way):

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from noise_sampler import gumbel_noise, sample_with_noise

    logits = Interpreter(model_path="export/prior_logits.tflite").get_signature_runner()
    noise = gumbel_noise(16, (7, 7), 256, seed=0)
    labels = np.arange(16) % 10
    codes = sample_with_noise(lambda c, y: logits(codes=c, labels=y)["logits"], noise, labels=labels)
"""

import numpy as np


def gumbel_noise(num, grid_shape, num_embeddings, seed=None):
    """Standard Gumbel noise `-log(-log(u))`, `u` uniform in (0, 1), for `num` grids.

    Args:
        num: int >= 1. Grids to sample.
        grid_shape: `(rows, cols)` of the prior's grids.
        num_embeddings: int. The codebook size K.
        seed: int or None. Seed of NumPy's default generator (PCG64).

    Returns:
        float32 array `[num, rows, cols, num_embeddings]`.
    """
    uniform = np.random.default_rng(seed).random((num, *grid_shape, num_embeddings), dtype=np.float32)
    uniform = np.maximum(uniform, np.finfo(np.float32).tiny)  # (0, 1): log(0) would be -inf
    return -np.log(-np.log(uniform))


def sample_with_noise(prior_logits, gumbel, temperature=1.0, labels=None):
    """Draws code grids position by position with one `prior_logits` call per position.

    Args:
        prior_logits: function `(codes int32 [N, rows, cols], labels int32 [N] or None) -> logits
            float32 [N, rows, cols, K]`, e.g. an exported `prior_logits` model.
        gumbel: float32 array `[N, rows, cols, K]`, e.g. from `gumbel_noise`.
        temperature: float > 0. Defaults to 1.
        labels: int array `[N]` for a class-conditional prior, else None.

    Returns:
        int32 array `[N, rows, cols]`.

    Raises:
        ValueError: `temperature` <= 0 or `gumbel` not 4-dimensional.
    """
    gumbel = np.asarray(gumbel, np.float32)
    if gumbel.ndim != 4:
        raise ValueError(f"gumbel must have shape [N, rows, cols, K]. Received: shape={gumbel.shape}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0. Received: temperature={temperature!r}")
    num, rows, cols, _ = gumbel.shape
    temperature = np.float32(temperature)
    labels = None if labels is None else np.asarray(labels, np.int32)
    codes = np.zeros((num, rows, cols), np.int32)
    for row in range(rows):
        for col in range(cols):
            logits = np.asarray(prior_logits(codes, labels), np.float32)[:, row, col]  # (N, K)
            codes[:, row, col] = np.argmax(logits + temperature * gumbel[:, row, col], axis=-1)
    return codes
