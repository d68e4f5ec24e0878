"""Sampling code grids from a prior's exported step with the randomness given as input: NumPy only.

The portable exports (`vqgen.portable_export`: LiteRT and ONNX) hold no random op and no sampling
loop: they hold the prior's cached step (`prior_start`, `prior_step` and, for the PixelCNN,
`prior_row`, with the cache as named tensors in and out) and `prior_logits`, one full pass of the
prior. This module is the loop that drives them, and it is copied into every portable export as
`noise_sampler.py`, so the export needs only NumPy and its runtime. `sample_raster` is the raster
loop of `prior.sampling.sample_raster` over a step (`CachedStep`, or `FullPassStep`: one
`prior_logits` call per position) with the noise draw: position `t` (raster order) is drawn by the
Gumbel-max trick, `argmax(logits[:, t] + temperature * gumbel[:, t])`, from the caller's Gumbel
noise; the exported SavedModel's `sample_from_noise` signature computes the same, so one noise
tensor gives the same codes in all three formats (up to the runtimes' float rounding of the
logits). With classifier-free guidance (a prior trained with label dropout) each call runs a
doubled batch (and doubled caches), the labels and the "no label" class, and draws from
`u + guidance * (c - u)` as the SavedModel does.

For a MaskGIT prior, whose `prior_logits` reads grids holding the mask token `K`,
`maskgit_sample_with_noise` is its iterative decoding (`prior.parallel_decode`): one call per step,
the draws from Gumbel noise `[N, steps, rows, cols, K]` and the confidences' noise from Gumbel noise
`[N, steps, rows, cols]` (`maskgit_noise` makes both), on the cosine plan `cosine_masked_counts`;
the SavedModel's `sample_from_noise` of a MaskGIT takes the same two tensors.

Example (a LiteRT export of a PixelCNN; a signature runner is a function of named arrays that
returns named arrays, and an ONNX Runtime session wrapped so works the same way):

    import numpy as np

    from ai_edge_litert.interpreter import Interpreter
    from noise_sampler import CachedStep, gumbel_noise, sample_raster

    def model(name):
        return Interpreter(model_path=f"export/{name}.tflite").get_signature_runner()

    step = CachedStep(model("prior_start"), model("prior_step"), model("prior_row"))
    noise = gumbel_noise(16, (7, 7), 256, seed=0)
    codes = sample_raster(step, noise, labels=np.arange(16) % 10)
"""

import math

import numpy as np

# The prefixes of a cached step's outputs for a cache tensor NAME (see `CachedStep`)
NEXT, UPDATE, START = "next_", "update_", "start_"

# The scale of the Gumbel noise added to MaskGIT's confidences, annealed linearly to 0 over the
# steps (the paper's "choice temperature"): `prior.parallel_decode.CONFIDENCE_NOISE`, which a test
# checks this equals.
CONFIDENCE_NOISE = 4.5


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


class FullPassStep:
    """The step of one full `prior_logits` pass per position, for `sample_raster` (the reference loop).

    As `prior.sampling.FullPassStep`: its cache is the flattened grid drawn so far (code 0 where
    nothing is drawn yet), each step writes the previous code into it and keeps the logits of
    position `index` of a full pass.

    Args:
        prior_logits: function `(codes int32 [N, rows, cols], labels int32 [N] or None) -> logits
            float32 [N, rows, cols, K]`, e.g. an exported `prior_logits` model.
        grid_shape: `(rows, cols)` of the prior's grids.

    Example:
        step = FullPassStep(lambda c, y: logits(codes=c, labels=y)["logits"], (7, 7))
    """

    def __init__(self, prior_logits, grid_shape):
        self.prior_logits = prior_logits
        self.grid_shape = tuple(grid_shape)

    def initial_cache(self, batch):
        """The empty grid: int32 zeros `[batch, rows * cols]`."""
        return np.zeros((batch, self.grid_shape[0] * self.grid_shape[1]), np.int32)

    def call_with_cache(self, previous_codes, cache, index, labels=None):
        """`(logits [N, K] of position index, the grid with previous_codes written at index - 1)`."""
        cache = cache.copy()
        if index > 0:
            cache[:, index - 1] = previous_codes
        logits = np.asarray(self.prior_logits(cache.reshape(-1, *self.grid_shape), labels), np.float32)
        return logits.reshape(len(cache), cache.shape[1], -1)[:, index], cache


