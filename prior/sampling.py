"""Sampling code grids in raster order: the draws, the one loop, its full-pass step, the method choice.

A raster-order prior (`PixelCNN`, `Transformer`) is sampled by one loop, `sample_raster`, given
two parts:

- a *step*, which gives the logits of position `t` from the code drawn at `t - 1` and a cache:
  any object with `initial_cache(batch)` and `call_with_cache(previous_codes, cache, index,
  labels)` (and `complete_row` for once-per-row work, see `sample_raster`). `FullPassStep` runs
  the whole network on the grid drawn so far (the reference loop of PixelCNN, van den Oord et al.,
  2016); a prior's own `call_with_cache` computes only what the new
  code changes (the PixelCNN's gated stacks in the spirit of Ramachandran et al., 2017, "Fast
  Generation for Convolutional Autoregressive Models"; the Transformer's key/value caches);
- a *draw*, which turns the logits of position `t` into codes: `seeded_draw` (`draw_codes`, keyed
  by the seed and `t`, so every step draws the same codes for the same seed, in process or inside
  an exported SavedModel) or `noise_draw` (the caller's Gumbel noise and an argmax: no random op,
  the portable exports' sampler, `sample_full_from_noise`).

The loop also does classifier-free guidance (`prior.guidance`) and inpainting. With a `guidance`
tensor the step runs on a doubled batch, the grids with their labels and the same grids with the
"no label" class (caches doubled too), and position `t` is drawn from `guided_logits` of the two
halves; `guidance=None` (what `sample` passes for a scale of 1) builds exactly the plain loop.
With `codes` and `mask`, a position whose mask is False takes the given code instead of the drawn
one, so later positions see it: raster-order inpainting (a re-sampled position sees every earlier
code, kept or drawn, but not the kept codes after it).
"""

import tensorflow as tf

from prior.guidance import guided_logits

SAMPLING_METHODS = ("auto", "cached", "full")
# XLA for the cached steps, many small operations per position, where compiling them into one
# program pays; none for the full pass, a few large operations per position where it does not.
# The timings: scripts/bench_cached_sampler.py (benchmarks/results/bench_cached_sampler.md).
JIT_COMPILE = {"cached": True, "full": False}


def resolve_sampling_method(method):
    """Maps `"auto"` to the faster step: `"cached"`, faster than `"full"` on every grid measured.

    Args:
        method: `"auto"`, `"cached"` or `"full"`.

    Returns:
        `"cached"` or `"full"`.

    Raises:
        ValueError: for any other method.

    Example:

    >>> resolve_sampling_method("auto")
    'cached'
    """
    if method not in SAMPLING_METHODS:
        raise ValueError(f"method must be one of {SAMPLING_METHODS}; received method={method!r}")
    return "cached" if method == "auto" else method


# ---------------------------------------------------------------------- the draw


def _open_unit_uniform(shape, key):
    """Uniform floats in (0, 1), bit-identical with and without XLA.

    `tf.random.stateless_uniform` returns the same random bits on the TF
    kernels and under XLA but converts them to floats differently, so the
    conversion is done here with exact operations: the top 24 bits `n` give
    `(n + 0.5) / 2**24`.
    """
    bits = tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None, dtype=tf.uint32)
    top_bits = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32)
    return (top_bits + 0.5) * (2.0**-24)


def gumbel_noise(shape, seed, step):
    """Standard Gumbel noise `-log(-log(u))` of `shape`, keyed by `(seed, step)`.

    The noise of every draw in this package: `u` comes from the stateless Philox stream keyed
    by `[seed, step]` through `_open_unit_uniform`, so it is the same in plain TF graphs and
    XLA-compiled ones, in-process and exported.

    Args:
        shape: int32 shape tensor or list.
        seed: int64 scalar tensor.
        step: int scalar tensor, the second half of the key.

    Returns:
        float32 tensor of `shape`.

    Example:

    >>> gumbel_noise([2, 5], tf.constant(0, tf.int64), 3)
    """
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    return -tf.math.log(-tf.math.log(_open_unit_uniform(shape, key)))


