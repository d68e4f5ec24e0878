"""Saving and loading `.keras` and `.weights.h5` files with atomic writes and one-line errors."""

import io
import os

import keras
from keras.src.saving import saving_lib

import prior
from vqgen.models.vqvae import VQVAE
from vqgen.runs.atomic_file import atomic_path, write_bytes_atomically

# The model class each stage of a run saves.
STAGE_MODELS = {"vqvae": VQVAE, "prior": prior.CodePrior}  # the prior: a PixelCNN, Transformer or MaskGIT


def save_model_file(model, path):
    """Saves `model` to the `.keras` file `path`, replacing it only once the new file is complete.

    Args:
        model: a `keras.Model`.
        path: str ending in `.keras`.

    Example:
    >>> save_model_file(vqvae, "runs/digits/vqvae.keras")  # doctest: +SKIP
    """
    with atomic_path(path) as temporary:
        model.save(temporary)


def weights_file_bytes(model):
    """Returns the bytes of the `.weights.h5` file that `model.save_weights` would write.

    The HDF5 file is made in memory by Keras' own weights writer (the layout `model.load_weights`
    reads, optimizer state included), so HDF5 never writes to the disk: on a full disk HDF5 fails
    half-way through a file and leaves objects whose finalizers retry the writes, printing
    `__dealloc__` tracebacks and crashing the interpreter at exit. Plain file I/O then writes the
    bytes, and its failures are ordinary `OSError`s.

    Args:
        model: a built `keras.Model`.

    Returns:
        bytes.
    """
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    try:
        saving_lib._save_state(
            model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set()
        )
    finally:
        store.close()
    return buffer.getvalue()


def save_weights_file(model, path):
    """Saves `model`'s weights to the `.weights.h5` file `path` atomically (see `weights_file_bytes`).

    Args:
        model: a built `keras.Model`.
        path: str ending in `.weights.h5`; `model.load_weights(path)` reads it back.

    Example:
    >>> save_weights_file(vqvae, "runs/digits/checkpoints/vqvae/epoch_001.weights.h5")  # doctest: +SKIP
    """
    write_bytes_atomically(path, weights_file_bytes(model))


def load_model_file(path, expected_class):
    """Loads a `.keras` file written by `save_model_file` and checks what it holds.

    Args:
        path: str. The `.keras` file.
        expected_class: the class the model must be an instance of (e.g. `vqgen.VQVAE`).

    Returns:
        The model.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is corrupt, truncated, or holds another kind of model.

    Example:
    >>> vqvae = load_model_file("runs/digits/vqvae.keras", VQVAE)  # doctest: +SKIP
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path}; train that stage first.")
    try:
        model = keras.models.load_model(path)
    except Exception as error:  # a damaged zip fails in many ways (BadZipFile, KeyError, OSError...)
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ValueError(
            f"{path} is not a readable Keras model file ({reason}); restore it or retrain that stage."
        ) from None
    if not isinstance(model, expected_class):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a {expected_class.__name__}; "
            "check which file you passed."
        )
    return model


def load_stage_model(run, stage):
    """Loads the model that `stage` of a run saved, naming the command to run if it is missing.

    Args:
        run: RunFolder.
        stage: "vqvae" or "prior".

    Returns:
        The `VQVAE`, or the prior (`prior.PixelCNN`, `prior.Transformer` or `prior.MaskGIT`).

    Raises:
        FileNotFoundError: the stage has not finished.
        ValueError: the file is damaged or holds another kind of model.

    Example:
    >>> vqvae = load_stage_model(RunFolder("runs/digits"), "vqvae")  # doctest: +SKIP
    """
    run.require(stage)
    return load_model_file(run.model_path(stage), STAGE_MODELS[stage])
