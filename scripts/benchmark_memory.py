"""Memory and input speed of streamed image folders: peak RSS of `vqgen train` at 5,000 vs 50,000 images.

    python scripts/benchmark_memory.py                        # generate (once) and measure both
    python scripts/benchmark_memory.py --counts 2000 20000    # other folder sizes
    python scripts/benchmark_memory.py --generate-only        # only write the PNG folders

Writes 64x64 RGB PNGs (smooth seeded colour patterns, ten class sub-folders) into
`--root/images_COUNT/` once, then for each folder runs `vqgen train --epochs 1` with tiny model widths
in a fresh process and reads its peak resident memory (`ru_maxrss` of the child). Then, in this
process, times the streaming input pipeline alone (decode, convert, batch; no model) and one epoch of
the model on the same batches read from memory, so the two images/s figures compare the input with
the compute it feeds. Prints a table (benchmarks/results/benchmark_memory.md).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

TINY_MODEL = [
    "--hidden-channels", "16", "--residual-channels", "8", "--num-residual-blocks", "1",
    "--num-embeddings", "64", "--embedding-dim", "8",
]  # fmt: skip
IMAGE_SIZE = 64


def generate_folder(directory, count, seed=0):
    """Writes `count` 64x64 RGB PNGs into ten class sub-folders of `directory` (skipped if complete)."""
    from PIL import Image

    marker = os.path.join(directory, ".complete")
    if os.path.isfile(marker):
        return
    rows, columns = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] / IMAGE_SIZE
    for label in range(10):
        os.makedirs(os.path.join(directory, f"class_{label}"), exist_ok=True)
    start = time.perf_counter()
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        low, high, angle = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * rows + np.sin(angle) * columns
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
        pixels = low + ramp[..., np.newaxis] * (high - low)
        path = os.path.join(directory, f"class_{index % 10}", f"{index:06d}.png")
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        if (index + 1) % 10000 == 0:
            print(f"  {directory}: {index + 1}/{count} ({time.perf_counter() - start:.0f} s)", flush=True)
    open(marker, "w").close()


def peak_rss_of_training(folder, batch_size):
    """Peak RSS (MiB) and seconds of `vqgen train --epochs 1` on `folder`, in a child process."""
    run = tempfile.mkdtemp(prefix="vqgen-memory-run-")
    command = [sys.executable, "-m", "vqgen.cli", "train", "--run", run, "--overwrite", "--quiet",
               "--data", folder, "--epochs", "1", "--batch-size", str(batch_size), *TINY_MODEL]  # fmt: skip
    try:
        return peak_rss(command)
    finally:
        shutil.rmtree(run, ignore_errors=True)


IN_MEMORY_BASELINE = (
    "import sys; from vqgen.data import load_images, split_images, to_dataset; "
    "train, validation = split_images(load_images(sys.argv[1]), 0.1, seed=0); "
    "[None for _ in to_dataset(train, 64)]"  # what `vqgen train` did before streaming
)


def peak_rss(command):
    """Runs `command` in a child process; returns (its own peak RSS in MiB, seconds)."""
    with tempfile.TemporaryFile("w+") as errors:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest so far
        elapsed = time.perf_counter() - start
        errors.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{errors.read()[-3000:]}")
    return usage.ru_maxrss / 1024, elapsed


def images_per_second(dataset, limit_batches):
    """Images/s over up to `limit_batches` batches of `dataset` (after one warm-up batch)."""
    iterator = iter(dataset)
    next(iterator)
    count, start = 0, time.perf_counter()
    for _ in range(limit_batches):
        try:
            batch = next(iterator)
        except StopIteration:
            break
        count += int(batch.shape[0])
    return count / (time.perf_counter() - start)


def input_and_model_speed(folder, batch_size, batches):
    """(streaming pipeline images/s, model training images/s) on `folder`, in this process."""
    import keras
    import tensorflow as tf

    from vqgen import VQVAE
    from vqgen.data import stream_images

    stream = stream_images(folder, verbose=0)
    pipeline, _ = stream.epoch_batches(batch_size, seed=0, first_epoch=0, epochs=1)
    input_speed = images_per_second(pipeline, batches)
    in_memory = np.concatenate([batch.numpy() for batch in pipeline.take(batches)])
    model = VQVAE(input_shape=stream.image_shape, seed=0, **_tiny_model_arguments())
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    data = tf.data.Dataset.from_tensor_slices(in_memory).batch(batch_size)
    model.fit(data.take(2), epochs=1, verbose=0)  # compile the train step
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return input_speed, len(in_memory) / (time.perf_counter() - start)


def _tiny_model_arguments():
    names = TINY_MODEL[0::2]
    return {name[2:].replace("-", "_"): int(value) for name, value in zip(names, TINY_MODEL[1::2])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/tmp/vqgen_memory_benchmark", help="where the PNG folders go")
    parser.add_argument("--counts", type=int, nargs=2, default=[5000, 50000])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--speed-batches", type=int, default=150, help="batches timed for images/s")
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()

    folders = [os.path.join(args.root, f"images_{count}") for count in args.counts]
    for folder, count in zip(folders, args.counts):
        generate_folder(folder, count)
    if args.generate_only:
        return
    print(f"load average before: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    peaks = [peak_rss_of_training(folder, args.batch_size) for folder in folders]
    baselines = [peak_rss([sys.executable, "-c", IN_MEMORY_BASELINE, folder]) for folder in folders]
    input_speed, model_speed = input_and_model_speed(folders[0], args.batch_size, args.speed_batches)
    print(f"load average after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print()
    small, large = args.counts
    print(
        "| PNGs (64x64 RGB) | `vqgen train --epochs 1`, streamed: peak RSS | baseline: in memory: peak RSS |"
    )
    print("|---|---|---|")
    for count, (peak, seconds), (base, base_seconds) in zip(args.counts, peaks, baselines):
        print(f"| {count:,} | {peak:,.0f} MiB ({seconds:.0f} s) | {base:,.0f} MiB ({base_seconds:.0f} s) |")
    ratio, base_ratio = peaks[1][0] / peaks[0][0], baselines[1][0] / baselines[0][0]
    print(f"| ratio {large:,} / {small:,} | {ratio:.2f}x | {base_ratio:.2f}x |")
    print()
    print(f"| batch {args.batch_size}, {small:,}-image folder | images/s (wall) |")
    print("|---|---|")
    print(f"| streaming pipeline alone (list, read, decode, convert, batch) | {input_speed:,.0f} |")
    print(f"| tiny model's training steps on the same batches, from memory | {model_speed:,.0f} |")


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark_memory")
