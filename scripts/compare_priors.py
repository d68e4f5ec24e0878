"""Stage 2: the exact-likelihood priors (PixelCNN, Transformer) with their defaults, on a run's codes.

    vqgen train --run runs/digits                                 # any trained stage-1 run
    python scripts/compare_priors.py --run runs/digits --epochs 6 --json priors.json
    python scripts/compare_priors.py --run runs/digits --epochs 1 --skip-32   # a smoke run

Trains both priors (unconditional, defaults of `prior.PixelCNNSettings` / `prior.TransformerSettings`,
Adam at the `vqgen train-prior` learning rate, same seed and batches) for the same epochs and prints:
held-out bits per code at equal epochs and at equal training wall time (the budget is the faster
prior's total time; each prior is read at its last epoch finished within it), training grids/s
(epochs after the first, which includes tracing), and seconds to sample 16 grids: 7x7 with the
trained models, cached and full loops; 32x32 (same K, untrained models of the default sizes) with
the cached loop, and the Transformer's full loop at 32x32 estimated as 1024 times one timed full
forward pass on 16 grids (running it takes many minutes; `--full-32` runs it). Cached and full
grids are checked equal where both run. The load average is printed: other jobs share the CPU.

MaskGIT is left out: it has no exact likelihood to compare in bits per code (its masked bits measure
something else) and no cached or full raster loop; `benchmark_parallel_decoding.py` times it.
"""

import argparse
import functools
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from prior.registry import PRIORS
from vqgen.data import load_images, split_images, to_dataset
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.settings import PRIOR_TRAINING_DEFAULTS

NUM_GRIDS = 16
# The priors compared: those whose validation bits per code are an exact likelihood.
RASTER_PRIORS = [name for name, kind in PRIORS.items() if kind.exact_likelihood]


class EpochClock(keras.callbacks.Callback):
    """Records the wall time at the end of every epoch."""

    def on_train_begin(self, logs=None):
        self.start, self.ends = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter() - self.start)


def seconds(function, repeats):
    """Best wall time of `repeats` calls, after one warm-up call (tracing, XLA compilation)."""
    function()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def coded_splits(vqvae, data_config):
    """The run's train/validation split (source, fraction and seed of its config), coded."""
    images = load_images(data_config["source"])
    splits = split_images(images, data_config["validation_fraction"], seed=data_config["seed"])
    return {
        f"{name}_codes": np.concatenate([vqvae.encode(batch.numpy()) for batch in to_dataset(split, 256)])
        for name, split in zip(("train", "validation"), splits)
    }


def train(kind, arrays, num_embeddings, grid_shape, epochs, batch_size):
    """Trains one prior with its defaults; returns the model and per-epoch times and bits."""
    keras.utils.set_random_seed(0)
    model = PRIORS[kind].model_class(num_embeddings=num_embeddings, grid_shape=grid_shape)
    model.compile(optimizer=keras.optimizers.Adam(PRIOR_TRAINING_DEFAULTS.learning_rate))
    clock = EpochClock()
    history = model.fit(
        arrays["train_codes"],
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=2,
        callbacks=[clock],
        validation_data=(arrays["validation_codes"],),
    )
    return model, clock.ends, history.history["val_bits_per_code"]


