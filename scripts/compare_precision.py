"""Each stage under each Keras precision policy: speed and held-out quality, in one process.

`--stage vqvae` (the default) trains vqgen's default VQ-VAE with K=512 on the embedded 128x128
`photos` crops (the same 10% held out, the same seed and data order) once per policy and prints
training images/s (epochs after the first, which includes tracing) and held-out PSNR.

`--stage prior` first trains one stage-1 model (vqgen's defaults and default precision, batch 64,
`--vqvae-epochs`) on `--data` and codes the training and held-out images with it; then trains
the unconditional `--prior` with its defaults (the PixelCNN unless named) on those same codes
once per policy (same initial weights, same batches) and prints training grids/s and held-out
bits per code: after every epoch under the training policy (what `vqgen train-prior` records),
and at the end from `log_prob` of the saved prior loaded in float32, the form in which vqgen
samples and exports it.

In both, the epochs of the policies are interleaved so other jobs on the machine slow each alike,
and `--seeds` trains each policy from several initial weights to show the seed-to-seed spread.

    python scripts/compare_precision.py                          # stage 1, 6 epochs, batch 32
    python scripts/compare_precision.py --epochs 2 --policies float32 mixed_bfloat16
    python scripts/compare_precision.py --stage prior --data digits --num-embeddings 256 --epochs 10
    python scripts/compare_precision.py --stage prior --data photos:32 --epochs 20 --seeds 0 1
    python scripts/compare_precision.py --stage prior --prior transformer --data photos:32 --epochs 20
"""

import argparse
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from prior.registry import DEFAULT_PRIOR, PRIORS
from vqgen import VQVAE
from vqgen.data import load_images, split_images, to_dataset
from vqgen.runs.precision import precision_policy
from vqgen.settings import PRIOR_TRAINING_DEFAULTS, VQVAE_TRAINING_DEFAULTS


def held_out_psnr(model, images):
    originals = images.astype("float32") / 255.0
    reconstructions = model.reconstruct(images)
    mse = np.mean((reconstructions - originals) ** 2, axis=(1, 2, 3))
    return float(np.mean(-10.0 * np.log10(mse + 1e-10)))


