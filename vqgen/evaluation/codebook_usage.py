"""How a whole dataset uses a codebook: counts, codes used, perplexity, dead codes, a histogram picture.

Batch perplexity during training depends on the batch size; these figures count every code of
every grid of a dataset at once.
"""

import numpy as np


def codebook_usage(codes, num_embeddings):
    """Counts the codes of a dataset and summarises how evenly they use the codebook.

    Perplexity is `exp(H)` with `H` the entropy (nats) of the empirical code distribution: `K` when
    every code is equally frequent, 1 when one code is used everywhere.

    Args:
        codes: integer array of any shape with values in `[0, num_embeddings)` (for residual VQ,
            pass one level's codes: each level has its own codebook).
        num_embeddings: int. The codebook size K.

    Returns:
        dict with `counts` (int64 `[K]`), `codes_used` (int), `dead_codes` (int, codes never used),
        `fraction_used` (float) and `perplexity` (float).

    Raises:
        ValueError: codes outside `[0, num_embeddings)` or not integers.

    Example:
    >>> codebook_usage(np.array([0, 0, 1, 3]), 4)["codes_used"]
    3
    """
    codes = np.asarray(codes)
    if codes.size and not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integers. Received: dtype={codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= num_embeddings):
        raise ValueError(
            f"codes must be in [0, {num_embeddings}). Received: values in [{codes.min()}, {codes.max()}]"
        )
    counts = np.bincount(codes.reshape(-1), minlength=num_embeddings).astype(np.int64)
    total = counts.sum()
    probabilities = counts[counts > 0] / max(total, 1)
    entropy = float(-np.sum(probabilities * np.log(probabilities)))
    used = int(np.count_nonzero(counts))
    return {
        "counts": counts,
        "codes_used": used,
        "dead_codes": int(num_embeddings - used),
        "fraction_used": used / num_embeddings,
        "perplexity": float(np.exp(entropy)) if total else 0.0,
    }


def tuple_usage(codes, num_embeddings):
    """How a dataset uses the joint codes of residual VQ: the distinct d-tuples of a position's codes.

    Each level's `codebook_usage` can be full while the levels' codes combine into few tuples; a
    prior over the codes models the tuples, so their number and perplexity are reported beside.

    Args:
        codes: integer array `[..., d]`, the d levels' codes of each position, each in
            `[0, num_embeddings)`.
        num_embeddings: int. The codebook size K of every level.

    Returns:
        dict with `tuples_used` (int, distinct tuples), `possible_tuples` (int, `K**d`),
        `fraction_used` (float) and `perplexity` (float, `exp(H)` of the tuples' distribution).

    Raises:
        ValueError: `codes` of rank below 1.

    Example:
    >>> tuple_usage(np.array([[0, 1], [0, 1], [1, 0]]), 2)["tuples_used"]
    2
    """
    codes = np.asarray(codes)
    if codes.ndim < 1:
        raise ValueError(f"codes must be an [..., d] array. Received: shape={codes.shape}")
    _, counts = np.unique(codes.reshape(-1, codes.shape[-1]), axis=0, return_counts=True)  # (tuples,)
    probabilities = counts / max(counts.sum(), 1)
    possible = int(num_embeddings) ** codes.shape[-1]
    return {
        "tuples_used": len(counts),
        "possible_tuples": possible,
        "fraction_used": len(counts) / possible,
        "perplexity": float(np.exp(-np.sum(probabilities * np.log(probabilities)))) if len(counts) else 0.0,
    }


def usage_histogram_picture(counts, height=120, bar_width=None):
    """Draws code counts as a bar chart: one bar per code index, heights relative to the largest.

    Bars are white on black; a dead code shows as a red tick on the baseline (so the picture
    shows where they are), and the picture is RGB uint8, for a PNG or a TensorBoard image.

    Args:
        counts: integer array `[K]`.
        height: int >= 8. Picture height in pixels.
        bar_width: int >= 1 or None: pixels per code; None makes the picture about 512 wide.

    Returns:
        uint8 array `[height, K * bar_width, 3]`.

    Example:
    >>> usage_histogram_picture(np.array([3, 0, 1]), height=10, bar_width=2).shape
    (10, 6, 3)
    """
    counts = np.asarray(counts, np.float64)
    if bar_width is None:
        bar_width = max(1, 512 // max(len(counts), 1))
    bars = np.round(counts / max(counts.max(), 1.0) * (height - 2)).astype(int)  # (K,)
    rows = np.arange(height)[::-1, None]  # row 0 is the top
    filled = rows < bars[None, :]  # (height, K)
    picture = np.zeros((height, len(counts), 3), np.uint8)
    picture[filled] = 255
    picture[-1, counts == 0] = (255, 0, 0)
    return np.repeat(picture, bar_width, axis=1)