def main():
    """Runs the comparison and prints its table (benchmarks/results/compare_priors.md)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder with a trained VQ-VAE")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=PRIOR_TRAINING_DEFAULTS.batch_size)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-32", action="store_true", help="skip the 32x32 sampling timings")
    parser.add_argument("--full-32", action="store_true", help="run the full loop at 32x32 (slow)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")

    run = RunFolder(args.run)
    config = run.read_config()
    vqvae = load_stage_model(run, "vqvae")
    arrays = coded_splits(vqvae, config["data"])
    num_embeddings, grid_shape = vqvae.num_embeddings, vqvae.grid_shape
    num_train = len(arrays["train_codes"])
    results = {"kinds": {}, "num_embeddings": num_embeddings, "grid_shape": grid_shape}

    # Training: equal epochs
    models = {}
    for kind in RASTER_PRIORS:
        model, ends, bits = train(kind, arrays, num_embeddings, grid_shape, args.epochs, args.batch_size)
        models[kind] = model
        steady = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else ends[0]
        results["kinds"][kind] = {
            "settings": {name: getattr(model, name) for name in vars(PRIORS[kind].settings)},
            "parameters": model.count_params(),
            "epoch_end_seconds": ends,
            "validation_bits_per_code": bits,
            "train_grids_per_second": num_train / steady,
        }
    # Equal wall time: the faster prior's total training time
    budget = min(entry["epoch_end_seconds"][-1] for entry in results["kinds"].values())
    for entry in results["kinds"].values():
        within = [index for index, end in enumerate(entry["epoch_end_seconds"]) if end <= budget + 1e-9]
        entry["equal_time_epochs"] = len(within)
        entry["equal_time_bits"] = entry["validation_bits_per_code"][within[-1]] if within else None
    results["wall_budget_seconds"] = budget

    # Sampling, 7x7 (trained models): cached and full, and the same grids from both
    for kind, model in models.items():
        entry = results["kinds"][kind]
        cached = model.sample(NUM_GRIDS, seed=0, method="cached")
        full = model.sample(NUM_GRIDS, seed=0, method="full")
        entry["cached_equals_full_7x7"] = bool(np.array_equal(cached, full))
        for method in ("cached", "full"):
            entry[f"sample_{method}_7x7_seconds"] = seconds(
                functools.partial(model.sample, NUM_GRIDS, seed=1, method=method), args.repeats
            )

    # Sampling, 32x32 (untrained models of the default sizes, same K)
    if not args.skip_32:
        for kind in RASTER_PRIORS:
            entry = results["kinds"][kind]
            keras.utils.set_random_seed(0)
            big = PRIORS[kind].model_class(num_embeddings=num_embeddings, grid_shape=(32, 32))
            entry["sample_cached_32x32_seconds"] = seconds(
                functools.partial(big.sample, NUM_GRIDS, seed=1, method="cached"), max(1, args.repeats - 1)
            )
            if kind != "transformer":
                continue
            codes = tf.constant(big.sample(NUM_GRIDS, seed=2, method="cached"))
            forward = tf.function(big.__call__)
            pass_seconds = seconds(functools.partial(forward, codes), args.repeats)
            entry["full_pass_32x32_seconds"] = pass_seconds
            entry["sample_full_32x32_seconds_estimate"] = 32 * 32 * pass_seconds
            if args.full_32:
                start = time.perf_counter()
                full = big.sample(NUM_GRIDS, seed=2, method="full")
                entry["sample_full_32x32_seconds"] = time.perf_counter() - start
                entry["cached_equals_full_32x32"] = bool(np.array_equal(full, codes.numpy()))
    results["load_average_at_end"] = os.getloadavg()

    # Report
    rows, cols = grid_shape
    print(f"\n{num_train} training grids {rows}x{cols}, K={num_embeddings}, {args.epochs} epochs each")
    print(f"equal wall time budget: {budget:.0f} s; load average at end: {results['load_average_at_end']}\n")
    print(
        "| prior | parameters | bits/code, equal epochs | bits/code, equal time (epochs) | train grids/s "
        "| sample 16 7x7 cached (full) s | sample 16 32x32 cached s |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, entry in results["kinds"].items():
        big = entry.get("sample_cached_32x32_seconds")
        print(
            f"| {kind} | {entry['parameters']:,} | {entry['validation_bits_per_code'][-1]:.3f} "
            f"| {entry['equal_time_bits']:.3f} ({entry['equal_time_epochs']}) "
            f"| {entry['train_grids_per_second']:,.0f} "
            f"| {entry['sample_cached_7x7_seconds']:.3f} ({entry['sample_full_7x7_seconds']:.3f}) "
            f"| {'-' if big is None else f'{big:.2f}'} |"
        )
    transformer = results["kinds"]["transformer"]
    if "sample_full_32x32_seconds_estimate" in transformer:
        full = transformer.get("sample_full_32x32_seconds", transformer["sample_full_32x32_seconds_estimate"])
        print(
            f"\nTransformer 32x32, 16 grids: cached {transformer['sample_cached_32x32_seconds']:.2f} s, full "
            f"{full:.1f} s ({'measured' if 'sample_full_32x32_seconds' in transformer else 'estimated'}): "
            f"{full / transformer['sample_cached_32x32_seconds']:.0f}x"
        )
    for kind, entry in results["kinds"].items():
        print(f"{kind}: cached == full at 7x7: {entry['cached_equals_full_7x7']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(results, stream, indent=2)


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_priors")