def float32_bits_per_code(model, codes):
    """Held-out bits per code of `model` saved and loaded again in float32, from `log_prob`."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "prior.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    return float(-np.mean(loaded.log_prob(codes)) / (codes[0].size * np.log(2.0)))


def build_models(policies, seeds, build):
    """`{(policy, seed): model}`, each built by `build()` under its policy after seeding Keras."""
    models = {}
    for policy in policies:
        for seed in seeds:
            with precision_policy(policy):
                keras.utils.set_random_seed(seed)
                models[policy, seed] = build(seed)
    return models


def train_interleaved(models, batches_of_epoch, epochs, after_epoch=None):
    """Trains every model one epoch in turn, `epochs` times; returns `{key: [seconds per epoch]}`."""
    seconds = {key: [] for key in models}
    for epoch in range(epochs):
        for key, model in models.items():
            batches = batches_of_epoch(epoch)
            start = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0)
            seconds[key].append(time.perf_counter() - start)
        extra = after_epoch() if after_epoch else ""
        print(
            f"epoch {epoch + 1}: "
            + ", ".join(f"{policy} seed {seed} {s[-1]:.1f} s" for (policy, seed), s in seconds.items())
            + extra
            + f"  load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    return seconds


def train_priors_interleaved(models, train_codes, validation_codes, batch_size, epochs):
    """Trains every prior of `models` on `train_codes` with `train_interleaved` (epoch `e` shuffled
    with seed `e`) and evaluates each on `validation_codes` after every epoch.

    Returns:
        `(seconds, curves)`: `{key: [seconds per epoch]}` and `{key: [held-out bits per code per epoch]}`.
    """
    # One batch: the held-out figure is the mean over every validation grid.
    validation_batches = tf.data.Dataset.from_tensor_slices(validation_codes).batch(len(validation_codes))
    curves = {key: [] for key in models}

    def evaluate_all():
        for key, model in models.items():
            curves[key].append(
                model.evaluate(validation_batches, verbose=0, return_dict=True)["bits_per_code"]
            )
        return "; held-out bits/code " + ", ".join(f"{curve[-1]:.4f}" for curve in curves.values())

    seconds = train_interleaved(
        models,
        lambda epoch: (
            tf.data.Dataset.from_tensor_slices(train_codes)
            .shuffle(len(train_codes), seed=epoch)
            .batch(batch_size)
        ),
        epochs,
        evaluate_all,
    )
    return seconds, curves


def steady_rate(items, seconds):
    """Items per second over the epochs after the first (which includes tracing)."""
    steady = seconds[1:] or seconds
    return items * len(steady) / sum(steady)


def compare_vqvae(args, train, validation):
    models = build_models(
        args.policies,
        args.seeds,
        lambda seed: VQVAE(input_shape=train.image_shape, num_embeddings=args.num_embeddings, seed=seed),
    )
    for model in models.values():
        model.compile(optimizer=keras.optimizers.Adam(VQVAE_TRAINING_DEFAULTS.learning_rate))
    batch_size = args.batch_size or 32
    seconds = train_interleaved(
        models, lambda epoch: to_dataset(train, batch_size, shuffle=True, seed=epoch), args.epochs
    )
    for (policy, seed), model in models.items():
        print(
            f"{policy:16s} seed {seed}  {steady_rate(len(train), seconds[policy, seed]):7.1f} images/s "
            f"(epochs 2+)  held-out PSNR {held_out_psnr(model, validation.images):.2f} dB  "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )


def code_with_stage1(args, train, validation):
    """Trains one stage-1 model (defaults, default precision, `args.vqvae_epochs`, K =
    `args.num_embeddings`) on `train`; returns it with the training and held-out codes."""
    keras.utils.set_random_seed(0)
    with precision_policy(VQVAE_TRAINING_DEFAULTS.precision):
        vqvae = VQVAE(input_shape=train.image_shape, num_embeddings=args.num_embeddings, seed=0)
        vqvae.compile(optimizer=keras.optimizers.Adam(VQVAE_TRAINING_DEFAULTS.learning_rate))
    start = time.perf_counter()
    vqvae.fit(
        to_dataset(train, VQVAE_TRAINING_DEFAULTS.batch_size, shuffle=True, seed=0),
        epochs=args.vqvae_epochs,
        verbose=0,
    )
    train_codes, validation_codes = vqvae.encode(train.images), vqvae.encode(validation.images)
    print(
        f"stage 1: {args.vqvae_epochs} epochs in {time.perf_counter() - start:.0f} s, held-out PSNR "
        f"{held_out_psnr(vqvae, validation.images):.2f} dB; codes {train_codes.shape[1:]} of K="
        f"{vqvae.num_embeddings}, {len(np.unique(train_codes))} distinct in training",
        flush=True,
    )
    return vqvae, train_codes, validation_codes


def compare_priors(args, train, validation):
    # One stage-1 model codes the data; every prior learns the same codes.
    vqvae, train_codes, validation_codes = code_with_stage1(args, train, validation)
    prior_class = PRIORS[args.prior].model_class
    models = build_models(
        args.policies, args.seeds, lambda seed: prior_class(vqvae.num_embeddings, vqvae.grid_shape)
    )
    for model in models.values():
        model.compile(optimizer=keras.optimizers.Adam(PRIOR_TRAINING_DEFAULTS.learning_rate))
    batch_size = args.batch_size or PRIOR_TRAINING_DEFAULTS.batch_size
    seconds, curves = train_priors_interleaved(models, train_codes, validation_codes, batch_size, args.epochs)
    print(f"\n{prior_class.__name__}, {next(iter(models.values())).count_params():,} parameters")
    print("| policy | seed | train grids/s (epochs 2+) | held-out bits/code, training policy | in float32 |")
    print("|---|---|---|---|---|")
    for (policy, seed), model in models.items():
        print(
            f"| {policy} | {seed} | {steady_rate(len(train_codes), seconds[policy, seed]):.1f} | "
            f"{curves[policy, seed][-1]:.4f} | {float32_bits_per_code(model, validation_codes):.4f} |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage", choices=("vqvae", "prior"), default="vqvae", help="the stage compared")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the compared stage")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="batch of the compared stage (default: 32 for vqvae, the prior's default)",
    )
    parser.add_argument("--data", default="photos")
    parser.add_argument("--num-embeddings", type=int, default=512)
    parser.add_argument("--prior", choices=sorted(PRIORS), default=DEFAULT_PRIOR, help="prior stage: which")
    parser.add_argument("--vqvae-epochs", type=int, default=5, help="prior stage: epochs of the coding model")
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="initial-weight seeds per policy")
    args = parser.parse_args()
    train, validation = split_images(load_images(args.data), 0.1, seed=0)
    print(f"load average {os.getloadavg()}; {len(train)} train, {len(validation)} held out", flush=True)
    (compare_priors if args.stage == "prior" else compare_vqvae)(args, train, validation)


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_precision")
