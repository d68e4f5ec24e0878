"""Keras callbacks that keep a run folder consistent across crashes and bad losses."""

import csv
import io
import json
import math
import os
import re

import keras
import numpy as np
import tensorflow as tf

from vqgen.runs.atomic_file import atomic_path, scratch_folder, write_text_atomically
from vqgen.runs.model_files import save_weights_file, weights_file_bytes
from vqgen.settings import TrainingSettings


class MetricsFile(keras.callbacks.Callback):
    """Writes the per-epoch logs to a CSV file, each epoch exactly once, atomically.

    Unlike `keras.callbacks.CSVLogger` it rewrites the whole file at every epoch end, dropping any
    rows of this or later epochs that an interrupted earlier attempt left, so a resumed run never
    repeats an epoch and a crash never leaves a half-written line.

    Args:
        path: str. The CSV file; rows of earlier epochs in it are kept.

    Example:
    >>> model.fit(data, epochs=5, callbacks=[MetricsFile("run/metrics.csv")])  # doctest: +SKIP
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def _read_rows(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, newline="", encoding="utf-8") as stream:
            return list(csv.DictReader(stream))

    def on_epoch_end(self, epoch, logs=None):
        rows = [row for row in self._read_rows() if int(row["epoch"]) < epoch + 1]
        rows.append({"epoch": epoch + 1, **{name: float(value) for name, value in (logs or {}).items()}})
        columns = ["epoch"] + sorted({name for row in rows for name in row} - {"epoch"})
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomically(self.path, text.getvalue())


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model's weights after every epoch to `folder/epoch_NNN.weights.h5`, keeping the newest.

    Each checkpoint is written atomically; only then are the checkpoints of epochs older than the
    newest `keep` removed (see `remove_old_checkpoints`), so a kill at any moment leaves the new
    checkpoint complete and at worst one epoch too many, which the next epoch's clean-up removes.

    Args:
        folder: str. Where the checkpoints go.
        keep: int >= 1. Checkpoints (epochs) kept. Defaults to
            `vqgen.settings.TrainingSettings.keep_checkpoints`.

    Raises:
        ValueError: `keep` is below 1.

    Example:
    >>> model.fit(data, epochs=5, callbacks=[EpochCheckpoint("run/checkpoints", keep=2)])  # doctest: +SKIP
    """

    def __init__(self, folder, keep=TrainingSettings.keep_checkpoints):
        super().__init__()
        if keep < 1:
            raise ValueError(f"--keep-checkpoints must be at least 1. Received: keep={keep}")
        self.folder = folder
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        save_weights_file(self.model, os.path.join(self.folder, f"epoch_{epoch + 1:03d}.weights.h5"))
        remove_old_checkpoints(self.folder, self.keep)


# A checkpoint is every file named `epoch_NNN.<anything>` (the weights today; any file a future
# checkpoint adds, e.g. a discriminator's, is counted with its epoch). Temporary files start with ".".
CHECKPOINT_FILE = re.compile(r"^epoch_(\d+)\.")


def checkpoint_files(folder):
    """The checkpoint files of `folder`, grouped by epoch.

    Args:
        folder: str. A checkpoints folder (missing: no checkpoints).

    Returns:
        dict of epoch number (int) to the sorted list of that epoch's file paths.

    Example:
    >>> checkpoint_files("runs/digits/checkpoints/vqvae")  # doctest: +SKIP
    {9: ['runs/digits/checkpoints/vqvae/epoch_009.weights.h5'], 10: [...]}
    """
    epochs = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        match = CHECKPOINT_FILE.match(name)
        if match:
            epochs.setdefault(int(match.group(1)), []).append(os.path.join(folder, name))
    return epochs


def remove_old_checkpoints(folder, keep):
    """Deletes every file of the checkpoints of `folder` but those of the newest `keep` epochs.

    Args:
        folder: str. A checkpoints folder.
        keep: int >= 1. Epochs whose checkpoint files stay.

    Example:
    >>> remove_old_checkpoints("runs/digits/checkpoints/vqvae", keep=2)  # doctest: +SKIP
    """
    epochs = checkpoint_files(folder)
    for epoch in sorted(epochs)[:-keep]:
        for path in epochs[epoch]:
            os.remove(path)


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Aborts training at the first batch whose loss is NaN or infinite.

    It raises from inside the batch, so the epoch in progress never reaches the epoch-end
    callbacks: Keras' BackupAndRestore state and `EpochCheckpoint` keep the last good epoch.

    Raises:
        ValueError: from `fit`, naming the epoch and step and what to try.

    Example:
    >>> model.fit(data, callbacks=[NonFiniteLossGuard()])  # doctest: +SKIP
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise ValueError(
                f"Training loss became {float(loss)} at epoch {self._epoch + 1}, step {batch + 1}; "
                "the last good checkpoint was kept. Lower --learning-rate or check the data for "
                "extreme values, then run the same command again to resume."
            )


