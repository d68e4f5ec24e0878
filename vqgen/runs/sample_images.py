"""Generating images from a run: sample code grids from the prior (or inpaint an image's), decode them."""

import io
import os

import numpy as np

from prior.registry import PARALLEL, kind_of
from vqgen.data.image_folder import decode_image_file
from vqgen.runs.atomic_file import write_bytes_atomically
from vqgen.runs.image_grid import save_image_grid
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.settings import GUIDANCE_BY_PRIOR, SAMPLE_DEFAULTS


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


def default_guidance(prior, guidance=None):
    """The guidance scale `prior` samples with: `guidance` when given, else the workflow's default.

    The default for a prior trained with label dropout (`prior.supports_guidance`) is the scale
    measured for its kind, `GUIDANCE_BY_PRIOR` of vqgen/settings.py (scripts/compare_guidance.py);
    for any other prior 1, plain sampling.

    Args:
        prior: a trained prior of `prior.registry.PRIORS`.
        guidance: float >= 0 or None. A scale the user asked for (returned as it is), or None.

    Returns:
        float >= 0.

    Raises:
        ValueError: `prior` is not a registered prior.

    Example:
    >>> from prior import PixelCNN
    >>> default_guidance(PixelCNN(num_embeddings=8, grid_shape=(2, 2)))  # unconditional: plain sampling
    1.0
    """
    if guidance is not None:
        return guidance
    return float(GUIDANCE_BY_PRIOR[kind_of(prior).name]) if prior.supports_guidance else 1.0


def _check_class_labels(labels, prior):
    """Refuses labels outside the run's classes, the prior's "no label" class included.

    The prior itself accepts its "no label" class (`num_classes`, with label dropout) as a label;
    a user asks for samples of no class with `--guidance 0` instead.

    Raises:
        ValueError: a label outside `[0, num_classes)` of a class-conditional prior.
    """
    if labels is None or not prior.conditional:
        return
    values = np.atleast_1d(np.asarray(labels))
    if values.size and np.issubdtype(values.dtype, np.integer):
        if values.min() < 0 or values.max() >= prior.num_classes:
            raise ValueError(
                f"labels must lie in [0, {prior.num_classes}) (the run's classes); received "
                f"{values.min()}..{values.max()}; for samples of no class use --guidance 0"
            )