def draw_codes(logits, temperature, seed, step, top_k=None):
    """Draws one code per row of `logits`, keyed by `(seed, step)`.

    Uses the Gumbel-max trick: `argmax(logits + temperature * g)` with
    `g = -log(-log(u))` and `u ~ Uniform(0, 1)` drawn from the stateless
    Philox stream keyed by `[seed, step]`. This is an exact draw from
    `softmax(logits / temperature)` (restricted to the `top_k` largest
    logits when `top_k` is set; ties with the k-th largest are kept), it is
    a pure function of its inputs, with the same uniforms in plain TF graphs
    and XLA-compiled ones (so every sampler, in-process or exported, draws
    the same codes for the same seed), and it tends to the argmax as
    `temperature -> 0` without overflowing.

    Args:
        logits: float `(batch, num_embeddings)` tensor.
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        step: int scalar tensor, the raster position being drawn.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.

    Returns:
        int32 `(batch,)` tensor of drawn codes.

    Example:

    >>> logits = tf.math.log([[0.1, 0.9], [0.5, 0.5]])
    >>> draw_codes(logits, tf.constant(1.0), tf.constant(7, tf.int64), 0)
    """
    logits = tf.cast(logits, tf.float32)
    if top_k is not None:
        kth_largest = tf.math.top_k(logits, top_k).values[:, -1:]
        logits = tf.where(logits < kth_largest, tf.constant(-float("inf")), logits)
    gumbel = gumbel_noise(tf.shape(logits), seed, step)
    return tf.argmax(logits + temperature * gumbel, axis=-1, output_type=tf.int32)


def seeded_draw(temperature, seed, top_k=None):
    """The draw of `sample`: `draw_codes` of position `t` keyed by `(seed, t)`.

    Args:
        temperature: float32 scalar tensor, > 0.
        seed: int64 scalar tensor.
        top_k: optional int32 scalar tensor in `[1, num_embeddings]`.

    Returns:
        A function `(logits (batch, K), index) -> int32 (batch,)` codes.

    Example:

    >>> draw = seeded_draw(tf.constant(1.0), tf.constant(0, tf.int64))
    >>> draw(tf.zeros([2, 4]), 0)
    """
    return lambda logits, index: draw_codes(logits, temperature, seed, index, top_k)


def noise_draw(gumbel, temperature):
    """The draw of the noise-driven sampler: `argmax(logits + temperature * gumbel[:, t])`.

    With the noise `draw_codes` makes for `(seed, t)` this draws the codes of `seeded_draw`
    (without `top_k`); with the noise of `vqgen.noise_sampler.gumbel_noise`, the codes of the
    portable exports' NumPy loop.

    Args:
        gumbel: float32 `(num_samples, rows, cols, K)` tensor of standard Gumbel noise.
        temperature: float32 scalar tensor, > 0.

    Returns:
        A function `(logits (num_samples, K), index) -> int32 (num_samples,)` codes.

    Example:

    >>> draw = noise_draw(tf.zeros([2, 1, 1, 4]), tf.constant(1.0))
    >>> draw(tf.math.log([[0.1, 0.2, 0.3, 0.4]] * 2), 0)  # argmax: code 3
    """
    flat_gumbel = tf.reshape(gumbel, [tf.shape(gumbel)[0], -1, gumbel.shape[-1]])  # (B, rows * cols, K)

    def draw(logits, index):
        scores = tf.cast(logits, tf.float32) + temperature * tf.gather(flat_gumbel, index, axis=1)
        return tf.argmax(scores, axis=-1, output_type=tf.int32)

    return draw


# ---------------------------------------------------------------------- the full-pass step


class FullPassStep:
    """The step of one full network pass per position, for the raster loop.

    Its cache is the flattened grid drawn so far (code 0 where nothing is drawn yet, which a causal
    prior never reads for the position being drawn): each step writes the previous code into it,
    runs the model on the whole grid and keeps the logits of position `index`. Its cost is `rows *
    cols` full passes; it is the exact reference of every prior's incremental `call_with_cache`.

    Args:
        model: a raster-order prior: called on codes (or `{"codes", "labels"}`) it returns logits
            `(batch, rows, cols, K)`; it has `grid_shape` and `num_embeddings`.

    Example:

    >>> step = FullPassStep(prior.PixelCNN(16, (4, 4)))
    >>> logits, cache = step.call_with_cache(tf.zeros([2], tf.int32), step.initial_cache(2), 0)
    """

    def __init__(self, model):
        self.model = model

    def initial_cache(self, batch):
        """The empty grid: int32 zeros `(batch, rows * cols)`."""
        rows, cols = self.model.grid_shape
        return tf.zeros([batch, rows * cols], tf.int32)

    def call_with_cache(self, previous_codes, cache, index, labels=None):
        """Logits at raster position `index` from one full pass over the grid drawn so far.

        Args:
            previous_codes: int32 `(batch,)`, the codes drawn at `index - 1` (ignored at 0).
            cache: int32 `(batch, rows * cols)`, the grid before `index - 1` was written.
            index: int32 scalar tensor in `[0, rows * cols)`.
            labels: int32 `(batch,)` for a conditional model, else None.

        Returns:
            `(logits, cache)`: float32 `(batch, K)` and the grid with `previous_codes` written.
        """
        rows, cols = self.model.grid_shape
        positions = rows * cols
        # one_hot of index -1 is all zeros: nothing is written before the first position
        cache = cache + tf.one_hot(index - 1, positions, dtype=tf.int32)[None, :] * previous_codes[:, None]
        batch = tf.shape(cache)[0]
        grid = tf.reshape(cache, [batch, rows, cols])
        logits = self.model(grid if labels is None else {"codes": grid, "labels": labels})
        logits = tf.reshape(logits, [batch, positions, self.model.num_embeddings])
        return tf.gather(logits, index, axis=1), cache