class EpochBackup(keras.callbacks.Callback):
    """Keeps the training state of the last completed epoch in one folder, replaced atomically.

    At every epoch end it writes the model's weights (with the optimizer state and every
    non-trainable variable, such as the EMA codebook statistics), the states of its random seed
    generators (dropout, MaskGIT's training masks, label dropout: variables that Keras' weights files
    leave out, so a resumed run would otherwise redraw the first epoch's masks) and the epoch number
    into a temporary folder and renames it onto `folder`, so a kill at any moment leaves either the
    previous epoch's state or the new one, never a mixture or a truncated file (Keras'
    `BackupAndRestore` writes its two files in place, one after the other). `restore` loads it
    back before `fit(initial_epoch=...)`.

    Args:
        folder: str. Where the state lives while training is unfinished.

    Example:
    >>> backup = EpochBackup("run/backup/vqvae")
    >>> model.fit(data, epochs=10, initial_epoch=backup.restore(model), callbacks=[backup])  # doctest: +SKIP
    """

    WEIGHTS = "latest.weights.h5"
    EPOCH = "epoch.json"

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def restore(self, model):
        """Loads the saved state into `model` (built and compiled); returns the epochs completed."""
        if not os.path.isfile(os.path.join(self.folder, self.EPOCH)):
            return 0
        with open(os.path.join(self.folder, self.EPOCH), encoding="utf-8") as stream:
            state = json.load(stream)
        seed_states = seed_generator_states(model)
        saved_seeds = state.get("seed_states", [])  # absent from backups written before they were kept
        if saved_seeds and len(saved_seeds) != len(seed_states):
            raise ValueError(
                f"The backup in {self.folder} holds {len(saved_seeds)} random seed states but the model has "
                f"{len(seed_states)}; resume with the model it was started with, or start the stage again."
            )
        with model.distribute_strategy.scope():  # optimizer slots live where the model does
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(os.path.join(self.folder, self.WEIGHTS))
            for variable, value in zip(seed_states, saved_seeds):
                variable.assign(np.asarray(value, variable.dtype))
        return int(state["epochs_completed"])

    def on_epoch_end(self, epoch, logs=None):
        weights = weights_file_bytes(self.model)  # made in memory: HDF5 never meets a full disk
        seeds = [np.asarray(variable.numpy()).tolist() for variable in seed_generator_states(self.model)]
        with atomic_path(self.folder) as temporary:
            os.makedirs(temporary)
            with open(os.path.join(temporary, self.WEIGHTS), "wb") as stream:
                stream.write(weights)
            with open(os.path.join(temporary, self.EPOCH), "w", encoding="utf-8") as stream:
                json.dump({"epochs_completed": epoch + 1, "seed_states": seeds}, stream)


def seed_generator_states(model):
    """The state variables of `model`'s random seed generators, in a fixed order.

    Keras counts them in `model.variables` but not in `model.weights`, and its weights files leave
    them out; a resumed run must restore them to draw what an uninterrupted one would.

    Args:
        model: a built `keras.Model`.

    Returns:
        list of the `keras.random.SeedGenerator` state variables (int, shape `(2,)`), in the order of
        `model.variables` (the same for two models of one architecture).

    Example:
    >>> [v.path for v in seed_generator_states(maskgit)]  # doctest: +SKIP
    ['masking_seeds/seed_generator_state', 'seed_generator/seed_generator_state', ...]
    """
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


class EpochSummaries(keras.callbacks.Callback):
    """Writes each epoch's metrics as TensorBoard scalars (and pictures), one complete event file per epoch.

    Keras' `TensorBoard` callback appends to an open event file, so a kill can leave a partial
    record. Here every epoch's scalars go into a fresh event file written in a temporary folder
    and renamed into `folder/train` or `folder/validation` once closed; TensorBoard reads all the
    event files of a folder as one run. The pictures of `pictures(model)` (images and histograms,
    e.g. reconstructions, samples, codebook usage) go into the epoch's validation event file.

    Args:
        folder: str. The TensorBoard log folder (`tensorboard --logdir folder`).
        pictures: optional function `model -> {"images": {tag: uint8 [k, H, W, C]}, "histograms":
            {tag: values}}`, called at every epoch end (see `vqgen.runs.epoch_pictures`).

    Example:
    >>> model.fit(data, epochs=5, callbacks=[EpochSummaries("run/logs")])  # doctest: +SKIP
    """

    def __init__(self, folder, pictures=None):
        super().__init__()
        self.folder = folder
        self.pictures = pictures

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        splits = {
            "train": {k: v for k, v in logs.items() if not k.startswith("val_")},
            "validation": {k[len("val_") :]: v for k, v in logs.items() if k.startswith("val_")},
        }
        pictures = {} if self.pictures is None else self.pictures(self.model)
        for split, values in splits.items():
            extras = pictures if split == "validation" else {}
            if not values and not extras:
                continue
            destination = os.path.join(self.folder, split)
            with scratch_folder(destination) as temporary:
                writer = tf.summary.create_file_writer(temporary)
                with writer.as_default():
                    for name, value in values.items():
                        tf.summary.scalar(f"epoch_{name}", float(value), step=epoch)
                    for tag, images in extras.get("images", {}).items():
                        tf.summary.image(tag, images, step=epoch, max_outputs=len(images))
                    for tag, values_ in extras.get("histograms", {}).items():
                        tf.summary.histogram(tag, values_, step=epoch, buckets=min(64, values_.size or 1))
                writer.close()
                (event_file,) = os.listdir(temporary)
                os.makedirs(destination, exist_ok=True)
                os.replace(os.path.join(temporary, event_file), os.path.join(destination, event_file))
