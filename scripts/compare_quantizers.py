"""Stage 1 with each quantizer at about the same bits per grid position: VQ, FSQ and residual VQ.

On the same data, grid and encoder/decoder (vqgen's defaults), three VQ-VAEs whose codes carry about
10 bits per position: VQ with K=1024 (the paper's quantizer, EMA codebook as vqgen's default), FSQ
with levels [8, 5, 5, 5] (1,000 codes, no codebook; Mentzer et al. 2023) and residual VQ with d=2
codebooks of K=32 (SoundStream / RQ-VAE). For each: held-out PSNR, the codes used over the held-out
set, training images/s, and the validation bits per position of a PixelCNN prior (vqgen's default
prior, unconditional) trained on the codes (for RVQ on the depth-interleaved `[h, w * d]` grids,
so bits per position = d x bits per code).

    python scripts/compare_quantizers.py                       # digits and photos:32, 350 steps each
    python scripts/compare_quantizers.py --data digits --steps 100 --prior-steps 100   # quicker
    python scripts/compare_quantizers.py --data photos:32 --steps 200 --prior-steps 200 \
        --quantizers "FSQ [8,5,5,5]"                          # one quantizer

Each source trains for about the same number of steps (whole epochs: ceil(steps / batches per epoch)).

Prints one Markdown table (and the load average, since the machine may be shared).
"""

import argparse
import math
import os
import time

import keras
import numpy as np

import prior
from vqgen import VQVAE
from vqgen.data import load_images, split_images, to_dataset
from vqgen.evaluation import codebook_usage, psnr, tuple_usage
from vqgen.settings import DATA_DEFAULTS, PRIOR_TRAINING_DEFAULTS, VQVAE_TRAINING_DEFAULTS

# name -> VQVAE arguments; each about 10 bits per position.
QUANTIZERS = {
    "VQ K=1024": dict(quantizer="vq", num_embeddings=1024),
    "FSQ [8,5,5,5]": dict(quantizer="fsq", levels=[8, 5, 5, 5]),
    "RVQ d=2 K=32": dict(quantizer="rvq", num_quantizers=2, num_embeddings=32),
}


def codes_used(model, codes):
    """Text: distinct codes over `codes` out of K (per level and distinct tuples for RVQ)."""
    k = model.num_embeddings
    if codes.ndim == 3:
        used = codebook_usage(codes, k)["codes_used"]
        return f"{used} / {k} ({100 * used / k:.0f}%)"
    levels = [codebook_usage(codes[..., level], k)["codes_used"] for level in range(codes.shape[-1])]
    tuples = tuple_usage(codes, k)
    per_level = ", ".join(f"{used}/{k}" for used in levels)
    return (
        f"{tuples['tuples_used']} / {tuples['possible_tuples']} tuples ({tuples['fraction_used']:.0%}); "
        f"levels {per_level}"
    )


def train_vqvae(arguments, train, epochs, batch_size):
    """Trains one VQ-VAE; returns (model, training images/s over the timed epochs)."""
    keras.utils.set_random_seed(0)
    model = VQVAE(input_shape=train.image_shape, seed=0, **arguments)
    model.compile(optimizer=keras.optimizers.Adam(VQVAE_TRAINING_DEFAULTS.learning_rate))
    data = to_dataset(train, batch_size, shuffle=True, seed=0)
    model.fit(data.take(1), epochs=1, verbose=0)  # trace the step outside the timing
    start = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0, shuffle=False)
    return model, epochs * len(train) / (time.perf_counter() - start)


def prior_bits_per_position(model, train_codes, validation_codes, epochs, batch_size):
    """Validation bits per grid position of a default unconditional PixelCNN on the codes."""
    keras.utils.set_random_seed(0)
    pixelcnn = prior.PixelCNN(num_embeddings=model.num_embeddings, grid_shape=model.token_grid_shape)
    pixelcnn.compile(optimizer=keras.optimizers.Adam(PRIOR_TRAINING_DEFAULTS.learning_rate))
    pixelcnn.fit(model.to_token_grid(train_codes), epochs=epochs, batch_size=batch_size, verbose=0)
    results = pixelcnn.evaluate(
        model.to_token_grid(validation_codes), batch_size=batch_size, verbose=0, return_dict=True
    )
    return results["bits_per_code"] * model.code_depth


def compare(source, steps, prior_steps, batch_size, names=tuple(QUANTIZERS)):
    """Rows of the table for one data source, for the quantizers `names` (keys of `QUANTIZERS`)."""
    train, validation = split_images(load_images(source), DATA_DEFAULTS.validation_fraction, seed=0)
    epochs = math.ceil(steps / math.ceil(len(train) / batch_size))
    prior_epochs = math.ceil(prior_steps / math.ceil(len(train) / batch_size))
    train_images = to_dataset(train, len(train)).get_single_element().numpy()
    validation_images = to_dataset(validation, len(validation)).get_single_element().numpy()
    rows = []
    for name in names:
        model, speed = train_vqvae(QUANTIZERS[name], train, epochs, batch_size)
        validation_codes = model.encode(validation_images)
        bits = prior_bits_per_position(
            model, model.encode(train_images), validation_codes, prior_epochs, batch_size
        )
        rows.append(
            {
                "data": f"{source} ({len(train)}/{len(validation)}, {train.image_shape[0]}x"
                f"{train.image_shape[1]}x{train.image_shape[2]}; {epochs}/{prior_epochs} epochs)",
                "quantizer": name,
                "bits": model.bits_per_position,
                "grid": "x".join(map(str, model.code_shape)),
                "psnr": float(np.mean(psnr(validation_images, model.reconstruct(validation_images)))),
                "used": codes_used(model, validation_codes),
                "speed": speed,
                "prior": bits,
            }
        )
        print(f"{source} {name}: {rows[-1]}", flush=True)
    return rows


def main():
    """Trains every quantizer on every source and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits", "photos:32"], help="data sources")
    parser.add_argument("--steps", type=int, default=350, help="stage-1 training steps, about")
    parser.add_argument("--prior-steps", type=int, default=350, help="prior training steps, about")
    parser.add_argument("--batch-size", type=int, default=VQVAE_TRAINING_DEFAULTS.batch_size)
    parser.add_argument(
        "--quantizers", nargs="+", default=list(QUANTIZERS), choices=list(QUANTIZERS), help="which to train"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    start = time.perf_counter()
    rows = [
        row
        for source in args.data
        for row in compare(source, args.steps, args.prior_steps, args.batch_size, args.quantizers)
    ]
    minutes = (time.perf_counter() - start) / 60
    load_after = os.getloadavg()

    print(
        f"\nabout {args.steps} stage-1 and {args.prior_steps} prior steps, batch {args.batch_size}; "
        f"{minutes:.1f} min; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        f"(15-min {load_after[2]:.1f}) on {os.cpu_count()} cores\n"
    )
    print(
        "| data (train/held-out, image) | quantizer | bits / position | codes per image | held-out PSNR (dB) "
        "| codes used (held-out) | train images/s | prior bits / position |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['data']} | {row['quantizer']} | {row['bits']:.2f} | {row['grid']} | {row['psnr']:.2f} "
            f"| {row['used']} | {row['speed']:.0f} | {row['prior']:.2f} |"
        )


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_quantizers")
