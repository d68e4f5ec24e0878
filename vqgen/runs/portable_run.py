"""Exporting a trained run folder for LiteRT or ONNX Runtime (`vqgen export --format litert|onnx`)."""

from vqgen.portable_export import export_portable
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder


def export_portable_run(run_path, out, format, overwrite=False):
    """Exports a run's VQ-VAE (and its prior, if trained) with `vqgen.portable_export.export_portable`.

    Args:
        run_path: str. A run folder with at least a trained VQ-VAE.
        out: str. The folder to write (atomically).
        format: "litert" or "onnx".
        overwrite: bool. Replace an existing export at `out`.

    Raises:
        FileNotFoundError: the run or its VQ-VAE is missing.
        FileExistsError: `out` exists and `overwrite` is False.
        ImportError: the converter is missing (`pip install -e '.[export]'`).

    Example:
    >>> export_portable_run("runs/digits", "exported/digits-litert", "litert")  # doctest: +SKIP
    """
    run = RunFolder(run_path)
    run.read_config()
    vqvae = load_stage_model(run, "vqvae")
    prior_model = load_stage_model(run, "prior") if run.finished("prior") else None
    export_portable(out, vqvae, prior_model, format=format, overwrite=overwrite)
