"""Run `vqgen` commands in child processes for the comparison scripts: train an arm, evaluate a run.

The comparison scripts (`compare_fidelity.py`, `compare_codebook_usage.py`) drive the command line as a
user would, one child process per command, so every arm starts from the same state and pays its own
start-up.

    from vqgen_commands import evaluate, train_arm

    speed = train_arm("/tmp/arm0", "digits", 1, ["--num-embeddings", "64"])
    print(evaluate("/tmp/arm0", None, samples=0)["reconstruction"]["psnr_db"])
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

from vqgen.data import load_images

# What the comparison scripts share: their default data, the factorized codes they measure and the tiny
# model of their smoke runs.
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FACTORIZED = ["--codebook-dim", "8", "--l2-normalize"]
TINY_MODEL = ["--hidden-channels", "16", "--residual-channels", "8", "--num-residual-blocks", "1"]


def vqgen(*arguments):
    """Runs one `vqgen` command in a child process.

    Args:
        *arguments: str. The command and its options, e.g. `"train", "--run", path`.

    Returns:
        float, the command's wall seconds (Python and TensorFlow start-up included).

    Raises:
        subprocess.CalledProcessError: the command exited non-zero.

    Example:
    >>> vqgen("evaluate", "--run", "/tmp/arm0", "--samples", "0")  # doctest: +SKIP
    21.3
    """
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vqgen.cli", *arguments], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def train_arm(run, data, epochs, options, model_options=()):
    """Trains one arm's stage 1 with `vqgen train --overwrite` into `run`.

    Args:
        run: str. The run folder.
        data: str. The `--data` source.
        epochs: int. Stage-1 epochs.
        options: list of str. The arm's own options.
        model_options: sequence of str. Options every arm shares (e.g. a tiny model for a smoke run).

    Returns:
        float, training images/s (epochs x training images / wall seconds, start-up and validation
        included), or None where the source does not know its size (a stream).

    Raises:
        subprocess.CalledProcessError: `vqgen train` failed.

    Example:
    >>> train_arm("/tmp/arm0", "digits", 1, ["--num-embeddings", "64"])  # doctest: +SKIP
    812.4
    """
    seconds = vqgen("train", "--run", run, "--overwrite", "--quiet", "--data", data, "--epochs", str(epochs),
                    *model_options, *options)  # fmt: skip
    with open(os.path.join(run, "config.json")) as file:
        num_train = json.load(file)["data"].get("num_train")
    return None if num_train is None else epochs * num_train / seconds


def evaluate(run, data, samples):
    """`vqgen evaluate` of one run.

    Args:
        run: str. A run folder with a trained stage 1.
        data: str or None. The images to evaluate on (`--data`); None: the run's validation split.
        samples: int. Samples drawn from the prior for the sample metrics (0: none).

    Returns:
        dict, the run's evaluation.json.

    Raises:
        subprocess.CalledProcessError: `vqgen evaluate` failed.

    Example:
    >>> evaluate("/tmp/arm0", None, samples=0)["codebook"][0]["codes_used"]  # doctest: +SKIP
    61
    """
    vqgen("evaluate", "--run", run, "--samples", str(samples), *(["--data", data] if data else []))
    with open(os.path.join(run, "evaluation.json")) as file:
        return json.load(file)


def is_idx_folder(data):
    """Whether `data` is a folder of idx files, as Debian's `dataset-fashion-mnist` ships Fashion-MNIST."""
    return os.path.isdir(data) and any("-idx3-ubyte" in name for name in os.listdir(data))


def split_file(data, split, path, labels=True):
    """Writes one split of an idx folder as an `.npz` that `vqgen evaluate --data` reads, once.

    Args:
        data: str. A folder of idx files.
        split: str. `"train"` or `"test"`.
        path: str. The `.npz` to write; an existing file is kept.
        labels: bool. Whether to store the labels (they make `vqgen evaluate` train its classifier).

    Returns:
        str, `path`.

    Example:
    >>> split_file("/usr/share/datasets/fashion-mnist", "test", "/tmp/t10k.npz")  # doctest: +SKIP
    '/tmp/t10k.npz'
    """
    if not os.path.isfile(path):
        images = load_images(data, split=split)
        arrays = {"images": images.images, **({"labels": images.labels} if labels else {})}
        np.savez(path, **arrays)
    return path


def held_out_source(data, root, labels=True):
    """The held-out images for `vqgen evaluate --data`: an idx folder's t10k split, written once as `.npz`.

    Args:
        data: str. The training source.
        root: str. The folder the `.npz` goes to (`held_out.npz`).
        labels: bool. Whether to keep the labels (`split_file`).

    Returns:
        str, the `.npz` path, or None where `data` is not an idx folder (evaluate on the run's
        validation split).

    Example:
    >>> held_out_source("digits", "/tmp/runs") is None
    True
    """
    return (
        split_file(data, "test", os.path.join(root, "held_out.npz"), labels) if is_idx_folder(data) else None
    )
