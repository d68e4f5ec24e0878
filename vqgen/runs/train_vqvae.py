"""Stage 1 of the workflow: train a VQ-VAE into a run folder."""

import dataclasses
import os

import keras

from vqgen.data import epoch_batches, load_images, split_images, to_dataset
from vqgen.data.float_images import to_float_images
from vqgen.data.pipeline import pixels_to_float
from vqgen.models.vqvae import VQVAE
from vqgen.runs.epoch_pictures import vqvae_pictures
from vqgen.runs.image_grid import save_comparison_grid
from vqgen.runs.precision import precision_policy
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.run_lock import locks_run
from vqgen.runs.stage_trainer import check_resumed_settings, finish_stage, train_stage
from vqgen.runs.strategies import make_strategy
from vqgen.settings import DATA_DEFAULTS, VQVAE_DEFAULTS, VQVAE_TRAINING_DEFAULTS, split_settings


def load_splits(data_config):
    """Loads a run's dataset and splits it exactly as at training time.

    Args:
        data_config: the "data" section of a run's config.json.

    Returns:
        `(train, validation)` ImageSets.
    """
    images = load_images(data_config["source"], data_dir=data_config.get("data_dir"))
    return split_images(images, data_config["validation_fraction"], seed=data_config["seed"])


def prepare_run(run, overwrite):
    """Decides whether to start fresh or resume, and clears the folder when asked.

    Args:
        run: RunFolder.
        overwrite: bool. Delete an existing run first.

    Returns:
        True when an unfinished stage-1 training (a config.json but no vqvae.keras) should be
        resumed.

    Raises:
        FileExistsError: the folder holds a finished run or foreign files and `overwrite` is False.
    """
    if overwrite:
        run.clear()
    if not run.exists():
        return False
    if os.path.isfile(run.config_path) and not run.finished("vqvae"):
        return True
    raise FileExistsError(
        f"Run directory {run.path} already exists; choose another --run, or pass --overwrite to replace it."
    )


@locks_run(create=True)
def train_vqvae(run_path, overwrite=False, strategy="default", verbose=1, **settings):
    """Trains stage 1 into `run_path`, resuming an unfinished training there.

    Holds the run's `RunLock` throughout: a second writer of the same folder is refused.

    Writes config.json, vqvae.keras, metrics.csv, TensorBoard logs, a checkpoint per epoch and
    reconstructions.png (see `RunFolder`).

    Args:
        run_path: str. The run folder (created).
        overwrite: bool. Replace an existing run.
        strategy: "default", "mirrored" or "multiworker".
        verbose: Keras verbosity (1: progress bar).
        **settings: any field of `vqgen.settings.DataSettings` (`source`, `data_dir`, `seed`,
            `validation_fraction`), `VQVAESettings` or `TrainingSettings` to override; the rest
            keep their defaults. A resumed run must be given the same values it started with.

    Returns:
        The trained `VQVAE`.

    Raises:
        ValueError / FileNotFoundError / FileExistsError: bad data, settings or run folder.
        BlockingIOError: another process is writing the run folder.
        WriteError: the storage refused a write (e.g. a full disk); the run can be resumed.

    Example:
    >>> model = train_vqvae("runs/digits", epochs=5, num_embeddings=512)  # doctest: +SKIP
    """
    sections = {"data": DATA_DEFAULTS, "vqvae": VQVAE_DEFAULTS, "vqvae_training": VQVAE_TRAINING_DEFAULTS}
    given = split_settings(settings, sections, "vqgen train")
    chosen = {
        name: dataclasses.asdict(dataclasses.replace(sections[name], **given[name])) for name in sections
    }
    fraction = chosen["data"]["validation_fraction"]
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--validation-fraction must be between 0 and 1 (exclusive); received {fraction}")
    run = RunFolder(run_path)
    resuming = prepare_run(run, overwrite)
    if resuming:
        config = run.read_config()
        for name in sections:
            check_resumed_settings(run, "vqvae", config[name], given[name])
        run.remove_stale_temporaries()
        print(f"Resuming the unfinished training in {run.path}")
    else:
        config = chosen
    training = config["vqvae_training"]
    keras.utils.set_random_seed(config["data"]["seed"])
    train_images, validation_images = load_splits(config["data"])
    config["data"].update(
        image_shape=list(train_images.image_shape),
        num_classes=train_images.num_classes,
        num_train=len(train_images),
        num_validation=len(validation_images),
    )

    # Runs from before `precision` existed trained in float32.
    with make_strategy(strategy).scope(), precision_policy(training.get("precision", "float32")):
        model = VQVAE(input_shape=train_images.image_shape, seed=config["data"]["seed"], **config["vqvae"])
        model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]))
    validation_data = to_dataset(validation_images, training["batch_size"])
    os.makedirs(run.path, exist_ok=True)
    run.write_config(config)

    def train_batches(first_epoch):
        return epoch_batches(
            train_images.images,
            training["batch_size"],
            config["data"]["seed"],
            first_epoch,
            training["epochs"],
            transform=pixels_to_float,
        )

    pictures = vqvae_pictures(validation_images.images)  # TensorBoard: reconstructions, codebook usage
    train_stage(run, "vqvae", model, train_batches, validation_data, training["epochs"], verbose, pictures)
    # From the array, not `to_dataset(...).take(1)`: a partly read `cache()` makes TensorFlow warn.
    originals = to_float_images(validation_images.images[:32])
    save_comparison_grid(run.reconstructions_path, originals, model.reconstruct(originals), columns=8)
    config["vqvae_results"] = {
        "compression_ratio": model.compression_ratio,
        "grid_shape": list(model.grid_shape),
        **model.evaluate(validation_data, verbose=0, return_dict=True),
    }
    run.write_config(config)
    finish_stage(run, "vqvae", model)
    return model
