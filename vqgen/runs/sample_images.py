"""Generating images from a run: sample code grids from the prior, decode them with the VQ-VAE."""

import io
import os

import numpy as np

from vqgen.runs.atomic_file import write_bytes_atomically
from vqgen.runs.image_grid import save_image_grid
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.settings import SAMPLE_DEFAULTS


def labels_by_class(num, num_classes):
    """Spreads `num` samples evenly over the classes `0 .. num_classes - 1`, in class order.

    Class `c` gets `num // num_classes` samples, one more when `c < num % num_classes`; classes
    left with none (when `num < num_classes`) are skipped.

    Args:
        num: int >= 1. How many samples.
        num_classes: int >= 1. How many classes the prior knows.

    Returns:
        `(labels, row_lengths)`: `labels` a list of `num` ints, non-decreasing; `row_lengths` the
        number of samples of each class that got any (one grid row per class).

    Example:
    >>> labels_by_class(5, 3)
    ([0, 0, 1, 1, 2], [2, 2, 1])
    """
    counts = [num // num_classes + (label < num % num_classes) for label in range(num_classes)]
    labels = [label for label, count in enumerate(counts) for _ in range(count)]
    return labels, [count for count in counts if count]


def sample_images(
    run_path,
    num=SAMPLE_DEFAULTS.num,
    temperature=SAMPLE_DEFAULTS.temperature,
    top_k=SAMPLE_DEFAULTS.top_k,
    labels=None,
    seed=None,
    out=None,
    overwrite=False,
):
    """Samples `num` images from a run's prior and VQ-VAE.

    A class-conditional prior given no labels samples every class in turn: `num` spread evenly over
    the classes in order (see `labels_by_class`), and the PNG grid has one row per class. Otherwise
    the grid has rows of 8.

    Args:
        run_path: str. A run folder with vqvae.keras and prior.keras.
        num: int >= 1. How many images.
        temperature: float > 0. Softmax temperature of the prior.
        top_k: int in [1, K] or None. Sample among the top_k most likely codes only.
        labels: int (class of every image), int sequence (one class per image) or None (a
            conditional prior then samples every class, one row each).
        seed: int or None. Same seed, same images.
        out: str or None. A `.png` path: writes the image grid there and the codes next to it
            as `<out without .png>.npy`.
        overwrite: bool. Replace an existing `out` (or its `.npy`) instead of refusing.

    Returns:
        `(images float32 [num, H, W, C], codes int32 [num, h, w])`; codes `[num, h, w, d]` for a
        residual-VQ model (the prior samples them depth-interleaved, see `VQVAE.to_token_grid`).

    Raises:
        FileNotFoundError: the run, its VQ-VAE or its prior is missing.
        FileExistsError: `out` or its `.npy` exists and `overwrite` is False.
        ValueError: bad sampling arguments or labels (see `prior.PixelCNN.sample`).

    Example:
    >>> images, codes = sample_images("runs/digits", num=16, seed=0, out="samples.png")  # doctest: +SKIP
    """
    run = RunFolder(run_path)
    run.read_config()
    run.require("vqvae")
    run.require("prior")
    if out is not None and not str(out).endswith(".png"):
        raise ValueError(f"--out must name a .png file; received {out}")
    codes_out = None if out is None else str(out)[: -len(".png")] + ".npy"
    existing = [path for path in (out, codes_out) if path is not None and os.path.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; choose another --out or pass --overwrite.")
    vqvae = load_stage_model(run, "vqvae")
    pixelcnn = load_stage_model(run, "prior")
    layout = dict(columns=min(8, num))  # rows of 8
    if labels is None and pixelcnn.conditional:
        labels, row_lengths = labels_by_class(num, pixelcnn.num_classes)
        layout = dict(row_lengths=row_lengths)  # one row per class
    tokens = pixelcnn.sample(num, temperature=temperature, top_k=top_k, labels=labels, seed=seed)
    codes = vqvae.from_token_grid(tokens)  # (num, h, w), or (num, h, w, d) for residual VQ
    images = vqvae.decode(codes)
    if out is not None:
        save_image_grid(out, images, **layout)
        buffer = io.BytesIO()
        np.save(buffer, codes)
        write_bytes_atomically(codes_out, buffer.getvalue())
    return images, codes
