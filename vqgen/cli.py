"""The `vqgen` command line: a thin layer over the Python API.

vqgen run                                   # the whole job on the embedded digits
vqgen train --run runs/digits --epochs 10   # stage 1
vqgen train-prior --run runs/digits --conditional
vqgen sample --run runs/digits -n 64 --label 3 --seed 0 --out samples.png
vqgen export --run runs/digits --out exported/digits
vqgen evaluate --run runs/digits --samples 500
vqgen encode --run runs/digits --data digits --out codes/digits
"""

import argparse
import dataclasses
import errno
import os
import sys
import typing

from prior.registry import DEFAULT_PRIOR, PRIORS
from vqgen.runs.strategies import STRATEGIES
from vqgen.settings import (
    ADVERSARIAL_DEFAULTS,
    DATA_DEFAULTS,
    ENCODE_DEFAULTS,
    EVALUATE_DEFAULTS,
    EXPORT_DEFAULTS,
    EXPORT_FORMAT_DEFAULTS,
    GUIDANCE_DEFAULTS,
    PERCEPTUAL_DEFAULTS,
    PRIOR_TRAINING_DEFAULTS,
    SAMPLE_DEFAULTS,
    VQVAE_DEFAULTS,
    VQVAE_TRAINING_DEFAULTS,
)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _int_list(text):
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text}") from None
    return values


def _argument_type(parse):
    """An argparse `type` from a parser raising ValueError: argparse then shows the parser's message."""

    def parsed(text):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parsed


def _add_settings(group, defaults, prefix="", skip=()):
    """Adds one option per field of the settings dataclass `defaults`, named `--PREFIX-FIELD-NAME`.

    The help text and default come from the dataclass (the one home of defaults); the parsed value
    is None unless the option was given, so only what the user chose reaches the Python API.
    """
    for field in dataclasses.fields(defaults):
        if field.name in skip:
            continue
        default = getattr(defaults, field.name)
        flags = [*field.metadata.get("short_flags", ()), "--" + (prefix + field.name).replace("_", "-")]
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        text = f"{field.metadata['help']} (default: {shown})"
        if isinstance(default, bool):
            group.add_argument(
                *flags,
                dest=prefix + field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
            continue
        kind = next((t for t in typing.get_args(field.type) if t is not type(None)), field.type)
        if "cli_type" in field.metadata and kind is not int:  # its own parser, e.g. --image-size 48x64
            kind = _argument_type(field.metadata["cli_type"])
        elif typing.get_origin(field.type) is tuple:  # a list of integers, e.g. --levels 8,5,5,5
            kind = _int_list
        elif kind is int and "choices" not in field.metadata:
            kind = field.metadata.get("cli_type", _positive_int)
        group.add_argument(
            *flags,
            dest=prefix + field.name,
            type=kind,
            default=None,
            choices=field.metadata.get("choices"),
            help=text,
        )


def _add_common(parser):
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy: default (one device), mirrored (all local "
        "devices), multiworker (TF_CONFIG). Default: %(default)s.",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs instead of refusing"
    )
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="enable TensorFlow's op determinism: two runs with the same --seed "
        "give identical models (slower)",
    )


def _add_stage1_options(parser):
    group = parser.add_argument_group("data")
    source = next(field for field in dataclasses.fields(DATA_DEFAULTS) if field.name == "source")
    group.add_argument(
        "--data",
        dest="source",
        default=None,
        help=f"{source.metadata['help']} (default: {DATA_DEFAULTS.source})",
    )
    _add_settings(group, DATA_DEFAULTS, skip=("source",))
    _add_settings(parser.add_argument_group("stage 1 (VQ-VAE)"), VQVAE_DEFAULTS)
    _add_settings(parser.add_argument_group("stage-1 training"), VQVAE_TRAINING_DEFAULTS)
    _add_settings(parser.add_argument_group("stage-1 adversarial training"), ADVERSARIAL_DEFAULTS)
    _add_settings(parser.add_argument_group("stage-1 perceptual loss"), PERCEPTUAL_DEFAULTS)


