"""MaskGIT's iterative decoding (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer").

The decoding loop apart from the network, as google-research/maskgit keeps
`libml/parallel_decode.py` apart from its Transformer: `prior.MaskGIT` gives the logits of a
partly masked grid; this module decides what to draw, keep and re-mask.

- `sampling_plan` and `inpainting_plan`: the start grids and how many positions stay masked
  after each step (`prior.mask_schedule.masked_counts`), for sampling from an all-masked grid and
  for re-sampling the masked positions of given grids; `graph_sampling_plan`, the first in
  TensorFlow ops for an exported sampler whose `steps` is an input.
- `decode`: the loop, one network pass per step: draw every masked position, score the draws'
  confidences, keep the most confident and re-mask the rest. Its randomness is a `Draws`:
  `seeded_draws` (keyed by a seed and the step, `MaskGIT.sample`) or `noise_draws` (the caller's
  Gumbel noise, no random op: `sample_from_noise`, the exported noise-driven sampler that the
  portable exports' NumPy loop `vqgen.noise_sampler.maskgit_sample_with_noise` mirrors).
- `masked_logits`: the logits of one pass, with classifier-free guidance (`prior.guidance`).
"""

import typing

import numpy as np
import tensorflow as tf

from prior.guidance import guided_logits
from prior.mask_schedule import masked_counts, masked_counts_tensor
from prior.sampling import draw_codes, gumbel_noise

# The paper's "choice temperature": the scale of the Gumbel noise added to the confidences,
# annealed linearly to 0 over the decoding steps (Chang et al. 2022, section 3.2).
CONFIDENCE_NOISE = 4.5


def sampling_plan(num, total, steps, schedule, mask_id):
    """The start and plan of sampling `num` grids of `total` positions from nothing.

    Args:
        num: int >= 1, the number of grids.
        total: int >= 1, the positions per grid (`rows * cols`).
        steps: int in `[1, total]`, the decoding steps.
        schedule: str, a key of `prior.mask_schedule.SCHEDULES`.
        mask_id: int, the `[MASK]` token.

    Returns:
        `(start, counts)`: int32 `(num, total)` all `mask_id`, and int32 `(num, steps)`, the
        positions left masked after each step (`masked_counts`).

    Example:

    >>> start, counts = sampling_plan(2, 16, 4, "cosine", mask_id=512)
    >>> counts[0]
    array([14, 11,  6,  0], dtype=int32)
    """
    start = np.full((num, total), mask_id, np.int32)
    return start, np.tile(masked_counts(steps, total, schedule), (num, 1))


def inpainting_plan(codes, mask, steps, schedule, mask_id):
    """The start and plan of re-sampling the masked positions of `codes`.

    A grid with `n` masked positions follows `masked_counts(min(steps, n), n, schedule)` and then
    keeps 0 masked, so fewer than `steps` passes change it when `n < steps`; a grid with nothing
    masked keeps counts of 0 and no step changes it.

    Args:
        codes: integer array `(num, rows, cols)`; the values at masked positions are ignored.
        mask: bool array like `codes`, True = re-sample.
        steps: int >= 1, the decoding steps.
        schedule: str, a key of `prior.mask_schedule.SCHEDULES`.
        mask_id: int, the `[MASK]` token.

    Returns:
        `(start, counts)`: int32 `(num, rows * cols)`, `codes` with `mask_id` at the masked
        positions, and int32 `(num, steps)`.

    Example:

    >>> mask = np.zeros((1, 4, 4), bool); mask[:, 2:] = True  # 8 positions to re-sample
    >>> start, counts = inpainting_plan(np.zeros((1, 4, 4)), mask, 4, "cosine", mask_id=16)
    """
    num = codes.shape[0]
    flat_mask = mask.reshape(num, -1)
    counts = np.zeros((num, steps), np.int32)
    for grid, total in enumerate(flat_mask.sum(axis=1).tolist()):
        if total:
            counts[grid, : min(steps, total)] = masked_counts(min(steps, total), total, schedule)
    start = np.where(flat_mask, mask_id, codes.reshape(num, -1)).astype(np.int32)
    return start, counts


def graph_sampling_plan(num_samples, total, steps, mask_id):
    """`sampling_plan` with the cosine schedule in TensorFlow ops, for tensor `num_samples` and `steps`.

    Args:
        num_samples: int32 scalar tensor, >= 1.
        total: int, the positions per grid.
        steps: int or int32 scalar tensor in `[1, total]` (not checked here).
        mask_id: int, the `[MASK]` token.

    Returns:
        `(start, counts)`: int32 tensors `(num_samples, total)` and `(num_samples, steps)`.

    Example:

    >>> start, counts = graph_sampling_plan(tf.constant(2), 16, tf.constant(4), mask_id=512)
    """
    start = tf.fill([num_samples, total], tf.constant(mask_id, tf.int32))
    counts = masked_counts_tensor(steps, total)[None]  # (1, steps)
    return start, tf.tile(counts, [num_samples, 1])


