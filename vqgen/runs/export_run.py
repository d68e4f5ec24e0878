"""Exporting a trained run folder as a SavedModel."""

import contextlib

from vqgen.export import export_saved_model
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.run_lock import RunLock
from vqgen.settings import EXPORT_DEFAULTS


def export_run(run_path, out, overwrite=False, max_samples=EXPORT_DEFAULTS.max_samples):
    """Exports a run's VQ-VAE (and its prior, if trained) with `export_saved_model`.

    An export into the run folder itself (e.g. `RUN/saved_model`) writes the run, so it holds the
    run's `RunLock`; an export elsewhere only reads the run and takes no lock.

    Args:
        run_path: str. A run folder with at least a trained VQ-VAE.
        out: str. The SavedModel folder to write (atomically).
        overwrite: bool. Replace an existing export at `out`.
        max_samples: int. The most samples one call of an exported `sample*` signature may ask for.

    Raises:
        FileNotFoundError: the run or its VQ-VAE is missing.
        FileExistsError: `out` exists and `overwrite` is False.
        BlockingIOError: `out` is inside the run and another process is writing the run.

    Example:
    >>> export_run("runs/digits", "exported/digits")  # doctest: +SKIP
    """
    run = RunFolder(run_path)
    with RunLock(run.path) if run.holds(out) else contextlib.nullcontext():
        run.read_config()
        vqvae = load_stage_model(run, "vqvae")
        prior = load_stage_model(run, "prior") if run.finished("prior") else None
        export_saved_model(out, vqvae, prior, overwrite=overwrite, max_samples=max_samples)
