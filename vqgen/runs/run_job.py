"""The whole job of `vqgen run`: stage 1, the prior, samples and an export, in one run folder.

run_job("runs/digits")               # as `vqgen run --run runs/digits`
run_job(quick=True, kind="maskgit")  # as `vqgen run --quick --prior maskgit`
"""

import datetime
import os

from prior.registry import DEFAULT_PRIOR
from vqgen.runs.export_run import export_run
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.run_lock import RunLock
from vqgen.runs.sample_images import sample_images
from vqgen.runs.train_prior import train_prior
from vqgen.runs.train_vqvae import train_vqvae
from vqgen.settings import QUICK_PRIOR, QUICK_STAGE1, SAMPLE_DEFAULTS


def run_job(
    run_path=None,
    kind=None,
    conditional=None,
    quick=False,
    overwrite=False,
    strategy="default",
    verbose=1,
    stage1_settings=None,
    prior_settings=None,
):
    """Trains both stages of a run, samples a grid and exports a SavedModel, printing each output.

    Run again after a crash, it skips the stages that finished and resumes the one that did not. The
    run's `RunLock` is held for the whole job (the stages re-enter it). Writes, beside what the two
    stages write, `samples.png` and `samples.npy` (one row per class for a conditional prior, 8 per
    class for up to 10 classes) and `saved_model/`.

    Args:
        run_path: str or None. The run folder; None makes `runs/run-<timestamp>`.
        kind: str or None. Which prior (a name of `prior.registry.PRIORS`); None as in `train_prior`.
        conditional: bool or None. Condition the prior on the class labels; None: when the data has
            labels. A prior that has finished keeps its own.
        quick: bool. Tiny models for a smoke run (`vqgen.settings.QUICK_STAGE1`, `QUICK_PRIOR`),
            under any settings given.
        overwrite: bool. Retrain both stages even if they finished.
        strategy: "default", "mirrored" or "multiworker".
        verbose: Keras verbosity (0: no progress bar).
        stage1_settings: dict or None. Settings for `train_vqvae`.
        prior_settings: dict or None. Settings for `train_prior` (the chosen prior's fields,
            guidance and training settings).

    Returns:
        str, the run folder.

    Raises:
        As `train_vqvae`, `train_prior`, `sample_images` and `export_run`.

    Example:
    >>> run_job("runs/smoke", quick=True)  # doctest: +SKIP
    'runs/smoke'
    """
    if run_path is None:
        run_path = os.path.join("runs", datetime.datetime.now().strftime("run-%Y%m%d-%H%M%S"))
    with RunLock(run_path, create=True):  # one writer for the whole job; the stages below re-enter it
        _train_sample_export(
            RunFolder(run_path),
            kind,
            conditional,
            overwrite,
            dict(strategy=strategy, verbose=verbose),
            {**(QUICK_STAGE1 if quick else {}), **(stage1_settings or {})},
            {**(QUICK_PRIOR[kind or DEFAULT_PRIOR] if quick else {}), **(prior_settings or {})},
        )
    return run_path


def _train_sample_export(run, kind, conditional, overwrite, training, stage1_settings, prior_settings):
    """The body of `run_job`, under the run's lock."""
    if overwrite or not run.finished("vqvae"):
        train_vqvae(run.path, overwrite=overwrite, **training, **stage1_settings)
    print(f"stage 1: {run.model_path('vqvae')} (reconstructions: {run.reconstructions_path})")
    config = run.read_config()
    num_classes = config["data"]["num_classes"]
    if overwrite or not run.finished("prior"):
        conditional = bool(num_classes) if conditional is None else conditional
        train_prior(
            run.path, kind=kind, conditional=conditional, overwrite=overwrite, **training, **prior_settings
        )
    else:
        conditional = config["prior"]["conditional"]
    print(f"stage 2: {run.model_path('prior')}" + (" (class-conditional)" if conditional else ""))
    samples = run.file("samples.png")
    # Conditional: one row per class, 8 per class for up to 10 classes (80 spread over more classes).
    num = 8 * min(num_classes, 10) if conditional else SAMPLE_DEFAULTS.num
    sample_images(run.path, num=num, seed=config["data"]["seed"], out=samples, overwrite=True)
    print(f"samples: {samples} (codes: {run.file('samples.npy')})")
    export_run(run.path, run.file("saved_model"), overwrite=True)  # the run's own export, of these models
    print(f"export: {run.file('saved_model')}")