def _option_family(kind):
    """`--transformer-*`: the command-line options of a prior whose options carry a prefix."""
    return "--" + kind.option_prefix.replace("_", "-") + "*"


def _add_prior_options(parser):
    """Adds `--prior`, `--conditional`, each registered prior's options, and the stage-2 training options.

    The options of the prior without a prefix (the PixelCNN) share the first group; every other
    prior gets a group of its own, with its options prefixed by its name (`prior.registry`).
    """
    unprefixed = next(kind for kind in PRIORS.values() if not kind.option_prefix)
    group = parser.add_argument_group(f"stage 2 (the prior; {unprefixed.display_name} options)")
    group.add_argument(
        "--prior",
        choices=sorted(PRIORS),
        help=f"which prior to train (default: {DEFAULT_PRIOR}; a resumed prior keeps its own)",
    )
    group.add_argument(
        "--conditional", action="store_true", help="condition the prior on the dataset's class labels"
    )
    _add_settings(group, unprefixed.settings)
    for kind in PRIORS.values():
        if kind.option_prefix:
            title = f"stage 2 ({kind.display_name} prior options, with --prior {kind.name})"
            _add_settings(parser.add_argument_group(title), kind.settings, prefix=kind.option_prefix)
    training = parser.add_argument_group("stage-2 training")
    _add_settings(training, PRIOR_TRAINING_DEFAULTS, prefix="prior_")
    _add_settings(training, GUIDANCE_DEFAULTS)


def _add_sample_options(parser, out_required):
    _add_settings(parser, SAMPLE_DEFAULTS)
    parser.add_argument(
        "--label",
        type=int,
        help="class of every sample (conditional prior; without it, one row per class)",
    )
    parser.add_argument(
        "--out", required=out_required, help="PNG file for the image grid; the codes go next to it as .npy"
    )


