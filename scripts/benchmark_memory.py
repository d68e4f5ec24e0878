"""Stage 1 on streamed data: peak memory and images/s on 10k and 100k images, folders and TFRecords.

    python scripts/benchmark_memory.py                        # generate (once) and measure
    python scripts/benchmark_memory.py --counts 2000 20000    # other sizes
    python scripts/benchmark_memory.py --generate-only        # only write the PNG folders and shards

Writes 64x64 RGB PNGs (smooth seeded colour patterns, ten class sub-folders) into
`--root/images_COUNT/` once, and the same PNG bytes with their labels as `--shards` TFRecord files
of `tf.train.Example` (TFDS's feature names) into `--root/tfrecords_COUNT/`. Then, for each size and
each of the two sources, runs `vqgen train --epochs 1` with tiny model widths in a fresh process and
reads its peak resident memory (`ru_maxrss` of the child) and wall time; every image is read once in
the epoch (training or validation), so images/s is the count over the wall time, start-up included.
The baseline beside it loads the folder into memory, as `vqgen train` did before streaming.
Two workers against one: the smaller folder trained by two `--strategy multiworker` processes on
127.0.0.1 (`TF_CONFIG`, the same global batch) against the single process above, on this machine's
cores, where two processes share the same CPUs and so cannot be expected to be faster. Last, in this
process, one epoch of the input pipeline of each source alone (list, read, shuffle, decode, convert,
batch; no model; timed from the first batch's request, so a TFRecord source's filling of its shuffle
buffer counts) and one epoch of the model on the same batches from memory, so the input's images/s
compare with the compute they feed. Prints tables (benchmarks/results/benchmark_memory.md).
"""

import argparse
import json
import os
import shutil
import socket
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


def write_tfrecords(folder, directory, shards):
    """Writes the PNGs of `folder` (their bytes, labelled by class sub-folder) as `shards` TFRecord files.

    Returns:
        str, the glob of the shards (`directory/train-*.tfrecord`), for `--data`.
    """
    import tensorflow as tf

    pattern = os.path.join(directory, "train-*.tfrecord")
    marker = os.path.join(directory, ".complete")
    if os.path.isfile(marker):
        return pattern
    os.makedirs(directory, exist_ok=True)
    files = sorted(
        (os.path.join(label_folder, name), int(label_folder.rsplit("_", 1)[1]))
        for label_folder in (os.path.join(folder, f"class_{label}") for label in range(10))
        for name in os.listdir(label_folder)
    )
    for shard in range(shards):
        path = os.path.join(directory, f"train-{shard:05d}-of-{shards:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for file, label in files[shard::shards]:
                with open(file, "rb") as stream:
                    feature = {
                        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[stream.read()])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                    }
                writer.write(
                    tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
                )
    open(marker, "w").close()
    return pattern


def training_command(source, run, batch_size, strategy="default"):
    """`vqgen train --epochs 1` with the tiny model on `source`, as an argument list."""
    return [sys.executable, "-m", "vqgen.cli", "train", "--run", run, "--overwrite", "--quiet",
            "--data", source, "--epochs", "1", "--batch-size", str(batch_size), "--seed", "0",
            "--strategy", strategy, *TINY_MODEL]  # fmt: skip


def peak_rss_of_training(source, batch_size):
    """(peak RSS in MiB, seconds) of `vqgen train --epochs 1` on `source`, in a child process."""
    run = tempfile.mkdtemp(prefix="vqgen-memory-run-")
    try:
        return peak_rss(training_command(source, run, batch_size))
    finally:
        shutil.rmtree(run, ignore_errors=True)


