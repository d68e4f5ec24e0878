"""Exporting a trained run folder for LiteRT, ONNX Runtime or the browser (`vqgen export --format
litert|onnx|web`)."""

import contextlib

from vqgen.portable_export import export_portable
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.run_lock import RunLock
from vqgen.web_export import export_web


def export_portable_run(run_path, out, format, overwrite=False):
    """Exports a run's VQ-VAE (and its prior, if trained) with `vqgen.portable_export.export_portable`,
    or with `vqgen.web_export.export_web` for "web" (which needs the prior).

    As `export_run`: an export into the run folder holds the run's `RunLock`, one elsewhere does not.

    Args:
        run_path: str. A run folder with at least a trained VQ-VAE.
        out: str. The folder to write (atomically).
        format: "litert", "onnx" or "web".
        overwrite: bool. Replace an existing export at `out`.

    Raises:
        FileNotFoundError: the run or its VQ-VAE is missing.
        ValueError: "web" for a run without a trained prior, or models as the export refuses them.
        FileExistsError: `out` exists and `overwrite` is False.
        ImportError: the converter is missing (`pip install -e '.[export]'`).
        BlockingIOError: `out` is inside the run and another process is writing the run.

    Example:
    >>> export_portable_run("runs/digits", "exported/digits-litert", "litert")  # doctest: +SKIP
    """
    run = RunFolder(run_path)
    with RunLock(run.path) if run.holds(out) else contextlib.nullcontext():
        run.read_config()
        vqvae = load_stage_model(run, "vqvae")
        prior = load_stage_model(run, "prior") if run.finished("prior") else None
        if format == "web":
            export_web(out, vqvae, prior, overwrite=overwrite)
        else:
            export_portable(out, vqvae, prior, format=format, overwrite=overwrite)