def build_parser():
    """Returns the `argparse` parser of the `vqgen` command.

    Returns:
        argparse.ArgumentParser with sub-commands train, train-prior, sample, export and run.
    """
    parser = argparse.ArgumentParser(
        prog="vqgen",
        description="Two-stage discrete generative modelling: a VQ-VAE codes images as grids of "
        "integers, a gated PixelCNN prior learns those grids, and sampling decodes new "
        "grids into images. Outputs go into a run folder.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train stage 1 (the VQ-VAE) into a run folder",
        description="Train a VQ-VAE; writes config.json, vqvae.keras, "
        "metrics.csv, TensorBoard logs, per-epoch checkpoints "
        "and reconstructions.png into --run. Running it again "
        "on an unfinished run resumes it.",
    )
    train.add_argument("--run", required=True, help="run folder")
    _add_stage1_options(train)
    _add_common(train)

    train_prior = commands.add_parser(
        "train-prior",
        help="train stage 2 (the prior) of a run",
        description="Code the run's dataset with its VQ-VAE "
        "(cached in codes/, in shards) and train a prior on the codes (a gated PixelCNN, a Transformer "
        "with --prior transformer, or a masked-token MaskGIT with --prior maskgit); writes prior.keras "
        "and prior_metrics.csv.",
    )
    train_prior.add_argument("--run", required=True, help="run folder with a trained VQ-VAE")
    _add_prior_options(train_prior)
    _add_common(train_prior)

    sample = commands.add_parser(
        "sample",
        help="sample images from a run",
        description="Sample code grids from the prior and decode them. A class-conditional prior "
        "without --label samples every class: -n spread evenly over the classes, one grid row per class "
        "(-n 20 with 10 classes: two of each). --label fixes the class of every sample.",
    )
    sample.add_argument("--run", required=True, help="run folder with both stages trained")
    _add_sample_options(sample, out_required=True)
    sample.add_argument("--seed", type=int, help="same seed, same images")
    sample.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out PNG and its .npy instead of refusing",
    )
    sample.add_argument(
        "--inpaint",
        metavar="IMAGE",
        help="re-draw part of this image (the run's size and channels) instead of sampling from scratch: "
        "-n completions of the code cells --region overlaps, every other code kept",
    )
    sample.add_argument(
        "--region", metavar="Y0,X0,Y1,X1", help="with --inpaint: the pixel box [y0, y1) x [x0, x1) to re-draw"
    )

    export = commands.add_parser(
        "export",
        help="export a run as a TensorFlow SavedModel",
        description="Write a SavedModel with encode, decode, reconstruct "
        "and (with a prior) sample signatures: sample takes num_samples, temperature, seed (and labels "
        "for a class-conditional prior) and nothing else; sample_guided adds guidance (a prior trained "
        "with label dropout), and a MaskGIT prior's sample_with_steps adds its decoding steps. The config "
        "asset, assets/vqgen_config.json, lists every signature and its inputs.",
    )
    export.add_argument("--run", required=True, help="run folder with a trained VQ-VAE")
    export.add_argument(
        "--out", required=True, help="folder to write (local, or any URL TensorFlow writes: gs://, ...)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing export")
    _add_settings(export, EXPORT_FORMAT_DEFAULTS)
    _add_settings(export, EXPORT_DEFAULTS)

    evaluate = commands.add_parser(
        "evaluate",
        help="measure a run: reconstruction, codebook usage, likelihood, samples",
        description="Reconstruction PSNR/SSIM (and LPIPS with --perceptual-network), codebook usage over "
        "the whole set, the prior's bits per code and per image dimension, and (with labels) sample "
        "metrics from a small classifier; prints a table and writes evaluation.json and evaluation/*.png "
        "into the run.",
    )
    evaluate.add_argument("--run", required=True, help="run folder with a trained VQ-VAE")
    evaluate.add_argument(
        "--data", dest="source", help="evaluate on every image of this source (default: the validation split)"
    )
    evaluate.add_argument("--seed", type=int, help="sampling seed (default: the run's seed)")
    _add_settings(evaluate, EVALUATE_DEFAULTS)
    _add_settings(evaluate, PERCEPTUAL_DEFAULTS, skip=("perceptual_weight",))  # LPIPS

    encode = commands.add_parser(
        "encode",
        help="code a dataset with a run's stage 1 and write the codes as shards",
        description="Code every image of --data with the run's VQ-VAE (converted to the run's image size "
        "and channels) and write TFRecord (or .npy) shards with a manifest.json (stage-1 hash, grid shape, "
        "K, code depth, count, shards) to --out, any path TensorFlow's file system knows. Running it "
        "again after an interruption resumes from the last complete shard.",
    )
    encode.add_argument("--run", required=True, help="run folder with a trained VQ-VAE")
    encode.add_argument("--data", dest="source", required=True, help="the images to code (as for train)")
    encode.add_argument("--out", required=True, help="output folder (local, gs://, ...)")
    encode.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    encode.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_settings(encode, ENCODE_DEFAULTS)

    run = commands.add_parser(
        "run",
        help="train, train the prior, sample and export, in one go",
        description="The whole job, with defaults that give recognisable digits on a CPU in minutes "
        "(docs/getting-started.md).",
    )
    for command in commands.choices.values():  # read by vqgen_command before TensorFlow loads
        command.add_argument(
            "--verbose",
            action="store_true",
            help="show TensorFlow's C++ log (`vqgen` hides it unless TF_CPP_MIN_LOG_LEVEL is set)",
        )
    run.add_argument("--run", help="run folder (default: runs/run-<timestamp>)")
    run.add_argument("--quick", action="store_true", help="a quick smoke run (tiny models, one epoch each)")
    run.add_argument(
        "--unconditional",
        action="store_true",
        help="train an unconditional prior even when the data has labels (by default "
        "`run` conditions on labels and samples one row per class)",
    )
    _add_stage1_options(run)
    _add_prior_options(run)
    _add_common(run)
    return parser


def _given(args, defaults, prefix=""):
    """The options of the settings dataclass `defaults` that were given on the command line."""
    names = [field.name for field in dataclasses.fields(defaults)]
    return {
        name: getattr(args, prefix + name) for name in names if getattr(args, prefix + name, None) is not None
    }


