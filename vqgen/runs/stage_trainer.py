"""`model.fit` that survives a crash: resumes from, and records, the last completed epoch."""

from vqgen.runs.callbacks import EpochBackup, MetricsFile, NonFiniteLossGuard


def fit_resumably(model, train_batches, validation_data, epochs, backup_folder, metrics_path, verbose=1,
                  callbacks=()):
    """Runs `model.fit`, continuing from `backup_folder` if an earlier attempt was interrupted.

    Training stops with a ValueError at the first non-finite loss; after every epoch the metrics
    CSV, the given callbacks and finally the backup are written (each atomically), so the backup
    only ever names an epoch whose outputs are all on disk.

    Args:
        model: a built, compiled `keras.Model`.
        train_batches: function `first_epoch -> (dataset, steps_per_epoch)` giving the training
            batches of epochs `first_epoch .. epochs-1` (see `vqgen.data.epoch_batches`), so a
            resumed run sees the same data order as an uninterrupted one.
        validation_data: `tf.data.Dataset`.
        epochs: int. Total epochs, including those already completed.
        backup_folder: str. Where the last completed epoch's state lives.
        metrics_path: str. The per-epoch metrics CSV.
        verbose: Keras verbosity.
        callbacks: more Keras callbacks, run before the backup.

    Returns:
        The Keras `History` of the epochs run now.

    Raises:
        ValueError: the loss became NaN or infinite.

    Example:
    >>> batches = lambda first: epoch_batches(images, 64, 0, first, 10)
    >>> fit_resumably(model, batches, validation, 10, "run/backup/vqvae", "run/metrics.csv")  # doctest: +SKIP
    """
    backup = EpochBackup(backup_folder)
    first_epoch = backup.restore(model)
    train_data, steps_per_epoch = train_batches(first_epoch)
    return model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # the batches come shuffled, in an order fixed by (seed, epoch)
        verbose=verbose,
        callbacks=[NonFiniteLossGuard(), MetricsFile(metrics_path), *callbacks, backup],
    )