def sample_images(
    run_path,
    num=SAMPLE_DEFAULTS.num,
    temperature=SAMPLE_DEFAULTS.temperature,
    top_k=SAMPLE_DEFAULTS.top_k,
    guidance=SAMPLE_DEFAULTS.guidance,
    labels=None,
    seed=None,
    out=None,
    overwrite=False,
    steps=SAMPLE_DEFAULTS.steps,
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
        guidance: float >= 0 or None. Classifier-free guidance scale (1: none; other values need a
            conditional prior trained with label dropout, see `prior.guidance`); None: the scale
            measured for the prior's kind (`default_guidance`).
        labels: int (class of every image), int sequence (one class per image) or None (a
            conditional prior then samples every class, one row each).
        seed: int or None. Same seed, same images.
        out: str or None. A `.png` path: writes the image grid there and the codes next to it
            as `<out without .png>.npy`.
        overwrite: bool. Replace an existing `out` (or its `.npy`) instead of refusing.
        steps: int or None. Decoding steps of a MaskGIT prior (None: its default); refused by
            the autoregressive priors.

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
    run = _trained_run(run_path)
    codes_out = _codes_path(out, overwrite)
    vqvae = load_stage_model(run, "vqvae")
    prior = load_stage_model(run, "prior")
    layout = dict(columns=min(8, num))  # rows of 8
    if labels is None and prior.conditional:
        labels, row_lengths = labels_by_class(num, prior.num_classes)
        layout = dict(row_lengths=row_lengths)  # one row per class
    _check_class_labels(labels, prior)
    tokens = prior.sample(
        num,
        temperature=temperature,
        top_k=top_k,
        labels=labels,
        seed=seed,
        guidance=default_guidance(prior, guidance),
        **_steps_option(prior, steps),
    )
    codes = vqvae.from_token_grid(tokens)  # (num, h, w), or (num, h, w, d) for residual VQ
    images = vqvae.decode(codes)
    _write_outputs(out, codes_out, images, codes, layout)
    return images, codes


def _steps_option(prior, steps):
    """`{"steps": steps}` for a parallel-decoding prior (MaskGIT; `{}` for None); raster priors refuse it."""
    if steps is None:
        return {}
    if kind_of(prior).decoding != PARALLEL:
        raise ValueError(
            f"--steps is for a MaskGIT prior; this run's prior is a {type(prior).__name__}, "
            "which draws one code per step (drop --steps)"
        )
    return {"steps": steps}


def _trained_run(run_path):
    """The `RunFolder` of a run with both stages trained, or FileNotFoundError."""
    run = RunFolder(run_path)
    run.read_config()
    run.require("vqvae")
    run.require("prior")
    return run


def _codes_path(out, overwrite):
    """The `.npy` path beside the `.png` `out` (None without `out`); refuses to replace either unasked."""
    if out is not None and not str(out).endswith(".png"):
        raise ValueError(f"--out must name a .png file; received {out}")
    codes_out = None if out is None else str(out)[: -len(".png")] + ".npy"
    existing = [path for path in (out, codes_out) if path is not None and os.path.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; choose another --out or pass --overwrite.")
    return codes_out


def _write_outputs(out, codes_out, images, codes, layout):
    """Writes the image grid to `out` and the codes to `codes_out`, atomically; nothing without `out`."""
    if out is None:
        return
    save_image_grid(out, images, **layout)
    buffer = io.BytesIO()
    np.save(buffer, codes)
    write_bytes_atomically(codes_out, buffer.getvalue())


def parse_region(text):
    """Parses `--region`: "y0,x0,y1,x1" -> a tuple of four ints (a pixel box, y1 and x1 excluded).

    Args:
        text: str, four comma-separated integers.

    Returns:
        tuple `(y0, x0, y1, x1)`.

    Raises:
        ValueError: for any other form.

    Example:
    >>> parse_region("0, 14, 28, 28")
    (0, 14, 28, 28)
    """
    try:
        region = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        region = ()
    if len(region) != 4:
        raise ValueError(f"--region must be y0,x0,y1,x1 (four integers, pixels); received {text!r}")
    return region


def region_cells(region, image_shape, grid_shape):
    """The code cells a pixel box overlaps, as a bool grid.

    Cell `(r, c)` of an `h x w` code grid covers the pixels `[r f, (r + 1) f) x [c f, (c + 1) f)`
    with `f = H / h` (the VQ-VAE's downsampling); it is marked when it shares a pixel with the box.

    Args:
        region: `(y0, x0, y1, x1)` ints, the box `[y0, y1) x [x0, x1)` in pixels.
        image_shape: `(H, W, ...)`, the image the box lies in.
        grid_shape: `(h, w)`, the code grid.

    Returns:
        bool NumPy array `(h, w)`.

    Raises:
        ValueError: an empty box, or one reaching outside the image.

    Example:
    >>> region_cells((0, 0, 5, 5), (28, 28, 1), (7, 7))[:3, :3].astype(int)
    array([[1, 1, 0],
           [1, 1, 0],
           [0, 0, 0]])
    """
    y0, x0, y1, x1 = region
    height, width = image_shape[:2]
    if y1 <= y0 or x1 <= x0:
        raise ValueError(f"--region {y0},{x0},{y1},{x1} is empty; it needs y0 < y1 and x0 < x1")
    if y0 < 0 or x0 < 0 or y1 > height or x1 > width:
        raise ValueError(
            f"--region {y0},{x0},{y1},{x1} reaches outside the {height}x{width} image; "
            f"use 0 <= y0 < y1 <= {height} and 0 <= x0 < x1 <= {width}"
        )
    rows, cols = grid_shape
    cell_height, cell_width = height // rows, width // cols
    cells = np.zeros((rows, cols), bool)
    cells[y0 // cell_height : -(-y1 // cell_height), x0 // cell_width : -(-x1 // cell_width)] = True
    return cells


def inpaint_image(
    run_path,
    image_path,
    region,
    num=SAMPLE_DEFAULTS.num,
    temperature=SAMPLE_DEFAULTS.temperature,
    top_k=SAMPLE_DEFAULTS.top_k,
    guidance=SAMPLE_DEFAULTS.guidance,
    labels=None,
    seed=None,
    out=None,
    overwrite=False,
    steps=SAMPLE_DEFAULTS.steps,
):
    """Re-draws the part of an image under a pixel box with a run's prior, `num` times.

    The image is coded with the run's VQ-VAE; the code cells the box overlaps (`region_cells`)
    are re-sampled by the prior's `inpaint` (every other code is kept; an autoregressive prior
    fills in raster order, see `prior.AutoregressivePrior.inpaint`) and the `num` completed grids
    are decoded. The image file is only read.

    Args:
        run_path: str. A run folder with vqvae.keras and prior.keras.
        image_path: str. A PNG/JPEG/BMP/GIF of exactly the run's image size and channels.
        region: `(y0, x0, y1, x1)` ints, the pixel box `[y0, y1) x [x0, x1)` to re-draw.
        num: int >= 1. How many completions.
        temperature, top_k, guidance, seed, steps: as for `sample_images`.
        labels: int, the class of the image: required by a class-conditional prior.
        out: str or None. A `.png` path for the grid of completions (rows of 8); the codes go
            next to it as `<out without .png>.npy`.
        overwrite: bool. Replace an existing `out` (or its `.npy`) instead of refusing.

    Returns:
        `(images float32 [num, H, W, C], codes int32 [num, h, w])` (`[num, h, w, d]` for
        residual VQ); the codes outside the box's cells are the image's own.

    Raises:
        FileNotFoundError: the run, one of its models or the image is missing.
        FileExistsError: `out` or its `.npy` exists and `overwrite` is False.
        ValueError: an image of another size or channel count than the run's, an empty box or
            one outside the image, a conditional prior without `labels`, or bad sampling
            arguments.

    Example:
    >>> images, codes = inpaint_image("runs/digits", "seven.png", (14, 0, 28, 28), num=8,
    ...                               labels=7, seed=0, out="sevens.png")  # doctest: +SKIP
    """
    run = _trained_run(run_path)
    codes_out = _codes_path(out, overwrite)
    pixels = decode_image_file(image_path)
    vqvae = load_stage_model(run, "vqvae")
    if pixels.shape != vqvae.image_shape:
        raise ValueError(
            f"{image_path} is {'x'.join(map(str, pixels.shape))} (height x width x channels) but the run's "
            f"model takes {'x'.join(map(str, vqvae.image_shape))} images; convert the image to that size"
        )
    cells = region_cells(region, vqvae.image_shape, vqvae.grid_shape)  # (h, w)
    prior = load_stage_model(run, "prior")
    if prior.conditional and labels is None:
        raise ValueError(
            f"the run's prior is class-conditional; give the image's class with --label (0 to "
            f"{prior.num_classes - 1})"
        )
    _check_class_labels(labels, prior)
    codes = vqvae.encode(pixels[None])  # (1, h, w) or (1, h, w, d)
    cell_depth = np.broadcast_to(cells.reshape(cells.shape + (1,) * (codes.ndim - 3)), codes.shape[1:])
    tokens = np.repeat(vqvae.to_token_grid(codes), num, axis=0)
    mask = np.repeat(vqvae.to_token_grid(cell_depth[None]), num, axis=0)
    completed = prior.inpaint(
        tokens,
        mask,
        labels=labels,
        temperature=temperature,
        seed=seed,
        guidance=default_guidance(prior, guidance),
        top_k=top_k,
        **_steps_option(prior, steps),
    )
    codes = vqvae.from_token_grid(completed)
    images = vqvae.decode(codes)
    _write_outputs(out, codes_out, images, codes, dict(columns=min(8, num)))
    return images, codes
