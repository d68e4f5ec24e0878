"""Stage 2 of the workflow: code the dataset with a run's VQ-VAE and train a prior on its codes."""

import dataclasses

import keras
import numpy as np

from prior.registry import DEFAULT_PRIOR, prior_kind
from vqgen.runs.code_shards import CodeShards
from vqgen.runs.epoch_pictures import prior_pictures
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.precision import precision_policy
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.run_lock import locks_run
from vqgen.runs.stage_trainer import check_resumed_settings, finish_stage, is_resumable, train_stage
from vqgen.runs.strategies import make_strategy
from vqgen.runs.train_vqvae import stream_splits
from vqgen.settings import GUIDANCE_DEFAULTS, PRIOR_TRAINING_DEFAULTS, split_settings


def coded_dataset(run, vqvae, data_config, verbose=1):
    """Returns the run's coded train/validation splits, coding (in shards) what is missing, damaged or stale.

    The codes live in `RUN/codes/` (see `vqgen.runs.code_shards`): written shard by shard as the
    dataset is coded, checked against the hash of `vqvae.keras` and of each shard when opened.

    Args:
        run: RunFolder.
        vqvae: the run's VQVAE.
        data_config: the run's "data" config section.
        verbose: int. 1 shows a progress bar while coding.

    Returns:
        `CodeShards`: int32 codes `[N, h, w]` (`[N, h, w, d]` for a residual-VQ model) and labels
        (`[N]`, or empty when the dataset has none) of "train" and "validation".
    """

    def streams():
        train, validation = stream_splits(data_config, verbose)
        return {"train": train, "validation": validation}

    return CodeShards.build_or_open(run.codes_path, vqvae, run.model_path("vqvae"), streams, verbose)


def _prior_inputs(codes, labels, conditional):
    return {"codes": codes, "labels": labels} if conditional else codes


