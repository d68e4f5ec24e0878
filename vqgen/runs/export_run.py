"""Exporting a trained run folder as a SavedModel."""

from vqgen.export import export_saved_model
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder


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
    vqvae = load_stage_model(run, "vqvae")
    pixelcnn = load_stage_model(run, "prior") if run.finished("prior") else None
    export_saved_model(out, vqvae, pixelcnn, overwrite=overwrite)
