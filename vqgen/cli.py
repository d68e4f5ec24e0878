"""The `vqgen` command line: a thin layer over the Python API.

    vqgen run                                   # the whole job on the embedded digits
    vqgen train --run runs/digits --epochs 10   # stage 1
    vqgen train-prior --run runs/digits --conditional
    vqgen sample --run runs/digits -n 64 --label 3 --seed 0 --out samples.png
    vqgen export --run runs/digits --out exported/digits
"""

import argparse
import datetime
import os
import sys

from vqgen.runs.strategies import STRATEGIES


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_common(parser):
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="tf.distribute strategy: default (one device), mirrored (all local "
                             "devices), multiworker (TF_CONFIG). Default: %(default)s.")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs instead of refusing")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    parser.add_argument("--deterministic", action="store_true",
                        help="enable TensorFlow's op determinism: two runs with the same --seed "
                             "give identical models (slower)")


def _add_stage1_options(parser):
    group = parser.add_argument_group("stage 1 (VQ-VAE)")
    group.add_argument("--data", default="digits",
                       help="dataset: 'digits' (embedded 5,000 MNIST digits), 'tfds:NAME', a folder "
                            "of idx .gz files, a folder of images, or an .npz/.npy file. "
                            "Default: %(default)s.")
    group.add_argument("--data-dir", help="TFDS data folder (tfds: sources only)")
    group.add_argument("--seed", type=int, default=0,
                       help="fixes split, data order, initialisation and dead-code restarts "
                            "(default %(default)s); add --deterministic for identical runs")
    group.add_argument("--epochs", type=_positive_int, help="stage-1 epochs (default 10)")
    group.add_argument("--batch-size", type=_positive_int, help="default 64")
    group.add_argument("--learning-rate", type=float, help="Adam learning rate (default 2e-3)")
    group.add_argument("--validation-fraction", type=float, help="held-out share (default 0.1)")
    group.add_argument("--num-embeddings", type=_positive_int, help="codebook size K (default 256)")
    group.add_argument("--embedding-dim", type=_positive_int, help="code size D (default 16)")
    group.add_argument("--downsample", type=int, choices=(2, 4, 8), help="spatial factor (default 4)")
    group.add_argument("--hidden-channels", type=_positive_int, help="conv width (default 64)")
    group.add_argument("--residual-channels", type=_positive_int, help="residual width (default 32)")
    group.add_argument("--num-residual-blocks", type=int, help="default 2")
    group.add_argument("--beta", type=float, help="commitment cost (default 0.25)")
    group.add_argument("--no-ema", dest="ema", action="store_false", default=None,
                       help="learn the codebook by gradient instead of EMA")
    group.add_argument("--restart-after-steps", type=_positive_int,
                       help="re-seed codes unused for this many steps (default 20)")


def _add_prior_options(parser):
    group = parser.add_argument_group("stage 2 (PixelCNN prior)")
    group.add_argument("--conditional", action="store_true",
                       help="condition the prior on the dataset's class labels")
    group.add_argument("--prior-epochs", dest="prior_epochs", type=_positive_int,
                       help="prior epochs (default 20)")
    group.add_argument("--prior-batch-size", type=_positive_int, help="default 64")
    group.add_argument("--prior-learning-rate", type=float, help="default 1e-3")
    group.add_argument("--num-layers", type=_positive_int, help="gated layers (default 5)")
    group.add_argument("--filters", type=_positive_int, help="prior width (default 64)")


def _add_sample_options(parser, out_required):
    parser.add_argument("-n", "--num", type=_positive_int, default=64, help="images to sample (default 64)")
    parser.add_argument("--temperature", type=float, default=1.0, help="> 0; lower is more conservative")
    parser.add_argument("--top-k", type=int, help="sample among the K most likely codes only")
    parser.add_argument("--label", type=int, help="class of every sample (conditional prior)")
    parser.add_argument("--out", required=out_required, help="PNG file for the image grid; the codes "
                        "go next to it as .npy")


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

    train = commands.add_parser("train", help="train stage 1 (the VQ-VAE) into a run folder",
                                description="Train a VQ-VAE; writes config.json, vqvae.keras, "
                                            "metrics.csv, TensorBoard logs, per-epoch checkpoints "
                                            "and reconstructions.png into --run. Running it again "
                                            "on an unfinished run resumes it.")
    train.add_argument("--run", required=True, help="run folder")
    _add_stage1_options(train)
    _add_common(train)

    train_prior = commands.add_parser("train-prior", help="train stage 2 (the prior) of a run",
                                      description="Code the run's dataset with its VQ-VAE "
                                                  "(cached in codes.npz) and train a PixelCNN "
                                                  "prior; writes prior.keras and prior_metrics.csv.")
    train_prior.add_argument("--run", required=True, help="run folder with a trained VQ-VAE")
    _add_prior_options(train_prior)
    _add_common(train_prior)

    sample = commands.add_parser("sample", help="sample images from a run",
                                 description="Sample code grids from the prior and decode them.")
    sample.add_argument("--run", required=True, help="run folder with both stages trained")
    _add_sample_options(sample, out_required=True)
    sample.add_argument("--seed", type=int, help="same seed, same images")

    export = commands.add_parser("export", help="export a run as a TensorFlow SavedModel",
                                 description="Write a SavedModel with encode, decode, reconstruct "
                                             "and (with a prior) sample signatures.")
    export.add_argument("--run", required=True, help="run folder with a trained VQ-VAE")
    export.add_argument("--out", required=True, help="SavedModel folder to write")
    export.add_argument("--overwrite", action="store_true", help="replace an existing export")

    run = commands.add_parser("run", help="train, train the prior, sample and export, in one go",
                              description="The whole job with defaults that give recognisable "
                                          "digits in about 6 minutes on 2 CPU cores.")
    run.add_argument("--run", help="run folder (default: runs/run-<timestamp>)")
    run.add_argument("--quick", action="store_true", help="a one-minute smoke run (tiny models)")
    run.add_argument("--unconditional", action="store_true",
                     help="train an unconditional prior even when the data has labels (by default "
                          "`run` conditions on labels and samples one row per class)")
    _add_stage1_options(run)
    _add_prior_options(run)
    _add_common(run)
    return parser


