"""`model.fit` that survives a crash: resumes from, and records, the last completed epoch."""

from vqgen.callbacks import EpochBackup, MetricsFile, NonFiniteLossGuard


def fit_resumably(model, train_data, validation_data, epochs, backup_folder, metrics_path, verbose=1,
                  callbacks=()):
    """Runs `model.fit`, continuing from `backup_folder` if an earlier attempt was interrupted.

    Training stops with a ValueError at the first non-finite loss; after every epoch the metrics
    CSV, the given callbacks and finally the backup are written (each atomically), so the backup
    only ever names an epoch whose outputs are all on disk.

    Args:
        model: a built, compiled `keras.Model`.
        train_data: `tf.data.Dataset` (already shuffled as wanted).
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
    >>> fit_resumably(model, train, validation, 10, "run/backup/vqvae", "run/metrics.csv")  # doctest: +SKIP
    """
    backup = EpochBackup(backup_folder)
    return model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        initial_epoch=backup.restore(model),
        shuffle=False,  # the dataset shuffles itself, with the run's seed
        verbose=verbose,
        callbacks=[NonFiniteLossGuard(), MetricsFile(metrics_path), *callbacks, backup],
    )
