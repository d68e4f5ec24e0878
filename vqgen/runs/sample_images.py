"""Generating images from a run: sample code grids from the prior, decode them with the VQ-VAE."""

import io

import numpy as np

from vqgen.runs.atomic_file import write_bytes_atomically
from vqgen.runs.image_grid import save_image_grid
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.settings import SAMPLE_DEFAULTS


def sample_images(
    run_path,
    num=SAMPLE_DEFAULTS.num,
    temperature=SAMPLE_DEFAULTS.temperature,
    top_k=SAMPLE_DEFAULTS.top_k,
    labels=None,
    seed=None,
    out=None,
):
    """Samples `num` images from a run's prior and VQ-VAE.

    Args:
        run_path: str. A run folder with vqvae.keras and prior.keras.
        num: int >= 1. How many images.
        temperature: float > 0. Softmax temperature of the prior.
        top_k: int in [1, K] or None. Sample among the top_k most likely codes only.
        labels: int (class of every image), int sequence (one class per image) or None; for a
            conditional prior.
        seed: int or None. Same seed, same images.
        out: str or None. A `.png` path: writes the image grid there and the codes next to it
            as `<out without .png>.npy`.

    Returns:
        `(images float32 [num, H, W, C], codes int32 [num, h, w])`; codes `[num, h, w, d]` for a
        residual-VQ model (the prior samples them depth-interleaved, see `VQVAE.to_token_grid`).

    Raises:
        FileNotFoundError: the run, its VQ-VAE or its prior is missing.
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
    vqvae = load_stage_model(run, "vqvae")
    pixelcnn = load_stage_model(run, "prior")
    tokens = pixelcnn.sample(num, temperature=temperature, top_k=top_k, labels=labels, seed=seed)
    codes = vqvae.from_token_grid(tokens)  # (num, h, w), or (num, h, w, d) for residual VQ
    images = vqvae.decode(codes)
    if out is not None:
        save_image_grid(out, images, columns=min(8, num))  # rows of 8
        buffer = io.BytesIO()
        np.save(buffer, codes)
        write_bytes_atomically(str(out)[: -len(".png")] + ".npy", buffer.getvalue())
    return images, codes
