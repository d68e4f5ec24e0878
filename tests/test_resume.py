"""`vqgen train` survives SIGKILL: run again, it resumes from the last completed epoch and ends
with exactly the model an uninterrupted run makes."""

import csv
import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import vqgen
from vqgen.data import load_images
from vqgen.settings import VQVAE_TRAINING_DEFAULTS

EPOCHS = 4


def completed_epochs(run):
    path = os.path.join(run, "metrics.csv")
    if not os.path.exists(path):
        return 0
    with open(path, newline="") as stream:
        return len(list(csv.DictReader(stream)))


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path, tiny_train_args):
    digits = load_images("digits")
    data = tmp_path / "digits.npz"
    np.savez(data, images=digits.images[:400], labels=digits.labels[:400])  # 360 to train on
    run = str(tmp_path / "run")

    def command(folder):
        return [
            sys.executable,
            "-m",
            "vqgen.cli",
            "train",
            "--run",
            folder,
            "--data",
            str(data),
            *tiny_train_args,
            "--epochs",
            str(EPOCHS),
            "--batch-size",
            "16",
            "--deterministic",
        ]

    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    uninterrupted = str(tmp_path / "uninterrupted")
    reference = subprocess.Popen(  # the same training, never killed, runs beside the killed ones
        command(uninterrupted), env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        rng = random.Random(0)
        for _ in range(2):
            process = subprocess.Popen(
                command(run), env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            done_before = completed_epochs(run)
            deadline = time.time() + 300
            while completed_epochs(run) == done_before and process.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.3))  # somewhere inside the next epoch or its saving
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert completed_epochs(run) < EPOCHS, "the kills came too late to test resuming"
        assert os.path.isfile(os.path.join(run, "backup", "vqvae", "epoch.json")), (
            "no epoch completed before the kills"
        )
        finished = subprocess.run(command(run), env=environment, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr
        _, stderr = reference.communicate(timeout=300)
        assert reference.returncode == 0, stderr
    finally:
        if reference.poll() is None:  # a failure above: the reference is not left running
            reference.kill()
            reference.wait()
    with open(os.path.join(run, "metrics.csv"), newline="") as stream:
        epochs = [int(row["epoch"]) for row in csv.DictReader(stream)]
    assert epochs == list(range(1, EPOCHS + 1))
    model = keras.models.load_model(os.path.join(run, "vqvae.keras"))
    assert isinstance(model, vqgen.VQVAE)
    # Optimizer state, codebook, EMA statistics, epoch counter and data order were all restored:
    # the resumed model is the uninterrupted one, bit for bit.
    expected = keras.models.load_model(os.path.join(uninterrupted, "vqvae.keras"))
    assert len(model.weights) == len(expected.weights)
    for resumed_weight, expected_weight in zip(model.weights, expected.weights):
        np.testing.assert_array_equal(
            resumed_weight.numpy(), expected_weight.numpy(), err_msg=resumed_weight.path
        )
    # The newest `keep_checkpoints` epochs are kept, however the kills fell.
    checkpoints = os.path.join(run, "checkpoints", "vqvae")
    kept = range(EPOCHS - VQVAE_TRAINING_DEFAULTS.keep_checkpoints + 1, EPOCHS + 1)
    assert sorted(os.listdir(checkpoints)) == [f"epoch_{e:03d}.weights.h5" for e in kept]
    for _, _, files in os.walk(run):
        for name in files:
            assert not name.startswith("."), f"temporary file left: {name}"
    for name in os.listdir(checkpoints):
        model.load_weights(os.path.join(checkpoints, name))  # none is truncated