# ---------------------------------------------------------------------- the loop


def _model_labels(labels, guidance, no_label):
    """The labels of the batch the step runs on: `labels`, then as many "no label" ones with guidance."""
    if guidance is None:
        return labels
    return tf.concat([labels, tf.fill(tf.shape(labels), tf.constant(no_label, labels.dtype))], axis=0)


def _model_rows(tensor, guidance):
    """`tensor` repeated along the batch with guidance: both halves run on the same codes."""
    return tensor if guidance is None else tf.concat([tensor, tensor], axis=0)


def _logits_to_draw(logits, guidance):
    """The step's logits, or with guidance `guided_logits` of its conditional and "no label" halves."""
    if guidance is None:
        return logits
    conditional, unconditional = tf.split(logits, 2, axis=0)
    return guided_logits(conditional, unconditional, guidance)


def _flat_given(codes, mask, positions):
    """`(codes, mask)` flattened to `(B, positions)` for `_kept_or_drawn`, or None when not inpainting."""
    if codes is None:
        return None
    num = tf.shape(codes)[0]
    return tf.reshape(tf.cast(codes, tf.int32), [num, positions]), tf.reshape(mask, [num, positions])


def _kept_or_drawn(drawn, index, given):
    """The codes of raster position `index`: the drawn ones, except where inpainting keeps a given code."""
    if given is None:
        return drawn
    codes, mask = given
    return tf.where(tf.gather(mask, index, axis=1), drawn, tf.gather(codes, index, axis=1))


