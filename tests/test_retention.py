"""Checkpoint retention: each stage keeps the newest `keep_checkpoints` epochs' checkpoints (every file
of an epoch), removes older ones only after the new one is written, and a kill in between resumes."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen.data import epoch_batches
from vqgen.runs.callbacks import remove_old_checkpoints
from vqgen.runs.model_files import weights_file_bytes
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.stage_trainer import train_stage
from vqgen.settings import PRIOR_TRAINING_DEFAULTS, VQVAE_TRAINING_DEFAULTS

EPOCHS = 5


def small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def batches(first_epoch):
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    return epoch_batches((x, x[:, :1]), 8, 0, first_epoch, EPOCHS)


def validation():
    x = np.random.default_rng(1).normal(size=(8, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8)


def test_the_default_is_two_for_both_stages():
    assert VQVAE_TRAINING_DEFAULTS.keep_checkpoints == PRIOR_TRAINING_DEFAULTS.keep_checkpoints == 2


@pytest.mark.parametrize("keep", [1, 2, 3])
@pytest.mark.parametrize("stage", ["vqvae", "prior"])
def test_training_keeps_exactly_the_newest_n_checkpoints_of_full_size(tmp_path, stage, keep):
    run = RunFolder(tmp_path)
    model = small_model()
    train_stage(run, stage, model, batches, validation(), EPOCHS, verbose=0, keep_checkpoints=keep)
    folder = run.checkpoints_path(stage)
    expected = [f"epoch_{epoch:03d}.weights.h5" for epoch in range(EPOCHS - keep + 1, EPOCHS + 1)]
    assert sorted(os.listdir(folder)) == expected
    full_size = len(weights_file_bytes(model))  # a complete weights file of this model, with its optimizer
    assert [os.path.getsize(os.path.join(folder, name)) for name in expected] == [full_size] * keep
    newest = small_model()
    newest.optimizer.build(newest.trainable_variables)  # the checkpoint holds the optimizer state too
    newest.load_weights(os.path.join(folder, expected[-1]))
    for trained, loaded in zip(model.get_weights(), newest.get_weights()):
        np.testing.assert_array_equal(trained, loaded)


def adversarial_vqvae():
    from vqgen.models.adversarial_loss import AdversarialLoss
    from vqgen.models.discriminator import PatchDiscriminator
    from vqgen.models.vqvae import VQVAE

    keras.utils.set_random_seed(0)
    term = AdversarialLoss(weight=0.5, discriminator=PatchDiscriminator(filters=4, name="discriminator"))
    tiny = dict(num_embeddings=8, embedding_dim=4, downsample=2, hidden_channels=8, residual_channels=4)
    model = VQVAE(input_shape=(8, 8, 1), num_residual_blocks=1, loss_terms=[term], **tiny)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    return model


def test_an_adversarial_stage_keeps_its_discriminator_in_the_checkpoints_it_counts(tmp_path):
    run = RunFolder(tmp_path)
    images = np.random.default_rng(2).random((32, 8, 8, 1)).astype("float32")
    model = adversarial_vqvae()
    validation = tf.data.Dataset.from_tensor_slices(images[:8]).batch(8)
    train_stage(
        run, "vqvae", model, lambda first: epoch_batches(images, 8, 0, first, 3), validation, 3, verbose=0
    )
    folder = run.checkpoints_path("vqvae")
    # The discriminator and its optimizer are in each epoch's one file, so retention counts and
    # removes them with it: the newest two epochs, each as large as the whole model's weights.
    expected = ["epoch_002.weights.h5", "epoch_003.weights.h5"]
    assert sorted(os.listdir(folder)) == expected
    sizes = [os.path.getsize(os.path.join(folder, name)) for name in expected]
    assert sizes == [len(weights_file_bytes(model))] * 2
    newest = adversarial_vqvae()
    newest.optimizer.build(newest.trainable_variables)
    newest.load_weights(os.path.join(folder, expected[-1]))
    term, loaded = model.loss_terms[0], newest.loss_terms[0]
    assert int(loaded.optimizer.iterations.numpy()) == 12  # 3 epochs of 4 steps
    for trained, restored in zip(
        term.variables + term.optimizer.variables, loaded.variables + loaded.optimizer.variables
    ):
        np.testing.assert_array_equal(trained.numpy(), restored.numpy())


def test_every_file_of_an_old_epoch_goes_and_nothing_else(tmp_path):
    names = [
        "epoch_001.weights.h5",
        "epoch_001.discriminator.weights.h5",  # a second file of the same checkpoint
        "epoch_002.weights.h5",
        "epoch_002.discriminator.weights.h5",
        "epoch_010.weights.h5",  # numeric, not alphabetical, order: 10 is the newest
        ".epoch_001.weights.h5.123-abcd.tmp.weights.h5",  # a temporary file of a write in progress
        "notes.txt",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    remove_old_checkpoints(str(tmp_path), keep=2)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [
            "epoch_002.weights.h5",
            "epoch_002.discriminator.weights.h5",
            "epoch_010.weights.h5",
            ".epoch_001.weights.h5.123-abcd.tmp.weights.h5",
            "notes.txt",
        ]
    )


# Trains a tiny stage 1 through `vqgen train`; with KILL_AT_EPOCH set, the process SIGKILLs itself when
# that epoch's checkpoint is written and the older ones are about to be removed.
TRAIN_SCRIPT = """
import os, signal, sys
import vqgen.runs.callbacks as callbacks
from vqgen.cli import main