def masked_logits(model, flat_codes, labels, guidance):
    """Float32 logits `(B, T, K)` of partly masked grids, guided when `guidance` is a tensor.

    With guidance the "no label" pass runs only when the scale differs from 1 (a `tf.cond`), as a
    separate call of the same batch size as the conditional one.

    Args:
        model: a `prior.MaskGIT`.
        flat_codes: int32 `(B, T)` codes in `[0, K]` (`K`: masked).
        labels: int32 `(B,)` for a conditional model, else None.
        guidance: float32 scalar tensor >= 0, or None (no "no label" pass).

    Returns:
        float32 `(B, T, K)` tensor.

    Example:

    >>> logits = masked_logits(model, tf.fill([2, 16], 512), None, None)  # doctest: +SKIP
    """
    rows, cols = model.grid_shape
    grid = tf.reshape(flat_codes, [-1, rows, cols])
    B = tf.shape(grid)[0]

    def logits_given(given_labels):
        logits = model(grid if given_labels is None else {"codes": grid, "labels": given_labels})
        return tf.reshape(tf.cast(logits, tf.float32), [B, rows * cols, model.num_embeddings])

    if guidance is None:
        return logits_given(labels)
    return tf.cond(
        tf.equal(guidance, 1.0),
        lambda: logits_given(labels),
        lambda: guided_logits(
            logits_given(labels),
            logits_given(tf.fill([B], tf.constant(model.no_label, tf.int32))),
            guidance,
        ),
    )


class Draws(typing.NamedTuple):
    """Where the randomness of `decode` comes from: the codes drawn and the confidences' noise at each step.

    Attributes:
        codes: function `(logits float32 (B * T, K), step int32 scalar) -> int32 (B * T,)`, the codes
            drawn at every position in step `step` (`seeded_draws`, `noise_draws`).
        confidence_noise: function `(shape [B, T], step) -> float32 (B, T)`, the standard Gumbel
            noise added (scaled) to the draws' log-probabilities in step `step`.

    Example:

    >>> draws = seeded_draws(tf.constant(1.0), tf.constant(0, tf.int64))
    >>> draws.confidence_noise([2, 16], 0).shape
    TensorShape([2, 16])
    """

    codes: typing.Callable
    confidence_noise: typing.Callable


def seeded_draws(temperature, seed, top_k=None):
    """The draws of `sample`: step `t` draws with `draw_codes` keyed `(seed, t)`, its confidence noise
    is `gumbel_noise` keyed `(seed, -1 - t)`.

    Args:
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.

    Returns:
        `Draws`.

    Example:

    >>> draws = seeded_draws(tf.constant(1.0), tf.constant(0, tf.int64))
    """
    return Draws(
        codes=lambda logits, step: draw_codes(logits, temperature, seed, step, top_k),
        confidence_noise=lambda shape, step: gumbel_noise(shape, seed, -1 - step),
    )


def noise_draws(gumbel, confidence_gumbel, temperature):
    """The draws of the noise-driven decoding: the caller's Gumbel noise, no random op.

    Step `t` draws position `p` of grid `n` as `argmax(logits[n, p] + temperature * gumbel[n, t, p])`
    (the Gumbel-max trick, as `draw_codes` with the noise it makes for `(seed, t)`) and adds
    `confidence_gumbel[n, t, p]` (scaled) to that draw's confidence; `p` is the raster position
    `(row, col)` of the grids. This is the layout of the exported `sample_from_noise` signature of a
    MaskGIT and of `vqgen.noise_sampler.maskgit_sample_with_noise`.

    Args:
        gumbel: float32 `(N, steps, rows, cols, K)` tensor of standard Gumbel noise.
        confidence_gumbel: float32 `(N, steps, rows, cols)` tensor of standard Gumbel noise.
        temperature: float32 scalar tensor, > 0.

    Returns:
        `Draws`.

    Example:

    >>> draws = noise_draws(tf.zeros([2, 4, 3, 3, 8]), tf.zeros([2, 4, 3, 3]), tf.constant(1.0))
    """

    def codes(logits, step):
        step_gumbel = tf.reshape(tf.gather(gumbel, step, axis=1), tf.shape(logits))  # (N * T, K)
        return tf.argmax(logits + temperature * step_gumbel, axis=-1, output_type=tf.int32)

    return Draws(
        codes=codes,
        confidence_noise=lambda shape, step: tf.reshape(tf.gather(confidence_gumbel, step, axis=1), shape),
    )


