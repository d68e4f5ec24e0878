"""Stage 1 of the workflow: train a VQ-VAE into a run folder."""

import dataclasses
import os

import keras

from vqgen.data import stream_images
from vqgen.data.float_images import to_float_images
from vqgen.data.image_stream import naming_undecodable_files
from vqgen.models.adversarial_loss import AdversarialLoss
from vqgen.models.losses import RECONSTRUCTION_LOSSES
from vqgen.models.perceptual_loss import IMAGENET, PerceptualLoss
from vqgen.models.vqvae import VQVAE
from vqgen.runs.epoch_pictures import vqvae_pictures
from vqgen.runs.image_grid import save_comparison_grid
from vqgen.runs.precision import precision_policy
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.run_lock import locks_run
from vqgen.runs.stage_trainer import check_resumed_settings, finish_stage, train_stage
from vqgen.runs.strategies import make_strategy
from vqgen.settings import (
    ADVERSARIAL_DEFAULTS,
    DATA_DEFAULTS,
    PERCEPTUAL_DEFAULTS,
    VQVAE_DEFAULTS,
    VQVAE_TRAINING_DEFAULTS,
    split_settings,
)

# Validation images held in memory (as float32) and coded for the per-epoch TensorBoard pictures: a
# streamed set may be large. 512 covers the embedded digits' 500 validation images.
PICTURED_IMAGES = 512


def stream_splits(data_config, verbose=1):
    """Opens a run's dataset as streams and splits it exactly as at training time.

    Args:
        data_config: the "data" section of a run's config.json.
        verbose: int. 0 hides the progress bar of listing a large folder.

    Returns:
        `(train, validation)` `ImageStream`s (see `vqgen.data.ImageStream.split`).
    """
    images = stream_images(
        data_config["source"],
        data_dir=data_config.get("data_dir"),
        image_size=data_config.get("image_size"),
        channels=data_config.get("channels"),
        shuffle_buffer=data_config.get("shuffle_buffer", DATA_DEFAULTS.shuffle_buffer),
        max_image_pixels=data_config.get("max_image_pixels", DATA_DEFAULTS.max_image_pixels),
        tfrecord_image_key=data_config.get("tfrecord_image_key", DATA_DEFAULTS.tfrecord_image_key),
        tfrecord_label_key=data_config.get("tfrecord_label_key", DATA_DEFAULTS.tfrecord_label_key),
        verbose=verbose,
    )
    return images.split(data_config["validation_fraction"], seed=data_config["seed"])


def load_splits(data_config):
    """Loads a run's dataset into memory, split exactly as at training time (small datasets).

    Args:
        data_config: the "data" section of a run's config.json.

    Returns:
        `(train, validation)` ImageSets.
    """
    return tuple(part.to_image_set() for part in stream_splits(data_config, verbose=0))


def check_image_size(data_config, downsample):
    """Refuses an `image_size` that the model's `downsample` does not divide, before any data is read."""
    size = data_config.get("image_size")
    if size and any(side % downsample for side in size):
        raise ValueError(
            f"--image-size {size[0]}x{size[1]} is not divisible by --downsample {downsample}; pick a size "
            f"that is a multiple of {downsample}"
        )


def adversarial_terms(adversarial_config, learning_rate):
    """The loss terms of a run's "adversarial" config section: none while its weight is 0.

    Args:
        adversarial_config: dict of `AdversarialSettings` fields.
        learning_rate: float. The discriminator's learning rate (the model's).

    Returns:
        list: empty, or one `AdversarialLoss`.

    Example:
    >>> adversarial_terms(dataclasses.asdict(ADVERSARIAL_DEFAULTS), learning_rate=2e-3)
    []
    """
    if not adversarial_config["adversarial_weight"]:
        return []
    return [
        AdversarialLoss(
            weight=adversarial_config["adversarial_weight"],
            start=adversarial_config["adversarial_start"],
            loss=adversarial_config["adversarial_loss"],
            learning_rate=learning_rate,
        )
    ]


def perceptual_terms(perceptual_config):
    """The loss terms of a run's "perceptual" config section: none while its weight is 0.

    Args:
        perceptual_config: dict of `PerceptualSettings` fields.

    Returns:
        list: empty, or one `PerceptualLoss` (its VGG16 weights read from `perceptual_network`).

    Raises:
        ValueError / FileNotFoundError: a weight above 0 without a network, or a network
            `vgg16_features` refuses.

    Example:
    >>> perceptual_terms(dataclasses.asdict(PERCEPTUAL_DEFAULTS))
    []
    """
    weight, network = perceptual_config["perceptual_weight"], perceptual_config["perceptual_network"]
    return [PerceptualLoss(weight=weight, network=network)] if weight else []


