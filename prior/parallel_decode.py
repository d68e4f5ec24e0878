"""MaskGIT's iterative decoding (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer").

The decoding loop apart from the network, as google-research/maskgit keeps
`libml/parallel_decode.py` apart from its Transformer: `prior.MaskGIT` gives the logits of a
partly masked grid; this module decides what to draw, keep and re-mask.

- `sampling_plan` and `inpainting_plan`: the start grids and how many positions stay masked
  after each step (`prior.mask_schedule.masked_counts`), for sampling from an all-masked grid and
  for re-sampling the masked positions of given grids; `graph_sampling_plan`, the first in
  TensorFlow ops for an exported sampler whose `steps` is an input.
- `decode`: the loop, one network pass per step: draw every masked position, score the draws'
  confidences, keep the most confident and re-mask the rest.
- `masked_logits`: the logits of one pass, with classifier-free guidance (`prior.guidance`).
"""

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


def decode(model, flat_codes, counts, temperature, seed, labels, guidance, top_k):
    """MaskGIT's iterative decoding: one `tf.while_loop` over the steps of `counts`.

    Step `t` draws every masked position from `softmax(logits / temperature)` (among the `top_k`
    likeliest codes when set) with `prior.sampling.draw_codes` keyed `(seed, t)`; scores each draw
    by its log-probability plus `CONFIDENCE_NOISE * (1 - (t + 1) / steps)` times Gumbel noise keyed
    `(seed, -1 - t)` (given positions score +inf); and re-masks the `counts[:, t]` lowest-scoring
    positions (ties broken by position).

    Args:
        model: a `prior.MaskGIT`.
        flat_codes: int32 `(B, T)`, the start grids (`mask_id` where to draw).
        counts: int32 `(B, steps)`, the positions left masked after each step.
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        labels: int32 `(B,)` for a conditional model, else None.
        guidance: float32 scalar tensor >= 0, or None.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.

    Returns:
        int32 `(B, T)`: the decoded grids (still `mask_id` where the last count is not 0).

    Example:

    >>> start, counts = sampling_plan(2, 16, 4, "cosine", model.mask_id)  # doctest: +SKIP
    >>> grids = decode(model, start, counts, tf.constant(1.0), tf.constant(0, tf.int64), None, None, None)
    """
    B, T, K = tf.shape(flat_codes)[0], model.sequence_length, model.num_embeddings
    steps = tf.shape(counts)[1]

    def decode_step(step, flat_codes):
        masked = tf.equal(flat_codes, model.mask_id)  # (B, T)
        logits = masked_logits(model, flat_codes, labels, guidance)  # (B, T, K)
        drawn = draw_codes(tf.reshape(logits, [B * T, K]), temperature, seed, step, top_k)
        drawn = tf.where(masked, tf.reshape(drawn, [B, T]), flat_codes)
        log_probs = tf.gather(tf.nn.log_softmax(logits), drawn, batch_dims=2)  # (B, T)
        annealing = CONFIDENCE_NOISE * (1.0 - tf.cast(step + 1, tf.float32) / tf.cast(steps, tf.float32))
        noise = gumbel_noise([B, T], seed, -1 - step)
        confidence = tf.where(masked, log_probs + annealing * noise, float("inf"))
        ranks = tf.argsort(tf.argsort(confidence, axis=-1, stable=True), axis=-1, stable=True)
        still_masked = ranks < counts[:, step][:, None]
        return step + 1, tf.where(still_masked, model.mask_id, drawn)

    _, flat_codes = tf.while_loop(lambda step, _: step < steps, decode_step, (tf.constant(0), flat_codes))
    return flat_codes