@locks_run()
def train_prior(
    run_path, conditional=False, overwrite=False, strategy="default", verbose=1, kind=None, **settings
):
    """Trains the stage-2 prior of a run and saves it as prior.keras.

    Writes codes/ (the coded dataset, in shards), prior.keras, prior_metrics.csv, checkpoints and
    TensorBoard logs (as stage 1 does), and the validation bits per code (MaskGIT: bits per masked
    code, its masked-token loss) into config.json under "prior_results".

    Args:
        run_path: str. A run folder with a trained VQ-VAE.
        conditional: bool. Condition on the dataset's class labels.
        overwrite: bool. Replace an existing prior.
        strategy: "default", "mirrored" or "multiworker".
        verbose: Keras verbosity.
        kind: "pixelcnn", "transformer", "maskgit" or None: which prior (a name of
            `prior.registry.PRIORS`), recorded as `config["prior"]["kind"]`. None means the
            recorded kind when resuming, else `prior.registry.DEFAULT_PRIOR`.
        **settings: any field of that prior's settings (`prior.PixelCNNSettings`,
            `prior.TransformerSettings` or `prior.MaskGITSettings`), of
            `vqgen.settings.GuidanceSettings` (`label_dropout`, used by a conditional prior only;
            recorded in `config["prior"]`) or of `vqgen.settings.TrainingSettings`. A resumed
            prior must be given the same values (and kind) it started with.

    Returns:
        The trained `prior.PixelCNN`, `prior.Transformer` or `prior.MaskGIT`.

    Raises:
        FileNotFoundError: the run or its VQ-VAE is missing.
        FileExistsError: a prior exists and `overwrite` is False.
        ValueError: an unknown `kind`, `conditional` on a dataset without labels, `label_dropout`
            > 0 without `conditional`, bad settings, or settings that differ from those of the
            unfinished prior being resumed.

    Example:
    >>> prior = train_prior("runs/digits", conditional=True, epochs=5)  # doctest: +SKIP
    """
    distribution = make_strategy(strategy)  # first: a multi-worker one must precede any TensorFlow op
    if kind is not None:
        prior_kind(kind)  # an unknown name fails before the run is read
    run = RunFolder(run_path)
    config = run.read_config()
    resuming = is_resumable(run, "prior") and "prior" in config and not overwrite
    if kind is None:  # an unfinished prior keeps its kind (runs from before the Transformer: PixelCNN)
        kind = config["prior"].get("kind", DEFAULT_PRIOR) if resuming else DEFAULT_PRIOR
    registered = prior_kind(kind)
    sections = {
        "prior": registered.settings,
        "guidance": GUIDANCE_DEFAULTS,
        "prior_training": PRIOR_TRAINING_DEFAULTS,
    }
    given = split_settings(settings, sections, "vqgen train-prior")
    if not resuming and not conditional and given["guidance"].get("label_dropout", 0) > 0:
        raise ValueError(
            "--label-dropout needs a class-conditional prior; add --conditional or drop --label-dropout"
        )
    if run.finished("prior") and not overwrite:
        raise FileExistsError(
            f"{run.model_path('prior')} already exists; pass --overwrite to train a new prior."
        )
    if overwrite:  # a fresh prior, not the continuation of an interrupted one
        run.remove_backup("prior")
    run.remove_stale_temporaries()
    if is_resumable(run, "prior") and "prior" in config:
        requested = {
            **given["prior"],
            **given["guidance"],
            "kind": kind,
            **({"conditional": True} if conditional else {}),
        }
        check_resumed_settings(run, "prior", {"kind": DEFAULT_PRIOR, **config["prior"]}, requested)
        check_resumed_settings(run, "prior", config["prior_training"], given["prior_training"])
        print(f"Resuming the unfinished prior training in {run.path}")
        conditional = config["prior"]["conditional"]
    else:
        label_dropout = dataclasses.replace(GUIDANCE_DEFAULTS, **given["guidance"]).label_dropout
        config["prior"] = {
            "kind": kind,
            **dataclasses.asdict(dataclasses.replace(sections["prior"], **given["prior"])),
            "conditional": bool(conditional),
            "label_dropout": label_dropout if conditional else 0.0,
        }
        config["prior_training"] = dataclasses.asdict(
            dataclasses.replace(sections["prior_training"], **given["prior_training"])
        )
    num_classes = config["data"].get("num_classes")
    if conditional and not num_classes:
        raise ValueError(
            f"The dataset {config['data']['source']!r} has no labels, so the prior cannot be "
            "conditional; drop --conditional."
        )
    vqvae = load_stage_model(run, "vqvae")
    shards = coded_dataset(run, vqvae, config["data"], verbose)
    training = config["prior_training"]
    keras.utils.set_random_seed(config["data"]["seed"])
    # Runs from before `precision` existed trained in float32.
    with distribution.scope(), precision_policy(training.get("precision", "float32")):
        model = registered.model_class(
            num_embeddings=vqvae.num_embeddings,
            grid_shape=vqvae.token_grid_shape,  # (h, w * d): residual-VQ depth interleaved
            num_classes=num_classes if conditional else None,
            label_dropout=config["prior"].get("label_dropout", 0.0),  # runs from before the option: 0
            **{field.name: config["prior"][field.name] for field in dataclasses.fields(sections["prior"])},
        )
        model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]))

    def prior_inputs(codes, labels):  # one code per cell, as every prior takes
        return _prior_inputs(vqvae.to_token_grid(codes), labels, conditional)

    for name in ("train", "validation"):  # checked shard by shard, never all in memory
        for codes, labels in shards.shards(name):
            model.check_codes(vqvae.to_token_grid(np.asarray(codes)), labels if conditional else None)
    # Under several workers, each reads only its share of the codes (train and validation).
    validation_data = shards.batches("validation", training["batch_size"], prior_inputs, distribution)

    def train_batches(first_epoch):
        seed, batch_size = config["data"]["seed"], training["batch_size"]
        epochs = training["epochs"]
        return shards.epoch_batches(
            "train", batch_size, seed, first_epoch, epochs, prior_inputs, distribution
        )

    run.write_config(config)
    pictures = prior_pictures(vqvae, num_classes, config["data"]["seed"])  # TensorBoard: a sample grid
    keep = training.get("keep_checkpoints", PRIOR_TRAINING_DEFAULTS.keep_checkpoints)  # older runs: none
    train_stage(
        run, "prior", model, train_batches, validation_data, training["epochs"], verbose, pictures, keep
    )
    results = model.evaluate(validation_data, verbose=0, return_dict=True)
    config["prior_results"] = {  # MaskGIT has no bits per code, only its masked-token loss
        f"validation_{name}": results[name]
        for name in ("bits_per_code", "masked_bits_per_code")
        if name in results
    }
    run.write_config(config)
    finish_stage(run, "prior", model)
    return model
