"""Stage 2 of the workflow: code the dataset with a run's VQ-VAE and train a PixelCNN prior on it."""

import io
import os
import zipfile

import keras
import numpy as np
import tensorflow as tf

import prior
from vqgen.runs.atomic_file import write_bytes_atomically
from vqgen.data import epoch_batches, to_dataset
from vqgen.runs.model_files import load_model_file, save_model_file
from vqgen.runs.stage_trainer import fit_resumably
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.strategies import make_strategy
from vqgen.runs.train_vqvae import load_splits
from vqgen.models.vqvae import VQVAE

CODE_ARRAYS = ("train_codes", "train_labels", "validation_codes", "validation_labels")
DEFAULT_PRIOR = dict(num_layers=5, filters=64, kernel_size=5)
DEFAULT_PRIOR_TRAINING = dict(epochs=20, batch_size=64, learning_rate=1e-3)


def coded_dataset(run, vqvae, data_config):
    """Returns the run's train/validation codes and labels, computing and caching them once.

    Args:
        run: RunFolder.
        vqvae: the run's VQVAE.
        data_config: the run's "data" config section.

    Returns:
        dict with int32 "train_codes", "validation_codes" `[N, h, w]` and "train_labels",
        "validation_labels" (`[N]`, or empty arrays when the dataset has no labels).
    """
    if os.path.isfile(run.codes_path):
        try:
            with np.load(run.codes_path) as cached:
                arrays = {name: cached[name] for name in CODE_ARRAYS}
            return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            print(f"{run.codes_path} is damaged; coding the dataset again")
    train, validation = load_splits(data_config)
    arrays = {}
    for name, images in (("train", train), ("validation", validation)):
        codes = [vqvae.encode(batch.numpy()) for batch in to_dataset(images, 256)]
        arrays[f"{name}_codes"] = np.concatenate(codes)
        arrays[f"{name}_labels"] = (
            np.zeros([0], "int32") if images.labels is None else images.labels.astype("int32")
        )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomically(run.codes_path, buffer.getvalue())
    return arrays


def _prior_inputs(codes, labels, conditional):
    return {"codes": codes, "labels": labels} if conditional else codes


def train_prior(run_path, conditional=False, overwrite=False, strategy="default", verbose=1, **settings):
    """Trains the stage-2 prior of a run and saves it as prior.keras.

    Writes codes.npz (the coded dataset), prior.keras, prior_metrics.csv, and the validation bits
    per code into config.json under "prior_results".

    Args:
        run_path: str. A run folder with a trained VQ-VAE.
        conditional: bool. Condition on the dataset's class labels.
        overwrite: bool. Replace an existing prior.
        strategy: "default", "mirrored" or "multiworker".
        verbose: Keras verbosity.
        **settings: any key of `DEFAULT_PRIOR` or `DEFAULT_PRIOR_TRAINING`.

    Returns:
        The trained `prior.PixelCNN`.

    Raises:
        FileNotFoundError: the run or its VQ-VAE is missing.
        FileExistsError: a prior exists and `overwrite` is False.
        ValueError: `conditional` on a dataset without labels, or bad settings.

    Example:
    >>> pixelcnn = train_prior("runs/digits", conditional=True, epochs=5)  # doctest: +SKIP
    """
    unknown = set(settings) - set(DEFAULT_PRIOR) - set(DEFAULT_PRIOR_TRAINING)
    if unknown:
        raise ValueError(f"Unknown prior settings {sorted(unknown)}; see `vqgen train-prior --help`.")
    run = RunFolder(run_path)
    config = run.read_config()
    run.require(run.vqvae_path, "vqgen train")
    if os.path.exists(run.prior_path) and not overwrite:
        raise FileExistsError(
            f"{run.prior_path} already exists; pass --overwrite to train a new prior."
        )
    if overwrite:  # a fresh prior, not the continuation of an interrupted one
        run.remove_backup("prior")
    resuming = os.path.isdir(run.backup_path("prior")) and not os.path.exists(run.prior_path)
    run.remove_stale_temporaries()
    if resuming and "prior" in config:
        print(f"Resuming the unfinished prior training in {run.path}")
        conditional = config["prior"]["conditional"]
    else:
        config["prior"] = {**DEFAULT_PRIOR, **{k: v for k, v in settings.items() if k in DEFAULT_PRIOR},
                           "conditional": bool(conditional)}
        config["prior_training"] = {
            **DEFAULT_PRIOR_TRAINING, **{k: v for k, v in settings.items() if k in DEFAULT_PRIOR_TRAINING}
        }
    num_classes = config["data"].get("num_classes")
    if conditional and not num_classes:
        raise ValueError(
            f"The dataset {config['data']['source']!r} has no labels, so the prior cannot be "
            "conditional; drop --conditional."
        )
    vqvae = load_model_file(run.vqvae_path, VQVAE)
    arrays = coded_dataset(run, vqvae, config["data"])
    training = config["prior_training"]
    keras.utils.set_random_seed(config["data"]["seed"])
    with make_strategy(strategy).scope():
        model = prior.PixelCNN(
            num_embeddings=vqvae.num_embeddings,
            grid_shape=vqvae.grid_shape,
            num_classes=num_classes if conditional else None,
            **{k: config["prior"][k] for k in DEFAULT_PRIOR},
        )
        model.build()  # EpochBackup.restore needs the variables before fit
        model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]))
    inputs = {}
    for name in ("train", "validation"):
        labels = arrays[f"{name}_labels"] if conditional else None
        model.check_codes(arrays[f"{name}_codes"], labels)
        inputs[name] = _prior_inputs(arrays[f"{name}_codes"], labels, conditional)
    validation_data = tf.data.Dataset.from_tensor_slices(inputs["validation"]).batch(training["batch_size"])

    def train_batches(first_epoch):
        return epoch_batches(inputs["train"], training["batch_size"], config["data"]["seed"], first_epoch,
                             training["epochs"])

    run.write_config(config)
    fit_resumably(model, train_batches, validation_data, training["epochs"],
                  run.backup_path("prior"), run.prior_metrics_path, verbose)
    results = model.evaluate(validation_data, verbose=0, return_dict=True)
    config["prior_results"] = {"validation_bits_per_code": results["bits_per_code"]}
    run.write_config(config)
    save_model_file(model, run.prior_path)  # last: its presence marks the stage finished
    run.remove_backup("prior")
    return model