def check_perceptual_settings(perceptual_config):
    """Refuses a run's perceptual settings before it starts: a weight without a network, or a network
    that cannot be read (a network given without a weight is kept for `vqgen evaluate`'s LPIPS).

    Args:
        perceptual_config: dict of `PerceptualSettings` fields.

    Raises:
        ValueError / FileNotFoundError: as `PerceptualLoss`.

    Example:
    >>> check_perceptual_settings(dataclasses.asdict(PERCEPTUAL_DEFAULTS))
    """
    weight, network = perceptual_config["perceptual_weight"], perceptual_config["perceptual_network"]
    if weight or network is not None:
        PerceptualLoss(weight=weight, network=network)  # reads the weights file once, then drops it


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
            `validation_fraction`), `VQVAESettings`, `TrainingSettings`, `AdversarialSettings` or
            `PerceptualSettings` to override; the rest keep their defaults (a relative
            `perceptual_network` path is recorded as an absolute one). A resumed run must be given
            the same values it started with.

    Returns:
        The trained `VQVAE`.

    Raises:
        ValueError / FileNotFoundError / FileExistsError: bad data, settings or run folder.
        BlockingIOError: another process is writing the run folder.
        WriteError: the storage refused a write (e.g. a full disk); the run can be resumed.

    Example:
    >>> model = train_vqvae("runs/digits", epochs=5, num_embeddings=512)  # doctest: +SKIP
    """
    distribution = make_strategy(strategy)  # first: a multi-worker one must precede any TensorFlow op
    sections = {
        "data": DATA_DEFAULTS,
        "vqvae": VQVAE_DEFAULTS,
        "vqvae_training": VQVAE_TRAINING_DEFAULTS,
        "adversarial": ADVERSARIAL_DEFAULTS,
        "perceptual": PERCEPTUAL_DEFAULTS,
    }
    given = split_settings(settings, sections, "vqgen train")
    network = given["perceptual"].get("perceptual_network")
    if network not in (None, IMAGENET):  # recorded absolute, so a resume from elsewhere finds it
        given["perceptual"]["perceptual_network"] = os.path.abspath(network)
    chosen = {
        name: dataclasses.asdict(dataclasses.replace(sections[name], **given[name])) for name in sections
    }
    fraction = chosen["data"]["validation_fraction"]
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--validation-fraction must be between 0 and 1 (exclusive); received {fraction}")
    run = RunFolder(run_path)
    if overwrite or not run.exists():  # a fresh start: refused before the folder is cleared or written
        check_perceptual_settings(chosen["perceptual"])
    resuming = prepare_run(run, overwrite)
    if resuming:
        config = run.read_config()
        config.setdefault("adversarial", dataclasses.asdict(ADVERSARIAL_DEFAULTS))  # runs from before it
        config.setdefault("perceptual", dataclasses.asdict(PERCEPTUAL_DEFAULTS))
        for name in sections:
            check_resumed_settings(run, "vqvae", config[name], given[name])
        run.remove_stale_temporaries()
        print(f"Resuming the unfinished training in {run.path}")
    else:
        config = chosen
    training = config["vqvae_training"]
    check_image_size(config["data"], config["vqvae"]["downsample"])
    keras.utils.set_random_seed(config["data"]["seed"])
    train_images, validation_images = stream_splits(config["data"], verbose)
    config["data"].update(
        image_shape=list(train_images.image_shape),
        num_classes=train_images.num_classes,
        num_train=len(train_images),
        num_validation=len(validation_images),
    )

    # Runs from before `precision` existed trained in float32.
    with distribution.scope(), precision_policy(training.get("precision", "float32")):
        model_settings = dict(config["vqvae"])
        # The loss by its name; runs from before the choice existed trained with the mean squared error.
        reconstruction_loss = RECONSTRUCTION_LOSSES[model_settings.pop("reconstruction_loss", "mse")]()
        model = VQVAE(
            input_shape=train_images.image_shape,
            seed=config["data"]["seed"],
            reconstruction_loss=reconstruction_loss,
            loss_terms=[
                *adversarial_terms(config["adversarial"], training["learning_rate"]),
                *perceptual_terms(config["perceptual"]),
            ],
            **model_settings,
        )
        model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]))
    # Under several workers each reads its share of the validation images too; Keras sums the metrics
    # over the replicas (their variables aggregate by SUM), so they are those of the whole split.
    validation_data = validation_images.batches(training["batch_size"], strategy=distribution)
    os.makedirs(run.path, exist_ok=True)
    run.write_config(config)

    def train_batches(first_epoch):
        return train_images.epoch_batches(  # under several workers, each reads only its share
            training["batch_size"], config["data"]["seed"], first_epoch, training["epochs"], distribution
        )

    with naming_undecodable_files(train_images, validation_images):  # a file that fails to decode is named
        # TensorBoard: reconstructions, codebook usage (of at most PICTURED_IMAGES: memory stays bounded)
        pictures = vqvae_pictures(validation_images.first_images(PICTURED_IMAGES))
        epochs = training["epochs"]
        keep = training.get("keep_checkpoints", VQVAE_TRAINING_DEFAULTS.keep_checkpoints)  # older runs: none
        train_stage(run, "vqvae", model, train_batches, validation_data, epochs, verbose, pictures, keep)
    # From the array, not `to_dataset(...).take(1)`: a partly read `cache()` makes TensorFlow warn.
    originals = to_float_images(validation_images.first_images(32))
    save_comparison_grid(run.reconstructions_path, originals, model.reconstruct(originals), columns=8)
    config["vqvae_results"] = {
        "compression_ratio": model.compression_ratio,
        "grid_shape": list(model.grid_shape),
        **model.evaluate(validation_data, verbose=0, return_dict=True),
    }
    run.write_config(config)
    finish_stage(run, "vqvae", model)
    return model
