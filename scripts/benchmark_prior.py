"""Stage 2: train a PixelCNN prior on a run's code grids and time sampling against a naive loop.

    vqgen train --run runs/digits                       # any trained stage-1 run
    python scripts/benchmark_prior.py --run runs/digits --epochs 10

Prints the validation bits per code of the prior, then seconds to sample 10 and 64 grids with
(a) `PixelCNN.sample` (one compiled tf.while_loop) and (b) the public Keras example's approach,
a Python loop calling `model.predict` once per position, on the same model.
"""

import argparse
import math
import time

import keras
import numpy as np
import tensorflow as tf

import prior
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.train_prior import coded_dataset


def naive_sample(model, num, seed):
    """The Keras example's sampler: one `predict` over the whole grid per position."""
    rng = np.random.default_rng(seed)
    rows, columns = model.grid_shape
    codes = np.zeros((num, rows, columns), "int32")
    for row in range(rows):
        for column in range(columns):
            logits = model.predict(codes, verbose=0)[:, row, column]  # (num, K)
            probabilities = tf.nn.softmax(logits).numpy().astype("float64")
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            codes[:, row, column] = [rng.choice(len(p), p=p) for p in probabilities]
    return codes


def seconds(function, repeats):
    """Best wall time of `repeats` calls (after one warm-up call)."""
    function()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    """Trains the prior on the run's codes and prints bits per code and the sampling table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder with a trained VQ-VAE")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    run = RunFolder(args.run)
    config = run.read_config()
    vqvae = load_stage_model(run, "vqvae")
    shards = coded_dataset(run, vqvae, config["data"])
    train_codes, validation_codes = (shards.arrays(part)[0] for part in ("train", "validation"))
    keras.utils.set_random_seed(0)
    model = prior.PixelCNN(num_embeddings=vqvae.num_embeddings, grid_shape=vqvae.grid_shape)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(
        train_codes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=2,
        validation_data=(validation_codes,),
    )
    bits = model.evaluate(validation_codes, batch_size=256, verbose=0, return_dict=True)["bits_per_code"]

    rows, columns = vqvae.grid_shape
    print(
        f"\nprior: {prior.PixelCNNSettings()}, K={vqvae.num_embeddings}, grid {rows}x{columns}, "
        f"{args.epochs} epochs; validation bits per code: {bits:.3f}\n"
    )
    print("| grids | `sample` (s) | naive predict loop (s) | speed-up |")
    print("|---|---|---|---|")
    for num in (10, 64):
        compiled = seconds(lambda num=num: model.sample(num, seed=0), args.repeats)
        naive = seconds(lambda num=num: naive_sample(model, num, seed=0), 1)
        print(f"| {num} | {compiled:.3f} | {naive:.2f} | {naive / compiled:.0f}x |")


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark_prior")