def _stage1_settings(args):
    """The stage-1 options given (data, VQ-VAE and training), as `train_vqvae` settings."""
    settings = {}
    for section in (
        DATA_DEFAULTS,
        VQVAE_DEFAULTS,
        VQVAE_TRAINING_DEFAULTS,
        ADVERSARIAL_DEFAULTS,
        PERCEPTUAL_DEFAULTS,
    ):
        settings.update(_given(args, section))
    return settings


def _prior_settings(args):
    """The stage-2 options given, as `train_prior` settings; refuses another prior's options.

    The options of the prior without a prefix (the PixelCNN) apply unless `--prior` names a prior
    whose options carry a prefix; those (`--transformer-*`, `--maskgit-*`) need their `--prior`.
    """
    options = {name: _given(args, kind.settings, prefix=kind.option_prefix) for name, kind in PRIORS.items()}
    for name, kind in PRIORS.items():
        if kind.option_prefix and options[name] and args.prior != name:
            raise ValueError(f"the {_option_family(kind)} options need --prior {name}")
    unprefixed = next(kind for kind in PRIORS.values() if not kind.option_prefix)
    chosen = PRIORS.get(args.prior, unprefixed)
    if options[unprefixed.name] and chosen.option_prefix:
        names = ", ".join("--" + name.replace("_", "-") for name in options[unprefixed.name])
        raise ValueError(
            f"{names}: {unprefixed.display_name} options; the {chosen.display_name}'s are "
            f"{_option_family(chosen)}"
        )
    return {
        **options[unprefixed.name],
        **options[chosen.name],
        **_given(args, PRIOR_TRAINING_DEFAULTS, prefix="prior_"),
        **_given(args, GUIDANCE_DEFAULTS),
    }


def _trainer_options(args):
    """The keyword arguments both stages' trainers take from the common options."""
    return dict(overwrite=args.overwrite, strategy=args.strategy, verbose=0 if args.quiet else 1)


def _dispatch(args):
    if args.command == "train":
        from vqgen.runs.train_vqvae import train_vqvae

        model = train_vqvae(args.run, **_trainer_options(args), **_stage1_settings(args))
        print(
            f"Saved {os.path.join(args.run, 'vqvae.keras')} (codes {'x'.join(map(str, model.code_shape))}, "
            f"compression {model.compression_ratio:.1f}x)"
        )
    elif args.command == "train-prior":
        from vqgen.runs.train_prior import train_prior

        train_prior(
            args.run,
            kind=args.prior,
            conditional=args.conditional,
            **_trainer_options(args),
            **_prior_settings(args),
        )
        print(f"Saved {os.path.join(args.run, 'prior.keras')}")
    elif args.command == "sample" and (args.inpaint or args.region):
        from vqgen.runs.sample_images import inpaint_image, parse_region

        if not (args.inpaint and args.region):
            raise ValueError("--inpaint IMAGE and --region Y0,X0,Y1,X1 go together; give both")
        inpaint_image(
            args.run,
            args.inpaint,
            parse_region(args.region),
            labels=args.label,
            seed=args.seed,
            out=args.out,
            overwrite=args.overwrite,
            **_given(args, SAMPLE_DEFAULTS),
        )
        print(f"Wrote {args.out} and {args.out[:-4]}.npy")
    elif args.command == "sample":
        from vqgen.runs.sample_images import sample_images

        sample_images(
            args.run,
            labels=args.label,
            seed=args.seed,
            out=args.out,
            overwrite=args.overwrite,
            **_given(args, SAMPLE_DEFAULTS),
        )
        print(f"Wrote {args.out} and {args.out[:-4]}.npy")
    elif args.command == "export" and (args.format or EXPORT_FORMAT_DEFAULTS.format) != "saved_model":
        from vqgen.runs.portable_run import export_portable_run

        export_portable_run(args.run, args.out, args.format, overwrite=args.overwrite)
        print(f"Wrote the {args.format} export {args.out}")
    elif args.command == "export":
        from vqgen.runs.export_run import export_run

        export_run(args.run, args.out, overwrite=args.overwrite, **_given(args, EXPORT_DEFAULTS))
        print(f"Wrote SavedModel {args.out}")
    elif args.command == "evaluate":
        from vqgen.runs.evaluate_run import evaluate_run, format_table

        result = evaluate_run(
            args.run,
            source=args.source,
            seed=args.seed,
            **_given(args, EVALUATE_DEFAULTS),
            **_given(args, PERCEPTUAL_DEFAULTS),
        )
        print(format_table(result))
        print(f"Wrote {os.path.join(args.run, 'evaluation.json')} and the pictures in evaluation/")
    elif args.command == "encode":
        _encode(args)
    elif args.command == "run":
        from vqgen.runs.run_job import run_job

        run_job(
            args.run,
            kind=args.prior,
            conditional=True if args.conditional else (False if args.unconditional else None),
            quick=args.quick,
            stage1_settings=_stage1_settings(args),
            prior_settings=_prior_settings(args),
            **_trainer_options(args),
        )


