"""The one trainer both stages of a run use: resumable `fit` with the same callbacks and rules.

A stage ("vqvae" or "prior") of a run folder is trained by `train_stage`, which restores the last
completed epoch from `backup/STAGE/` if an earlier attempt was interrupted and writes, after every
epoch, the stage's metrics CSV, a checkpoint in `checkpoints/STAGE/` (the newest `keep_checkpoints`
kept), TensorBoard scalars in `logs/STAGE/` and finally the backup (each atomically), so the backup
only ever names an epoch whose outputs are all on disk. `finish_stage` saves the model file last: its
presence is the one rule for a finished stage (`RunFolder.finished`).
"""

import os

import keras

from vqgen.runs.callbacks import EpochBackup, EpochCheckpoint, EpochSummaries, MetricsFile, NonFiniteLossGuard
from vqgen.runs.model_files import save_model_file
from vqgen.settings import TrainingSettings

# Settings a resumed stage may change: they decide what is kept on disk, not what is computed.
CHANGEABLE_ON_RESUME = ("keep_checkpoints",)


def check_resumed_settings(run, stage, started, given):
    """Refuses to resume `stage` with options other than the ones it started with.

    The settings of `CHANGEABLE_ON_RESUME` are the exception: their given values replace the
    recorded ones in `started` (e.g. a lower `--keep-checkpoints` when the disk fills up).

    Args:
        run: RunFolder.
        stage: "vqvae" or "prior".
        started: dict of the settings recorded when the stage started (from config.json); updated
            in place with the given values of `CHANGEABLE_ON_RESUME`.
        given: dict of the settings passed now (only those the user gave).

    Raises:
        ValueError: a given setting differs from the recorded one; the message names each and
            says how to continue or start over.

    Example:
    >>> check_resumed_settings(run, "vqvae", {"epochs": 10}, {"epochs": 20})  # doctest: +SKIP
    ValueError: The unfinished vqvae stage in runs/digits was started with epochs=10 (now 20); ...
    """
    started.update({name: value for name, value in given.items() if name in CHANGEABLE_ON_RESUME})
    changed = [
        f"{name}={started[name]!r} (now {value!r})"
        for name, value in sorted(given.items())
        if name in started and started[name] != (list(value) if isinstance(value, tuple) else value)
    ]
    if changed:
        raise ValueError(
            f"The unfinished {stage} stage in {run.path} was started with {', '.join(changed)}; "
            "run the same command with the original options to resume it, or add --overwrite to start "
            "that stage again."
        )


def train_stage(
    run,
    stage,
    model,
    train_batches,
    validation_data,
    epochs,
    verbose=1,
    pictures=None,
    keep_checkpoints=TrainingSettings.keep_checkpoints,
):
    """Trains `model` as `stage` of `run`, continuing from the last completed epoch if there is one.

    Training stops with a ValueError at the first non-finite loss, keeping the last good epoch.

    Args:
        run: RunFolder.
        stage: "vqvae" or "prior".
        model: a built, compiled `keras.Model` (built inside the strategy it trains under).
        train_batches: function `first_epoch -> (dataset, steps_per_epoch)` giving the training
            batches of epochs `first_epoch .. epochs-1` (see `vqgen.data.epoch_batches`), so a
            resumed run sees the same data order as an uninterrupted one.
        validation_data: `tf.data.Dataset`.
        epochs: int. Total epochs, including those already completed.
        verbose: Keras verbosity (1: progress bar).
        pictures: optional function `model -> {"images": ..., "histograms": ...}` whose pictures
            go into each epoch's TensorBoard event file (see `EpochSummaries`).
        keep_checkpoints: int >= 1. Epochs whose checkpoint stays in `checkpoints/STAGE/` (the
            newest; see `EpochCheckpoint`). Defaults to `TrainingSettings.keep_checkpoints`.

    Returns:
        The Keras `History` of the epochs run now (empty when every epoch had completed).

    Raises:
        ValueError: the loss became NaN or infinite.

    Example:
    >>> batches = lambda first: epoch_batches(images, 64, 0, first, 10)
    >>> train_stage(RunFolder("runs/digits"), "vqvae", model, batches, validation, 10)  # doctest: +SKIP
    """
    backup = EpochBackup(run.backup_path(stage))
    first_epoch = backup.restore(model)
    if first_epoch >= epochs:  # killed after the last epoch's backup, before the model file was saved
        return keras.callbacks.History()
    train_data, steps_per_epoch = train_batches(first_epoch)
    return model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # the batches come shuffled, in an order fixed by (seed, epoch)
        verbose=verbose,
        callbacks=[
            NonFiniteLossGuard(),
            MetricsFile(run.metrics_path(stage)),
            EpochCheckpoint(run.checkpoints_path(stage), keep_checkpoints),
            EpochSummaries(run.logs_path(stage), pictures),
            backup,  # last: it names an epoch only once everything above is on disk
        ],
    )


def is_resumable(run, stage):
    """Whether `stage` was started (its backup exists) and has not finished.

    Args:
        run: RunFolder.
        stage: "vqvae" or "prior".

    Returns:
        bool.
    """
    return os.path.isdir(run.backup_path(stage)) and not run.finished(stage)


def finish_stage(run, stage, model):
    """Saves `stage`'s model file (marking the stage finished) and drops its resume state.

    Args:
        run: RunFolder.
        stage: "vqvae" or "prior".
        model: the trained model.
    """
    save_model_file(model, run.model_path(stage))
    run.remove_backup(stage)