def two_worker_training(source, batch_size):
    """`vqgen train --epochs 1 --strategy multiworker` on `source` by two worker processes on 127.0.0.1.

    Returns:
        (list of each worker's peak RSS in MiB, seconds until both have finished).
    """
    sockets = [socket.socket() for _ in range(2)]
    for free in sockets:
        free.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{free.getsockname()[1]}" for free in sockets]}
    for free in sockets:
        free.close()
    runs = [tempfile.mkdtemp(prefix=f"vqgen-memory-worker{index}-") for index in range(2)]
    errors = [tempfile.TemporaryFile("w+") for _ in range(2)]
    start = time.perf_counter()
    children = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        children.append(
            subprocess.Popen(
                training_command(source, runs[index], batch_size, strategy="multiworker"),
                env={**os.environ, "TF_CONFIG": config},
                stdout=subprocess.DEVNULL,
                stderr=errors[index],
                text=True,
            )
        )
    try:
        peaks = []
        for child, error in zip(children, errors):
            _, status, usage = os.wait4(child.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                error.seek(0)
                raise SystemExit(f"a multiworker worker failed:\n{error.read()[-3000:]}")
            peaks.append(usage.ru_maxrss / 1024)
        return peaks, time.perf_counter() - start
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        for run in runs:
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


def images_per_second(dataset):
    """Images/s of one whole pass over `dataset`, timed from making its iterator.

    The first batch is timed too: a sequence source (TFRecords) fills its shuffle buffer before
    it yields, and leaving that out would time reading from memory.
    """
    count, start = 0, time.perf_counter()
    for batch in dataset:
        count += int(batch.shape[0])
    return count / (time.perf_counter() - start)


def input_speed(source, batch_size, batches):
    """(input pipeline images/s over one epoch of `source`, its first `batches` batches), in this process."""
    from vqgen.data import stream_images

    stream = stream_images(source, verbose=0)
    pipeline, _ = stream.epoch_batches(batch_size, seed=0, first_epoch=0, epochs=1)
    speed = images_per_second(pipeline)
    return speed, np.concatenate([batch.numpy() for batch in pipeline.take(batches)])


def model_speed(images, batch_size):
    """Images/s of the tiny model's training steps on `images` (in memory), in this process."""
    import keras
    import tensorflow as tf

    from vqgen import VQVAE

    model = VQVAE(input_shape=images.shape[1:], seed=0, **_tiny_model_arguments())
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    data = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    model.fit(data.take(2), epochs=1, verbose=0)  # compile the train step
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return len(images) / (time.perf_counter() - start)


def _tiny_model_arguments():
    names = TINY_MODEL[0::2]
    return {name[2:].replace("-", "_"): int(value) for name, value in zip(names, TINY_MODEL[1::2])}


def _load():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/tmp/vqgen_memory_benchmark", help="where the data goes")
    parser.add_argument("--counts", type=int, nargs=2, default=[10000, 100000])
    parser.add_argument("--shards", type=int, default=16, help="TFRecord files per dataset")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model-batches", type=int, default=150, help="batches the model speed is timed on")
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()

    folders = [os.path.join(args.root, f"images_{count}") for count in args.counts]
    shards = []
    for folder, count in zip(folders, args.counts):
        generate_folder(folder, count)
        shards.append(write_tfrecords(folder, os.path.join(args.root, f"tfrecords_{count}"), args.shards))
    if args.generate_only:
        return
    print(f"load average before: {_load()}")
    sources = {"folder": folders, "TFRecords": shards}
    peaks = {name: [peak_rss_of_training(source, args.batch_size) for source in paths]
             for name, paths in sources.items()}  # fmt: skip
    baselines = [peak_rss([sys.executable, "-c", IN_MEMORY_BASELINE, folder]) for folder in folders]
    worker_peaks, worker_seconds = two_worker_training(folders[0], args.batch_size)
    speeds = {name: input_speed(paths[0], args.batch_size, args.model_batches)
              for name, paths in sources.items()}  # fmt: skip
    compute = model_speed(speeds["folder"][1], args.batch_size)
    print(f"load average after: {_load()}")
    small, large = args.counts
    print(
        f"\n`vqgen train --epochs 1`, batch {args.batch_size}, tiny model, 64x64 RGB PNGs; images/s = "
        "images / wall time (every image is read once per epoch; interpreter start-up included)\n"
    )
    rows = []
    for index, count in enumerate(args.counts):
        for name in sources:
            peak, seconds = peaks[name][index]
            base = f"{baselines[index][0]:,.0f} MiB ({baselines[index][1]:.0f} s)" if name == "folder" else ""
            rows.append(
                [f"{count:,}", name, f"{peak:,.0f} MiB", f"{seconds:.0f} s", f"{count / seconds:,.0f}", base]
            )
    for name in sources:
        rows.append(
            [f"ratio {large:,} / {small:,}", name, f"{peaks[name][1][0] / peaks[name][0][0]:.2f}x"] + [""] * 3
        )
    rows.append([f"ratio {large:,} / {small:,}", "folder in memory", "", "", "",
                 f"{baselines[1][0] / baselines[0][0]:.2f}x"])  # fmt: skip
    print_table(
        [
            "images",
            "source",
            "streamed: peak RSS",
            "wall time",
            "images/s",
            "baseline, folder in memory: peak RSS",
        ],
        rows,
    )

    single_peak, single_seconds = peaks["folder"][0]
    cores = len(os.sched_getaffinity(0))
    print(f"\nTwo workers against one: the {small:,}-image folder, one global batch, {cores} cores shared\n")
    workers = ", ".join(f"{peak:,.0f}" for peak in worker_peaks)
    print_table(
        ["processes", "wall time", "images/s", "peak RSS per process"],
        [
            [
                "1 (`--strategy default`)",
                f"{single_seconds:.0f} s",
                f"{small / single_seconds:,.0f}",
                f"{single_peak:,.0f} MiB",
            ],
            [
                "2 (`--strategy multiworker`, 127.0.0.1)",
                f"{worker_seconds:.0f} s",
                f"{small / worker_seconds:,.0f}",
                f"{workers} MiB",
            ],
            ["speed-up, two workers / one", f"{single_seconds / worker_seconds:.2f}x", "", ""],
        ],
    )
    print()
    rows = [
        [
            f"input pipeline alone, {name}: one epoch (read, shuffle, decode, convert, batch)",
            f"{speeds[name][0]:,.0f}",
        ]
        for name in sources
    ]
    rows.append(["tiny model's training steps on the same batches, from memory", f"{compute:,.0f}"])
    print_table([f"batch {args.batch_size}, {small:,} images, in this process", "images/s (wall)"], rows)


def print_table(header, rows):
    """Prints a Markdown table."""
    for cells in [header, ["---"] * len(header), *rows]:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark_memory")