kill_at = int(os.environ.get("KILL_AT_EPOCH", "0"))
remove = callbacks.remove_old_checkpoints

def remove_or_die(folder, keep):
    if max(callbacks.checkpoint_files(folder)) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    remove(folder, keep)

callbacks.remove_old_checkpoints = remove_or_die
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_kill_between_writing_a_checkpoint_and_removing_the_old_ones_resumes_exactly(
    tmp_path, tiny_digits, tiny_train_args
):
    def train(run, kill_at=0, options=()):
        argv = [
            "train",
            "--run",
            str(run),
            "--data",
            tiny_digits,
            *tiny_train_args,
            "--epochs",
            "4",
            *options,
        ]
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KILL_AT_EPOCH": str(kill_at)}
        command = [sys.executable, "-c", TRAIN_SCRIPT, *argv, "--deterministic"]
        return subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def finish(process):
        out, err = process.communicate(timeout=300)
        return process.returncode, out, err

    reference = train(tmp_path / "reference")  # the same training, never killed, runs beside the other
    code, _, err = finish(train(tmp_path / "killed", kill_at=3))
    assert code == -9, err
    checkpoints = tmp_path / "killed" / "checkpoints" / "vqvae"
    assert sorted(os.listdir(checkpoints)) == [f"epoch_00{epoch}.weights.h5" for epoch in (1, 2, 3)]
    code, out, err = finish(train(tmp_path / "killed", options=("--keep-checkpoints", "1")))
    assert code == 0, err  # --keep-checkpoints may change on resuming: it changes no number
    assert "Resuming" in out
    assert sorted(os.listdir(checkpoints)) == ["epoch_004.weights.h5"]
    code, _, err = finish(reference)
    assert code == 0, err
    models = [keras.saving.load_model(tmp_path / run / "vqvae.keras") for run in ("killed", "reference")]
    for expected, actual in zip(models[1].get_weights(), models[0].get_weights()):
        np.testing.assert_array_equal(expected, actual)


def folder_size(folder):
    return sum(
        os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names
    )


@pytest.mark.slow
def test_a_run_with_default_retention_keeps_at_most_three_times_the_models_in_checkpoints(
    tmp_path, tiny_digits, tiny_vqvae_settings
):
    from vqgen.runs.train_prior import train_prior
    from vqgen.runs.train_vqvae import train_vqvae

    run = RunFolder(tmp_path / "run")
    train_vqvae(run.path, source=tiny_digits, verbose=0, **{**tiny_vqvae_settings, "epochs": 4})
    train_prior(run.path, conditional=True, epochs=4, num_layers=2, filters=8, verbose=0)
    for stage in ("vqvae", "prior"):
        assert sorted(os.listdir(run.checkpoints_path(stage))) == [
            "epoch_003.weights.h5",
            "epoch_004.weights.h5",
        ]
    models = os.path.getsize(run.model_path("vqvae")) + os.path.getsize(run.model_path("prior"))
    assert folder_size(os.path.join(run.path, "checkpoints")) <= 3 * models
