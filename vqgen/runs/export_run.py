"""Exporting a trained run folder as a SavedModel."""

import os

import prior
from vqgen.export import export_saved_model
from vqgen.runs.model_files import load_model_file
from vqgen.runs.run_folder import RunFolder
from vqgen.models.vqvae import VQVAE


def export_run(run_path, out, overwrite=False):
    """Exports a run's VQ-VAE (and its prior, if trained) with `export_saved_model`.

    Args:
        run_path: str. A run folder with at least a trained VQ-VAE.
        out: str. The SavedModel folder to write (atomically).
        overwrite: bool. Replace an existing export at `out`.

    Raises:
        FileNotFoundError: the run or its VQ-VAE is missing.
        FileExistsError: `out` exists and `overwrite` is False.

    Example:
    >>> export_run("runs/digits", "exported/digits")  # doctest: +SKIP
    """
    run = RunFolder(run_path)
    run.read_config()
    run.require(run.vqvae_path, "vqgen train")
    vqvae = load_model_file(run.vqvae_path, VQVAE)
    pixelcnn = load_model_file(run.prior_path, prior.PixelCNN) if os.path.exists(run.prior_path) else None
    export_saved_model(out, vqvae, pixelcnn, overwrite=overwrite)
