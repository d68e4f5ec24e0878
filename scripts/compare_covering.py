"""The two PixelCNN depths that see a whole 32x32 grid, trained on the same codes: speed and held-out bits.

    python scripts/compare_covering.py                       # photos 128x128 -> 32x32, K=512, 4 epochs
    python scripts/compare_covering.py --epochs 1 --vqvae-epochs 1 --data photos:32   # a smoke run

A prior sees every earlier position of an h x w grid when `blocks * (kernel // 2) >= max(w - 1,
h - 2)` (`prior.pixelcnn.span_to_cover`). On 32x32 two choices do: the default, 16 blocks of
kernel 5 (`num_layers=None` picks the depth for kernel 5), and 8 blocks of kernel 9 (the depth
`num_layers=None` picks for `kernel_size=9`). One stage-1 model (vqgen's defaults,
`--vqvae-epochs`) codes `--data`; both priors (unconditional, the default 64 filters, Adam at the
`vqgen train-prior` learning rate, the prior's default precision, the same seed and batches) then
train on those codes for `--epochs`, their epochs interleaved so other jobs slow each alike. It
prints, per epoch, each prior's seconds and held-out bits per code, and at the end training
grids/s (epochs after the first, which includes tracing), the held-out bits per code of the prior
saved and loaded in float32 (as vqgen samples it), and the bits each reached within the faster
prior's total training time.
"""

import argparse
import os

import keras
from compare_precision import code_with_stage1, float32_bits_per_code, steady_rate, train_priors_interleaved

import prior
from vqgen.data import load_images, split_images
from vqgen.runs.precision import precision_policy
from vqgen.settings import PRIOR_TRAINING_DEFAULTS

KERNEL_SIZES = (5, 9)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="photos", help="images to code (default: the 128x128 photos)")
    parser.add_argument("--num-embeddings", type=int, default=512)
    parser.add_argument("--vqvae-epochs", type=int, default=5, help="epochs of the coding model")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of each prior")
    parser.add_argument("--seed", type=int, default=0, help="initial weights of both priors")
    args = parser.parse_args()
    train, validation = split_images(load_images(args.data), 0.1, seed=0)
    print(f"load average {os.getloadavg()}; {len(train)} train, {len(validation)} held out", flush=True)
    vqvae, train_codes, validation_codes = code_with_stage1(args, train, validation)

    models = {}
    for kernel_size in KERNEL_SIZES:
        with precision_policy(PRIOR_TRAINING_DEFAULTS.precision):
            keras.utils.set_random_seed(args.seed)
            model = prior.PixelCNN(vqvae.num_embeddings, vqvae.grid_shape, kernel_size=kernel_size)
            model.compile(optimizer=keras.optimizers.Adam(PRIOR_TRAINING_DEFAULTS.learning_rate))
        models[f"{model.num_layers} blocks of kernel {kernel_size}", args.seed] = model
    seconds, curves = train_priors_interleaved(
        models, train_codes, validation_codes, PRIOR_TRAINING_DEFAULTS.batch_size, args.epochs
    )
    budget = min(sum(times) for times in seconds.values())
    print(
        f"\n{args.data} coded as {vqvae.grid_shape} grids of K={vqvae.num_embeddings}; "
        f"{args.epochs} epochs, precision {PRIOR_TRAINING_DEFAULTS.precision}; load {os.getloadavg()[0]:.1f}"
    )
    print(
        "| prior | parameters | train grids/s (epochs 2+) | held-out bits/code per epoch | in float32 | "
        f"within {budget:.0f} s |"
    )
    print("|---|---|---|---|---|---|")
    for key, model in models.items():
        elapsed, within = 0.0, None
        for epoch_seconds, bits in zip(seconds[key], curves[key]):
            elapsed += epoch_seconds
            if elapsed <= budget * 1.0001:
                within = bits
        print(
            f"| {key[0]} | {model.count_params():,} | {steady_rate(len(train_codes), seconds[key]):.2f} | "
            + " ".join(f"{bits:.3f}" for bits in curves[key])
            + f" | {float32_bits_per_code(model, validation_codes):.4f} | "
            + ("-" if within is None else f"{within:.3f}")
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_covering")