def _encode(args):
    """`vqgen encode`: the options, as `encode_run` arguments."""
    from vqgen.runs.encode_run import encode_run

    settings = _given(args, ENCODE_DEFAULTS)
    if "format" in settings:
        settings["file_format"] = settings.pop("format")
    manifest = encode_run(
        args.run, args.source, args.out, overwrite=args.overwrite, verbose=0 if args.quiet else 1, **settings
    )
    print(f"Wrote {manifest['num_examples']:,} codes in {len(manifest['shards'])} shards to {args.out}")


def _error_line(error, command):
    """The one-line message for a user-facing error, or None for anything else.

    A write the storage refused (full disk, quota, read-only, I/O error), wherever it surfaced
    (Python, h5py, TensorFlow), says which file and that the run can be resumed.
    """
    import tensorflow as tf

    from vqgen.runs.write_error import WriteError, storage_errno

    number = storage_errno(error)
    if not isinstance(error, WriteError) and number in (errno.ENOSPC, errno.EDQUOT):
        error = WriteError(number, getattr(error, "filename", None) or "the output")
    if isinstance(error, WriteError):
        return error.advice(resumable=command in ("train", "train-prior", "run"))
    if isinstance(error, (ValueError, OSError, tf.errors.InvalidArgumentError)):
        return " ".join(str(error).split()) or type(error).__name__
    message = " ".join(getattr(error, "message", "").split())
    if isinstance(error, tf.errors.UnimplementedError) and "File system scheme" in message:
        return (
            f"{message}; install TensorFlow's plugin for it (s3://: pip install tensorflow-io) or use a "
            "local path"
        )
    remote_errors = (  # a URL path (gs://...) missing, not allowed or not reachable
        tf.errors.NotFoundError,
        tf.errors.PermissionDeniedError,
        tf.errors.UnauthenticatedError,
        tf.errors.FailedPreconditionError,
    )
    if isinstance(error, remote_errors):
        return f"{message}; check the path and your access to it"
    return None


def main(argv=None):
    """Entry point of the `vqgen` command.

    Args:
        argv: list of str or None (then `sys.argv[1:]`).

    Returns:
        0 on success; on a user error prints one line `vqgen: error: ...` to stderr and exits 2.

    Example:
    >>> main(["train", "--run", "runs/digits", "--epochs", "1"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    import tensorflow as tf

    if getattr(args, "deterministic", False):
        tf.config.experimental.enable_op_determinism()
    try:
        _dispatch(args)
    except Exception as error:
        message = _error_line(error, args.command)
        if message is None:  # a bug, not a user error: keep the traceback
            raise
        print(f"vqgen: error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        resumable = args.command in ("train", "train-prior", "run")
        print(
            "vqgen: interrupted" + ("; run the same command again to resume" if resumable else ""),
            file=sys.stderr,
        )
        sys.exit(130)
    return 0


if __name__ == "__main__":
    main()
