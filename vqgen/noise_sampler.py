"""Sampling code grids from a prior's logits with the randomness given as input: NumPy only.

The portable exports (`vqgen.portable_export`: LiteRT and ONNX) hold no random op and no sampling
loop: they hold `prior_logits`, one full pass of the prior (codes `[N, rows, cols]`, and labels
`[N]` for a class-conditional prior, to logits `[N, rows, cols, K]`). This module is the loop that
drives it, and it is copied into every portable export as `noise_sampler.py`, so the export needs
only NumPy and its runtime. It is the raster loop of `prior.sampling.sample_raster` with a full
pass per position and the noise draw: position `t` (raster order) is drawn by the Gumbel-max trick,
`argmax(logits[:, t] + temperature * gumbel[:, t])`, from the caller's Gumbel noise; the exported
SavedModel's `sample_from_noise` signature computes the same, so one noise tensor gives the same
codes in all three formats (up to the runtimes' float rounding of the logits). With classifier-free
guidance (a prior trained with label dropout) each call runs a doubled batch, the labels and the
"no label" class, and draws from `u + guidance * (c - u)` as the SavedModel does.

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


def sample_with_noise(prior_logits, gumbel, temperature=1.0, labels=None, guidance=1.0, no_label=None):
    """Draws code grids position by position with one `prior_logits` call per position.

    Args:
        prior_logits: function `(codes int32 [N, rows, cols], labels int32 [N] or None) -> logits
            float32 [N, rows, cols, K]`, e.g. an exported `prior_logits` model.
        gumbel: float32 array `[N, rows, cols, K]`, e.g. from `gumbel_noise`.
        temperature: float > 0. Defaults to 1.
        labels: int array `[N]` for a class-conditional prior, else None.
        guidance: float >= 0, the classifier-free guidance scale; 1 (the default) draws from the
            conditional logits `c` alone, any other value from `u + guidance * (c - u)`, `u` the
            logits given the "no label" class (one call on the doubled batch per position).
        no_label: int, the "no label" class of a prior trained with label dropout (its
            `num_classes`); needed when `guidance` is not 1.

    Returns:
        int32 array `[N, rows, cols]`.

    Raises:
        ValueError: `temperature` <= 0, `gumbel` not 4-dimensional, or a guidance other than 1
            that is negative or lacks `labels` and `no_label`.
    """
    gumbel = np.asarray(gumbel, np.float32)
    if gumbel.ndim != 4:
        raise ValueError(f"gumbel must have shape [N, rows, cols, K]. Received: shape={gumbel.shape}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0. Received: temperature={temperature!r}")
    num, rows, cols, _ = gumbel.shape
    guided = guidance != 1
    if guided and not (guidance >= 0 and labels is not None and no_label is not None):
        raise ValueError(
            f"guidance {guidance!r} needs a value >= 0, labels and no_label (the prior's num_classes)"
        )
    temperature = np.float32(temperature)
    labels = None if labels is None else np.asarray(labels, np.int32)
    if guided:  # the batch of every call: the grids with their labels, then with "no label"
        labels = np.concatenate([labels, np.full_like(labels, no_label)])
    # The raster loop of `prior.sampling.sample_raster` with its full-pass step and noise draw.
    positions = rows * cols
    flat_gumbel = gumbel.reshape(num, positions, -1)
    codes = np.zeros((num, positions), np.int32)  # code 0 where nothing is drawn yet
    for index in range(positions):
        batch = np.concatenate([codes, codes]) if guided else codes
        logits = np.asarray(prior_logits(batch.reshape(-1, rows, cols), labels), np.float32)
        logits = logits.reshape(len(batch), positions, -1)[:, index]  # (N or 2N, K)
        if guided:
            conditional, unconditional = logits[:num], logits[num:]
            logits = unconditional + np.float32(guidance) * (conditional - unconditional)
        codes[:, index] = np.argmax(logits + temperature * flat_gumbel[:, index], axis=-1)
    return codes.reshape(num, rows, cols)