class CachedStep:
    """The exported cached step of a prior (`prior_start`, `prior_step`, `prior_row`), for `sample_raster`.

    Each model is a function of NumPy arrays given by name that returns a dict of named arrays
    (a LiteRT signature runner, or ONNX Runtime's `session.run` wrapped so). The cache is the dict
    of the tensors named `cache_*` (the position cache) and `row_cache_*` (the row cache) that
    `prior_start` returns. A step returns only what it changes: for a cache tensor NAME, its next
    value `next_NAME`, or a slice `update_NAME` to write at `start_NAME` (one start per axis),
    or nothing when NAME stays as it was.

    Args:
        start: the `prior_start` model: `batch` int32 scalar -> the initial caches.
        step: the `prior_step` model: `previous_codes`, `index`, (`labels`,) `cache_*` ->
            `logits` and `next_cache_*`.
        row: the `prior_row` model (`row_codes`, (`labels`,) `row_cache_*` -> `next_row_cache_*`,
            `next_cache_*`), or None for a prior without once-per-row work (the Transformer).

    Example:
        step = CachedStep(runner("prior_start"), runner("prior_step"), runner("prior_row"))
        codes = sample_raster(step, gumbel_noise(16, (7, 7), 256, seed=0), labels=labels)
    """

    def __init__(self, start, step, row=None):
        self.start, self.step, self.row = start, step, row
        if row is not None:  # once-per-row work: `sample_raster` calls `complete_row` after each row
            self.initial_row_cache = self._initial_row_cache
            self.complete_row = self._complete_row

    def _initial(self, batch, prefix):
        caches = self.start(batch=np.array(batch, np.int32))
        # copies the loop may write into (`update_NAME`)
        return {name: np.array(value) for name, value in caches.items() if name.startswith(prefix)}

    def initial_cache(self, batch):
        """The position cache before the first position: `{name: array}` of the `cache_*` tensors."""
        return self._initial(batch, "cache_")

    def _initial_row_cache(self, batch):
        return self._initial(batch, "row_cache_")

    def call_with_cache(self, previous_codes, cache, index, labels=None):
        """`(logits [N, K] of position index, the next position cache)` from one `prior_step` call."""
        inputs = {"previous_codes": previous_codes, "index": np.array(index, np.int32), **cache}
        outputs = self.step(**inputs, **({} if labels is None else {"labels": labels}))
        return outputs["logits"], _changed(cache, outputs)

    def _complete_row(self, row_codes, row_cache, labels=None):
        outputs = self.row(row_codes=row_codes, **row_cache, **({} if labels is None else {"labels": labels}))
        cache = {
            name[len(NEXT) :]: value for name, value in outputs.items() if name.startswith(NEXT + "cache_")
        }
        return _changed(row_cache, outputs), cache


def _changed(cache, outputs):
    """`cache` with a step's `outputs` applied: `next_NAME` replaces NAME, `update_NAME` is written
    into NAME (in place) at `start_NAME`, clamped as XLA's dynamic update slice clamps it."""
    cache = dict(cache)
    for name, value in cache.items():
        if NEXT + name in outputs:
            cache[name] = outputs[NEXT + name]
        elif UPDATE + name in outputs:
            update = outputs[UPDATE + name]
            starts = np.clip(outputs[START + name], 0, np.subtract(value.shape, update.shape))
            value[tuple(slice(start, start + size) for start, size in zip(starts, update.shape))] = update
    return cache