def sample_raster(
    step, draw, num_samples, grid_shape, labels=None, guidance=None, no_label=None, codes=None, mask=None
):
    """Samples code grids position by position in raster order.

    Position `t` feeds the code drawn at `t - 1` to `step.call_with_cache`, which returns the
    logits of position `t` and the updated cache; `draw` turns them (guided, with `guidance`) into
    the codes of position `t`, of which inpainting keeps the given ones where `mask` is False.
    That body is one `tf.while_loop` over every position, or, for a step with once-per-row work
    (a `complete_row` method: the PixelCNN's vertical stack), over the columns of each row inside
    a `tf.while_loop` over the rows: before each row after the first, `step.complete_row(row_codes,
    row_cache, labels)` of the row before returns the row state and the cache of the row's first
    position, so the state only rows change (`initial_row_cache(batch)` at the start) is not
    carried through every position.

    Args:
        step: the logits of one position: `FullPassStep(model)`, or a prior with its own
            `initial_cache(batch)` and `call_with_cache(previous_codes, cache, index, labels)`
            (and `initial_row_cache`, `complete_row` for once-per-row work).
        draw: function `(logits (num_samples, K), index) -> int32 (num_samples,)`: `seeded_draw`
            or `noise_draw`.
        num_samples: int32 scalar tensor, >= 1.
        grid_shape: `(rows, cols)` of the prior.
        labels: int32 `(num_samples,)` tensor for a conditional prior, else None.
        guidance: optional float32 scalar tensor >= 0, the classifier-free guidance scale; None
            runs the plain loop (see the module docstring).
        no_label: int, the prior's "no label" class; used with `guidance` only.
        codes: optional int32 `(num_samples, rows, cols)` tensor, the grids to inpaint.
        mask: bool tensor like `codes` (with `codes` only): True draws a position, False keeps
            the code of `codes` there.

    Returns:
        int32 `(num_samples, rows, cols)` tensor.

    Example:

    >>> model = prior.PixelCNN(16, (4, 4))
    >>> draw = seeded_draw(tf.constant(1.0), tf.constant(0, tf.int64))
    >>> grids = sample_raster(model, draw, tf.constant(2), model.grid_shape)  # the cached step
    >>> same = sample_raster(FullPassStep(model), draw, tf.constant(2), model.grid_shape)
    """
    rows, cols = grid_shape
    batch = num_samples if guidance is None else 2 * num_samples
    model_labels = _model_labels(labels, guidance, no_label)
    given = _flat_given(codes, mask, rows * cols)

    def draw_positions(first, count, cache, previous_codes):
        """Draws positions `first .. first + count - 1`: `(cache, previous_codes, codes (B, count))`."""

        def draw_position(offset, cache, previous_codes, drawn_codes):
            index = first + offset
            logits, cache = step.call_with_cache(previous_codes, cache, index, model_labels)
            drawn = _kept_or_drawn(draw(_logits_to_draw(logits, guidance), index), index, given)
            return offset + 1, cache, _model_rows(drawn, guidance), drawn_codes.write(offset, drawn)

        _, cache, previous_codes, drawn_codes = tf.while_loop(
            lambda offset, *_: offset < count,
            draw_position,
            (
                tf.constant(0),
                cache,
                previous_codes,
                tf.TensorArray(tf.int32, size=count, element_shape=[None]),
            ),
        )
        return cache, previous_codes, tf.transpose(drawn_codes.stack())

    if not hasattr(step, "complete_row"):  # one loop over every position
        _, _, drawn_codes = draw_positions(
            0, rows * cols, step.initial_cache(batch), tf.zeros([batch], tf.int32)
        )
        return tf.reshape(drawn_codes, [num_samples, rows, cols])

    # Row 0 from the initial cache; each further row from `complete_row` of the row before, called
    # in the same iteration that draws the row: the position cache is not carried from one
    # iteration of the row loop to the next (carried, XLA ran the PixelCNN's loop measurably slower:
    # scripts/bench_samplers.py), and no `complete_row` runs after the last row.
    _, previous_codes, first_row = draw_positions(
        0, cols, step.initial_cache(batch), tf.zeros([batch], tf.int32)
    )

    def draw_row(row, row_cache, row_codes, previous_codes, grid_rows):
        row_cache, cache = step.complete_row(_model_rows(row_codes, guidance), row_cache, model_labels)
        _, previous_codes, row_codes = draw_positions(row * cols, cols, cache, previous_codes)
        return row + 1, row_cache, row_codes, previous_codes, grid_rows.write(row, row_codes)

    _, _, _, _, grid_rows = tf.while_loop(
        lambda row, *_: row < rows,
        draw_row,
        (
            tf.constant(1),
            step.initial_row_cache(batch),
            first_row,
            previous_codes,
            tf.TensorArray(tf.int32, size=rows, element_shape=[None, cols]).write(0, first_row),
        ),
    )
    return tf.transpose(grid_rows.stack(), [1, 0, 2])  # (B, rows, cols)


def sample_full_from_noise(model, gumbel, temperature, labels=None, guidance=None):
    """Samples code grids with full passes and the caller's Gumbel noise instead of a seed.

    `sample_raster` with `FullPassStep` and `noise_draw`: the graph holds no random op. This is
    the loop of the exported `sample_from_noise` signature, and `vqgen.noise_sampler` runs the
    same loop in NumPy around any runtime's one-pass logits (LiteRT, ONNX), giving the same grids
    for the same noise.

    Args:
        model: a raster-order prior (`PixelCNN` or `Transformer`), as for `FullPassStep`.
        gumbel: float32 `(num_samples, rows, cols, K)` tensor of standard Gumbel noise.
        temperature: float32 scalar tensor, > 0.
        labels: int32 `(num_samples,)` tensor for a conditional model, else None.
        guidance: optional float32 scalar tensor >= 0, the classifier-free guidance scale; None
            runs the plain loop.

    Returns:
        int32 `(num_samples, rows, cols)` tensor.

    Example:

    >>> gumbel = -tf.math.log(-tf.math.log(tf.random.uniform([2, 4, 4, 16], 1e-7, 1.0)))
    >>> grids = sample_full_from_noise(prior.PixelCNN(16, (4, 4)), gumbel, tf.constant(1.0))
    """
    return sample_raster(
        FullPassStep(model),
        noise_draw(gumbel, temperature),
        tf.shape(gumbel)[0],
        model.grid_shape,
        labels,
        guidance,
        model.num_classes,
    )