STAGE1_SETTINGS = ("epochs", "batch_size", "learning_rate", "validation_fraction", "num_embeddings",
                   "embedding_dim", "downsample", "hidden_channels", "residual_channels",
                   "num_residual_blocks", "beta", "ema", "restart_after_steps")
PRIOR_SETTINGS = {"prior_epochs": "epochs", "prior_batch_size": "batch_size",
                  "prior_learning_rate": "learning_rate", "num_layers": "num_layers", "filters": "filters"}
QUICK_STAGE1 = dict(epochs=1, hidden_channels=32, num_residual_blocks=1)
QUICK_PRIOR = dict(epochs=1, num_layers=3, filters=32)


def _given(args, names):
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _stage1(args, **defaults):
    from vqgen.runs.train_vqvae import train_vqvae

    settings = {**defaults, **_given(args, STAGE1_SETTINGS)}
    return train_vqvae(args.run, source=args.data, data_dir=args.data_dir, seed=args.seed,
                       overwrite=args.overwrite, strategy=args.strategy,
                       verbose=0 if args.quiet else 1, **settings)


def _stage2(args, **defaults):
    from vqgen.runs.train_prior import train_prior

    settings = {**defaults, **{PRIOR_SETTINGS[k]: v for k, v in _given(args, PRIOR_SETTINGS).items()}}
    return train_prior(args.run, conditional=args.conditional, overwrite=args.overwrite,
                       strategy=args.strategy, verbose=0 if args.quiet else 1, **settings)


def _export(run_path, out, overwrite):
    from vqgen.runs.export_run import export_run

    export_run(run_path, out, overwrite=overwrite)


def _command_run(args):
    from vqgen.runs.run_folder import RunFolder
    from vqgen.runs.sample_images import sample_images

    if args.run is None:
        args.run = os.path.join("runs", datetime.datetime.now().strftime("run-%Y%m%d-%H%M%S"))
    run = RunFolder(args.run)
    quick = args.quick
    # Run again after a crash, `run` skips the stages that finished and resumes the one that did not.
    if args.overwrite or not os.path.exists(run.vqvae_path):
        _stage1(args, **(QUICK_STAGE1 if quick else {}))
    print(f"stage 1: {run.vqvae_path} (reconstructions: {run.reconstructions_path})")
    config = run.read_config()
    num_classes = config["data"]["num_classes"]
    if args.overwrite or not os.path.exists(run.prior_path):
        args.conditional = args.conditional or (bool(num_classes) and not args.unconditional)
        _stage2(args, **(QUICK_PRIOR if quick else {}))
    else:
        args.conditional = config["prior"]["conditional"]
    print(f"stage 2: {run.prior_path}" + (" (class-conditional)" if args.conditional else ""))
    samples = run.file("samples.png")
    if args.conditional:  # a row of 8 samples per class
        labels = [row for row in range(min(num_classes, 10)) for _ in range(8)]
        sample_images(args.run, num=len(labels), labels=labels, seed=args.seed, out=samples)
    else:
        sample_images(args.run, num=64, seed=args.seed, out=samples)
    print(f"samples: {samples} (codes: {run.file('samples.npy')})")
    _export(args.run, run.file("saved_model"), overwrite=True)  # the run's own export, of these models
    print(f"export: {run.file('saved_model')}")


def _dispatch(args):
    if args.command == "train":
        model = _stage1(args)
        print(f"Saved {os.path.join(args.run, 'vqvae.keras')} (codes {model.grid_shape[0]}x"
              f"{model.grid_shape[1]}, compression {model.compression_ratio:.1f}x)")
    elif args.command == "train-prior":
        _stage2(args)
        print(f"Saved {os.path.join(args.run, 'prior.keras')}")
    elif args.command == "sample":
        from vqgen.runs.sample_images import sample_images

        sample_images(args.run, num=args.num, temperature=args.temperature, top_k=args.top_k,
                      labels=args.label, seed=args.seed, out=args.out)
        print(f"Wrote {args.out} and {args.out[:-4]}.npy")
    elif args.command == "export":
        _export(args.run, args.out, args.overwrite)
        print(f"Wrote SavedModel {args.out}")
    elif args.command == "run":
        _command_run(args)


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
    except (ValueError, OSError, tf.errors.InvalidArgumentError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"vqgen: error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        resumable = args.command in ("train", "train-prior", "run")
        print("vqgen: interrupted" + ("; run the same command again to resume" if resumable else ""),
              file=sys.stderr)
        sys.exit(130)
    return 0


if __name__ == "__main__":
    main()