def sample_raster(step, gumbel, temperature=1.0, labels=None, guidance=1.0, no_label=None):
    """Draws code grids position by position: the loop of `prior.sampling.sample_raster` in NumPy.

    Position `t` (raster order) feeds the codes drawn at `t - 1` to `step.call_with_cache`, which
    returns the logits of `t` and the next cache; the codes of `t` are `argmax(logits + temperature
    * gumbel[:, t])`. A step with `complete_row` (the PixelCNN's vertical stack) gets each row's
    codes once the row is drawn and returns the next row's caches. With guidance every call runs
    on the doubled batch (the grids with their labels, then with `no_label`; the caches doubled
    too) and the codes are drawn from `u + guidance * (c - u)`.

    Args:
        step: `FullPassStep`, `CachedStep` or any object with `initial_cache(batch)` and
            `call_with_cache(previous_codes, cache, index, labels)` (and `initial_row_cache(batch)`,
            `complete_row(row_codes, row_cache, labels)`).
        gumbel: float32 array `[N, rows, cols, K]`, e.g. from `gumbel_noise`.
        temperature: float > 0. Defaults to 1.
        labels: int array `[N]` for a class-conditional prior, else None.
        guidance: float >= 0, the classifier-free guidance scale; 1 (the default) draws from the
            conditional logits `c` alone, any other value from `u + guidance * (c - u)`, `u` the
            logits given the "no label" class.
        no_label: int, the "no label" class of a prior trained with label dropout (its
            `num_classes`); needed when `guidance` is not 1.

    Returns:
        int32 array `[N, rows, cols]`.

    Raises:
        ValueError: `temperature` <= 0, `gumbel` not 4-dimensional, or a guidance other than 1
            that is negative or lacks `labels` and `no_label`.

    Example:
        codes = sample_raster(CachedStep(start, step, row), gumbel_noise(4, (7, 7), 256, seed=0))
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

    def model_rows(array):  # both halves of the guided batch run on the same codes
        return np.concatenate([array, array]) if guided else array

    batch = 2 * num if guided else num
    flat_gumbel = gumbel.reshape(num, rows * cols, -1)
    codes = np.zeros((num, rows * cols), np.int32)
    cache = step.initial_cache(batch)
    by_rows = hasattr(step, "complete_row")
    row_cache = step.initial_row_cache(batch) if by_rows else None
    previous_codes = np.zeros(batch, np.int32)
    for index in range(rows * cols):
        logits, cache = step.call_with_cache(previous_codes, cache, index, labels)
        logits = np.asarray(logits, np.float32)
        if guided:
            conditional, unconditional = logits[:num], logits[num:]
            logits = unconditional + np.float32(guidance) * (conditional - unconditional)
        codes[:, index] = np.argmax(logits + temperature * flat_gumbel[:, index], axis=-1)
        previous_codes = model_rows(codes[:, index])
        if by_rows and (index + 1) % cols == 0 and index + 1 < rows * cols:  # a row is complete
            row_codes = model_rows(codes[:, index + 1 - cols : index + 1])
            row_cache, cache = step.complete_row(row_codes, row_cache, labels)
    return codes.reshape(num, rows, cols)


def sample_with_noise(prior_logits, gumbel, temperature=1.0, labels=None, guidance=1.0, no_label=None):
    """Draws code grids with one full `prior_logits` pass per position: `sample_raster(FullPassStep(...))`.

    Args:
        prior_logits: function `(codes int32 [N, rows, cols], labels int32 [N] or None) -> logits
            float32 [N, rows, cols, K]`, e.g. an exported `prior_logits` model.
        gumbel, temperature, labels, guidance, no_label: as for `sample_raster`.

    Returns:
        int32 array `[N, rows, cols]`.

    Raises:
        ValueError: as `sample_raster`.

    Example:
        codes = sample_with_noise(lambda c, y: logits(codes=c, labels=y)["logits"], noise, labels=labels)
    """
    grid_shape = np.shape(gumbel)[1:3]
    return sample_raster(
        FullPassStep(prior_logits, grid_shape), gumbel, temperature, labels, guidance, no_label
    )


# ---------------------------------------------------------------------- MaskGIT's parallel decoding


def maskgit_noise(num, steps, grid_shape, num_embeddings, seed=None):
    """The noise of `maskgit_sample_with_noise`: standard Gumbel noise for the draws and the confidences.

    Args:
        num: int >= 1. Grids to sample.
        steps: int in `[1, rows * cols]`. Decoding steps (network passes).
        grid_shape: `(rows, cols)` of the prior's grids.
        num_embeddings: int. The codebook size K.
        seed: int or None. Seed of NumPy's default generator (PCG64); the two arrays come from two
            independent streams spawned from it.

    Returns:
        dict with "gumbel", float32 `[num, steps, rows, cols, num_embeddings]`, and
        "confidence_gumbel", float32 `[num, steps, rows, cols]`: the inputs of that name of
        `maskgit_sample_with_noise` and of the SavedModel's `sample_from_noise`.

    Example:

    >>> noise = maskgit_noise(16, 8, (7, 7), 256, seed=0)
    >>> noise["gumbel"].shape, noise["confidence_gumbel"].shape
    ((16, 8, 7, 7, 256), (16, 8, 7, 7))
    """
    draws_seed, confidence_seed = np.random.SeedSequence(seed).spawn(2)
    grid_steps = (steps, *grid_shape)
    return {
        "gumbel": gumbel_noise(num, grid_steps, num_embeddings, draws_seed),
        "confidence_gumbel": gumbel_noise(num, grid_steps, 1, confidence_seed)[..., 0],
    }


def cosine_masked_counts(steps, total):
    """How many of `total` positions stay masked after each of `steps` steps: the cosine plan.

    After step `t` (0-based) `floor(total * cos(pi / 2 * (t + 1) / steps))`, clipped so that every
    step commits at least one code and every later step still has one to commit; the last count is
    0. The plan of `prior.mask_schedule.masked_counts(steps, total, "cosine")`.

    Args:
        steps: int in `[1, total]`.
        total: int >= 1, the positions of a grid.

    Returns:
        int32 array `[steps]`, strictly decreasing to 0.

    Raises:
        ValueError: `steps` outside `[1, total]`.

    Example:

    >>> cosine_masked_counts(4, 16)
    array([14, 11,  6,  0], dtype=int32)
    """
    if not 1 <= steps <= total:
        raise ValueError(f"steps must be in [1, {total}] (rows * cols). Received: steps={steps!r}")
    counts = np.zeros(steps, np.int32)
    left = total
    for step in range(steps):
        wanted = math.floor(total * math.cos((step + 1) / steps * (math.pi / 2)))
        left = min(max(wanted, steps - step - 1), left - 1)
        counts[step] = left
    return counts


def _log_softmax(logits):
    """`log(softmax(logits))` along the last axis, in float32."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def maskgit_sample_with_noise(
    prior_logits, gumbel, confidence_gumbel, temperature=1.0, labels=None, guidance=1.0, no_label=None
):
    """MaskGIT's iterative decoding from all-masked grids, one `prior_logits` call per step.

    The loop of `prior.parallel_decode.decode` with the noise draws of its `sample_from_noise` (the
    SavedModel's `sample_from_noise` signature of a MaskGIT). The grids start as the mask token `K`
    everywhere; step `t` of `steps` (`gumbel.shape[1]`):

    1. draws every masked position `p` of grid `n` as `argmax(logits[n, p] + temperature *
       gumbel[n, t, p])` (`p` the raster position `(row, col)`, logits guided as below);
    2. scores each draw by `log_softmax(logits[n, p])[drawn] + CONFIDENCE_NOISE * (1 - (t + 1) /
       steps) * confidence_gumbel[n, t, p]`, the positions decoded before scoring +inf;
    3. keeps the draws but for the `cosine_masked_counts(steps, rows * cols)[t]` lowest scores
       (ties broken by position), which become `K` again.

    With guidance each call runs the doubled batch, the labels and the "no label" class, and the
    logits are `u + guidance * (c - u)`.

    Args:
        prior_logits: function `(codes int32 [N, rows, cols] in [0, K], labels int32 [N] or None) ->
            logits float32 [N, rows, cols, K]`, e.g. an exported MaskGIT's `prior_logits` model.
        gumbel: float32 array `[N, steps, rows, cols, K]` of standard Gumbel noise (see `maskgit_noise`).
        confidence_gumbel: float32 array `[N, steps, rows, cols]` of standard Gumbel noise.
        temperature: float > 0. Defaults to 1.
        labels: int array `[N]` for a class-conditional prior, else None.
        guidance: float >= 0, the classifier-free guidance scale; 1 (the default): none.
        no_label: int, the "no label" class of a prior trained with label dropout (its
            `num_classes`); needed when `guidance` is not 1.

    Returns:
        int32 array `[N, rows, cols]`.

    Raises:
        ValueError: noise of the wrong shape, `steps` outside `[1, rows * cols]`, `temperature`
            <= 0, or a guidance other than 1 that is negative or lacks `labels` and `no_label`.

    Example:

    >>> noise = maskgit_noise(4, 8, (7, 7), 256, seed=0)
    >>> codes = maskgit_sample_with_noise(logits, noise["gumbel"], noise["confidence_gumbel"])
    """
    gumbel = np.asarray(gumbel, np.float32)
    confidence_gumbel = np.asarray(confidence_gumbel, np.float32)
    if gumbel.ndim != 5 or confidence_gumbel.shape != gumbel.shape[:4]:
        raise ValueError(
            "gumbel must have shape [N, steps, rows, cols, K] and confidence_gumbel [N, steps, rows, cols]. "
            f"Received: shapes {gumbel.shape} and {confidence_gumbel.shape}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0. Received: temperature={temperature!r}")
    num, steps, rows, cols, mask_id = gumbel.shape  # the mask token is K
    positions = rows * cols
    counts = cosine_masked_counts(steps, positions)
    guided = guidance != 1
    if guided and not (guidance >= 0 and labels is not None and no_label is not None):
        raise ValueError(
            f"guidance {guidance!r} needs a value >= 0, labels and no_label (the prior's num_classes)"
        )
    labels = None if labels is None else np.asarray(labels, np.int32)
    if guided:  # the batch of every call: the grids with their labels, then with "no label"
        labels = np.concatenate([labels, np.full_like(labels, no_label)])
    temperature = np.float32(temperature)
    codes = np.full((num, positions), mask_id, np.int32)
    for step in range(steps):
        masked = codes == mask_id
        batch = np.concatenate([codes, codes]) if guided else codes
        logits = np.asarray(prior_logits(batch.reshape(-1, rows, cols), labels), np.float32)
        logits = logits.reshape(len(batch), positions, mask_id)
        if guided:
            conditional, unconditional = logits[:num], logits[num:]
            logits = unconditional + np.float32(guidance) * (conditional - unconditional)
        scores = logits + temperature * gumbel[:, step].reshape(num, positions, -1)
        drawn = np.where(masked, np.argmax(scores, axis=-1), codes).astype(np.int32)
        log_probs = np.take_along_axis(_log_softmax(logits), drawn[..., None], axis=-1)[..., 0]
        annealing = np.float32(CONFIDENCE_NOISE) * (np.float32(1) - np.float32(step + 1) / np.float32(steps))
        noise = confidence_gumbel[:, step].reshape(num, positions)
        confidence = np.where(masked, log_probs + annealing * noise, np.float32(np.inf))
        ranks = np.argsort(np.argsort(confidence, axis=-1, kind="stable"), axis=-1, kind="stable")
        codes = np.where(ranks < counts[step], mask_id, drawn).astype(np.int32)
    return codes.reshape(num, rows, cols)