def decode(model, flat_codes, counts, draws, labels, guidance):
    """MaskGIT's iterative decoding: one `tf.while_loop` over the steps of `counts`.

    Step `t` draws every masked position from `softmax(logits / temperature)` with `draws.codes`;
    scores each draw by its log-probability plus `CONFIDENCE_NOISE * (1 - (t + 1) / steps)` times
    `draws.confidence_noise` (given positions score +inf); and re-masks the `counts[:, t]`
    lowest-scoring positions (ties broken by position).

    Args:
        model: a `prior.MaskGIT`.
        flat_codes: int32 `(B, T)`, the start grids (`mask_id` where to draw).
        counts: int32 `(B, steps)`, the positions left masked after each step.
        draws: `Draws`, the randomness: `seeded_draws` or `noise_draws`.
        labels: int32 `(B,)` for a conditional model, else None.
        guidance: float32 scalar tensor >= 0, or None.

    Returns:
        int32 `(B, T)`: the decoded grids (still `mask_id` where the last count is not 0).

    Example:

    >>> start, counts = sampling_plan(2, 16, 4, "cosine", model.mask_id)  # doctest: +SKIP
    >>> draws = seeded_draws(tf.constant(1.0), tf.constant(0, tf.int64))
    >>> grids = decode(model, start, counts, draws, None, None)  # doctest: +SKIP
    """
    B, T, K = tf.shape(flat_codes)[0], model.sequence_length, model.num_embeddings
    steps = tf.shape(counts)[1]

    def decode_step(step, flat_codes):
        masked = tf.equal(flat_codes, model.mask_id)  # (B, T)
        logits = masked_logits(model, flat_codes, labels, guidance)  # (B, T, K)
        drawn = draws.codes(tf.reshape(logits, [B * T, K]), step)
        drawn = tf.where(masked, tf.reshape(drawn, [B, T]), flat_codes)
        log_probs = tf.gather(tf.nn.log_softmax(logits), drawn, batch_dims=2)  # (B, T)
        annealing = CONFIDENCE_NOISE * (1.0 - tf.cast(step + 1, tf.float32) / tf.cast(steps, tf.float32))
        noise = draws.confidence_noise([B, T], step)
        confidence = tf.where(masked, log_probs + annealing * noise, float("inf"))
        ranks = tf.argsort(tf.argsort(confidence, axis=-1, stable=True), axis=-1, stable=True)
        still_masked = ranks < counts[:, step][:, None]
        return step + 1, tf.where(still_masked, model.mask_id, drawn)

    _, flat_codes = tf.while_loop(lambda step, _: step < steps, decode_step, (tf.constant(0), flat_codes))
    return flat_codes


def sample_from_noise(model, gumbel, confidence_gumbel, temperature, labels=None, guidance=None):
    """Decodes grids from all-masked ones with the caller's noise instead of a seed: no random op.

    `decode` with `noise_draws` on the cosine plan of `graph_sampling_plan`, in as many steps as
    the noise has (`gumbel.shape[1]`, in `[1, rows * cols]`, not checked here). This is the loop
    of a MaskGIT's exported `sample_from_noise` signature; `vqgen.noise_sampler` runs the same
    loop in NumPy around any runtime's one-pass logits (LiteRT, ONNX), giving the same grids for
    the same noise.

    Args:
        model: a `prior.MaskGIT`.
        gumbel: float32 `(N, steps, rows, cols, K)` tensor of standard Gumbel noise (the draws).
        confidence_gumbel: float32 `(N, steps, rows, cols)` tensor of standard Gumbel noise (the
            confidences).
        temperature: float32 scalar tensor, > 0.
        labels: int32 `(N,)` tensor for a conditional model, else None.
        guidance: optional float32 scalar tensor >= 0, the classifier-free guidance scale; None
            runs no "no label" pass.

    Returns:
        int32 `(N, rows, cols)` tensor.

    Example:

    >>> model = prior.MaskGIT(16, (3, 3), num_layers=1, hidden_dim=8, num_heads=2)  # doctest: +SKIP
    >>> gumbel = -tf.math.log(-tf.math.log(tf.random.uniform([2, 4, 3, 3, 16], 1e-7, 1.0)))
    >>> confidence_gumbel = -tf.math.log(-tf.math.log(tf.random.uniform([2, 4, 3, 3], 1e-7, 1.0)))
    >>> grids = sample_from_noise(model, gumbel, confidence_gumbel, tf.constant(1.0))  # doctest: +SKIP
    """
    num, steps = tf.shape(gumbel)[0], tf.shape(gumbel)[1]
    start, counts = graph_sampling_plan(num, model.sequence_length, steps, model.mask_id)
    draws = noise_draws(gumbel, confidence_gumbel, temperature)
    decoded = decode(model, start, counts, draws, labels, guidance)
    return tf.reshape(decoded, [num, *model.grid_shape])
