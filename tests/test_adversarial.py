"""Adversarial training of stage 1 (Esser et al. 2021): PatchGAN discriminator, hinge and
non-saturating losses, the adaptive weight, the start step, saving, and `vqgen run` end to end."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen.cli import main
from vqgen.models.adversarial_loss import AdversarialLoss, discriminator_loss, generator_loss
from vqgen.models.discriminator import PatchDiscriminator, default_num_layers
from vqgen.models.vqvae import VQVAE

TINY = dict(
    num_embeddings=8,
    embedding_dim=4,
    downsample=2,
    hidden_channels=8,
    residual_channels=4,
    num_residual_blocks=1,
)


def _tiny_model(**term):
    keras.utils.set_random_seed(3)
    discriminator = PatchDiscriminator(filters=4, name="discriminator")
    model = VQVAE(
        input_shape=(8, 8, 1), loss_terms=[AdversarialLoss(discriminator=discriminator, **term)], **TINY
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _images(count=8):
    return np.random.default_rng(0).random((count, 8, 8, 1)).astype("float32")


def _softplus(x):
    return np.log1p(np.exp(x))


def test_hinge_and_non_saturating_losses_match_numpy():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(4, 3, 3, 1)) * 2, rng.normal(size=(4, 3, 3, 1)) * 2
    hinge = np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean()
    saturating = _softplus(-real).mean() + _softplus(fake).mean()
    np.testing.assert_allclose(discriminator_loss(real, fake, "hinge"), hinge, rtol=1e-6)
    np.testing.assert_allclose(discriminator_loss(real, fake, "non-saturating"), saturating, rtol=1e-6)
    np.testing.assert_allclose(generator_loss(fake, "hinge"), -fake.mean(), rtol=1e-6)
    np.testing.assert_allclose(generator_loss(fake, "non-saturating"), _softplus(-fake).mean(), rtol=1e-6)


@pytest.mark.parametrize("side, layers, grid", [(28, 2, 7), (128, 3, 16), (8, 1, 4)])
def test_the_discriminator_gives_patch_logits_sized_by_the_image(side, layers, grid):
    assert default_num_layers(side) == layers
    logits = PatchDiscriminator(filters=4)(tf.zeros((2, side, side, 3)))
    assert logits.shape == (2, grid, grid, 1) and logits.dtype == tf.float32


@pytest.mark.parametrize("loss", ["hinge", "non-saturating"])
def test_the_adaptive_weight_is_the_ratio_of_gradient_norms_at_the_last_decoder_kernel(loss):
    model = _tiny_model(weight=0.7, loss=loss)
    images = tf.constant(_images())
    with tf.GradientTape(persistent=True) as tape:
        _, logs = model.compute_losses(images, tape=tape)
    # By hand: both losses on a separate tape, their gradients at the decoder's last transposed
    # convolution, the norms in NumPy.
    kernel = model.decoder.strided_transposed_convs[-1].kernel
    with tf.GradientTape(persistent=True) as hand:
        reconstructions = model.decoder(model.quantizer(model.encoder(images)))
        reconstruction = tf.reduce_mean(tf.square(reconstructions - images))
        logits = model.loss_terms[0].discriminator(reconstructions).numpy()
        adversarial = generator_loss(model.loss_terms[0].discriminator(reconstructions), loss)
    norms = [
        np.sqrt(np.sum(hand.gradient(value, kernel).numpy() ** 2)) for value in (reconstruction, adversarial)
    ]
    expected = 0.7 * np.clip(norms[0] / (norms[1] + 1e-4), 0, 1e4)
    np.testing.assert_allclose(logs["adversarial_weight"], expected, rtol=1e-4)
    generator = -logits.mean() if loss == "hinge" else _softplus(-logits).mean()
    np.testing.assert_allclose(logs["adversarial_loss"], expected * generator, rtol=1e-4)
    np.testing.assert_allclose(
        logs["loss"], logs["reconstruction_loss"] + logs["vq_loss"] + expected * generator, rtol=1e-5
    )


def test_nothing_adversarial_happens_before_the_start_step():
    model = _tiny_model(weight=1.0, start=2)
    discriminator = model.loss_terms[0].discriminator
    before = [weight.numpy() for weight in discriminator.weights]
    history = model.fit(_images(), epochs=2, batch_size=8, verbose=0).history  # steps 0 and 1
    assert history["adversarial_weight"] == [0.0, 0.0] and history["adversarial_loss"] == [0.0, 0.0]
    for old, weight in zip(before, discriminator.weights):
        np.testing.assert_array_equal(old, weight.numpy())
    history = model.fit(_images(), epochs=1, batch_size=8, verbose=0).history  # step 2: on
    assert history["adversarial_weight"][0] > 0
    assert any(not np.array_equal(old, weight.numpy()) for old, weight in zip(before, discriminator.weights))


def test_one_fit_trains_both_networks_and_logs_the_adversarial_names():
    model = _tiny_model(weight=0.5)
    decoder_before = [weight.numpy() for weight in model.decoder.weights]
    discriminator = model.loss_terms[0].discriminator
    discriminator_before = [weight.numpy() for weight in discriminator.weights]
    history = model.fit(_images(16), epochs=1, batch_size=8, verbose=0).history
    for name in (
        "discriminator_loss",
        "logits_real",
        "logits_fake",
        "adversarial_weight",
        "adversarial_loss",
    ):
        assert np.isfinite(history[name][0]), name
    assert all(not np.array_equal(old, w.numpy()) for old, w in zip(decoder_before, model.decoder.weights))
    assert all(
        not np.array_equal(old, w.numpy()) for old, w in zip(discriminator_before, discriminator.weights)
    )
    # The model's optimizer leaves the discriminator alone; the term's optimizer took two steps.
    assert not {id(v) for v in discriminator.weights} & {id(v) for v in model.trainable_weights}
    assert int(model.loss_terms[0].optimizer.iterations.numpy()) == 2


def test_save_and_load_keep_the_discriminator_its_optimizer_and_settings(tmp_path):
    model = _tiny_model(weight=0.5, start=1, loss="non-saturating")
    model.fit(_images(16), epochs=2, batch_size=8, verbose=0)
    path = str(tmp_path / "adversarial.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    term, loaded_term = model.loss_terms[0], loaded.loss_terms[0]
    assert (loaded_term.weight, loaded_term.start, loaded_term.loss) == (0.5, 1, "non-saturating")
    assert int(loaded_term.steps.numpy()) == 4
    for saved, restored in zip(
        term.variables + term.optimizer.variables, loaded_term.variables + loaded_term.optimizer.variables
    ):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    images = tf.constant(_images())
    with tf.GradientTape(persistent=True) as tape, tf.GradientTape(persistent=True) as loaded_tape:
        logs = model.compute_losses(images, tape=tape)[1]
        loaded_logs = loaded.compute_losses(images, tape=loaded_tape)[1]
    for name in ("adversarial_loss", "adversarial_weight", "loss"):
        np.testing.assert_allclose(loaded_logs[name], logs[name], rtol=1e-6)


@pytest.mark.parametrize(
    "arguments",
    [dict(weight=-1.0), dict(start=-1), dict(loss="wasserstein")],
    ids=["weight", "start", "loss"],
)
def test_bad_adversarial_arguments_are_refused(arguments):
    with pytest.raises(ValueError, match="Received"):
        AdversarialLoss(**arguments)


def test_a_whole_run_with_adversarial_training_exports_no_discriminator(
    tmp_path, tiny_digits, tiny_train_args, tiny_prior_args
):
    run = str(tmp_path / "run")
    data = ("--data", tiny_digits, *tiny_train_args, *tiny_prior_args)
    main(["run", "--run", run, *data, "--adversarial-weight", "0.5"])
    with open(os.path.join(run, "config.json"), encoding="utf-8") as stream:
        config = json.load(stream)
    assert config["adversarial"] == {
        "adversarial_weight": 0.5,
        "adversarial_start": 0,
        "adversarial_loss": "hinge",
    }
    model = keras.saving.load_model(os.path.join(run, "vqvae.keras"))
    # The prior trained and sampled: a picture, and code grids of the codebook's codes
    assert os.path.getsize(os.path.join(run, "samples.png")) > 0
    codes = np.load(os.path.join(run, "samples.npy"))
    assert codes.shape[1:] == model.grid_shape and 0 <= codes.min() and codes.max() < model.num_embeddings
    (term,) = model.loss_terms
    assert term.weight == 0.5 and int(term.steps.numpy()) > 0
    # The SavedModel's variables are the codec's and the prior's: no discriminator, none of its sizes.
    saved = tf.train.list_variables(os.path.join(run, "saved_model", "variables", "variables"))
    assert saved and not [name for name, _ in saved if "discriminator" in name.lower()]
    # Every saved variable is one of the codec's or the prior's, in number and in shape.
    prior = keras.saving.load_model(os.path.join(run, "prior.keras"))
    expected = sorted(tuple(v.shape) for v in model.codec_variables + prior.variables)
    assert sorted(tuple(shape) for name, shape in saved if name.startswith("model_variables/")) == expected


def test_the_epoch_backup_holds_the_discriminator_and_its_optimizer(tmp_path):
    from vqgen.runs.callbacks import EpochBackup

    model = _tiny_model(weight=0.5)
    backup = EpochBackup(str(tmp_path / "backup"))
    model.fit(_images(16), epochs=1, batch_size=8, verbose=0, callbacks=[backup])
    fresh = _tiny_model(weight=0.5)
    assert backup.restore(fresh) == 1
    term, restored = model.loss_terms[0], fresh.loss_terms[0]
    assert int(restored.optimizer.iterations.numpy()) == 2
    for saved, loaded in zip(
        term.variables + term.optimizer.variables, restored.variables + restored.optimizer.variables
    ):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())


# `vqgen train` that SIGKILLs itself inside epoch KILL_AFTER_EPOCH + 1, three steps after the epoch
# backup of epoch KILL_AFTER_EPOCH was written (0: never): the steps since the backup are lost.
KILLED_TRAIN_SCRIPT = """
import os, signal, sys
from vqgen.cli import main
from vqgen.runs.callbacks import EpochBackup

kill_after = int(os.environ["KILL_AFTER_EPOCH"])
write_backup = EpochBackup.on_epoch_end

def on_epoch_end(self, epoch, logs=None):
    write_backup(self, epoch, logs)
    self.backed_up = epoch + 1

def on_train_batch_end(self, batch, logs=None):
    if kill_after and getattr(self, "backed_up", 0) == kill_after and batch == 2:
        os.kill(os.getpid(), signal.SIGKILL)

EpochBackup.on_epoch_end = on_epoch_end
EpochBackup.on_train_batch_end = on_train_batch_end
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_the_discriminator_and_its_optimizer_survive_sigkill_and_resume_bit_exactly(
    tmp_path, tiny_digits, tiny_train_args
):
    def train(run, kill_after=0):
        argv = [*("train", "--run", str(run), "--data", tiny_digits), *tiny_train_args]
        argv += [*("--epochs", "2", "--batch-size", "16", "--deterministic")]
        argv += ["--adversarial-weight", "0.5", "--adversarial-start", "0"]
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KILL_AFTER_EPOCH": str(kill_after)}
        return subprocess.Popen(
            [sys.executable, "-c", KILLED_TRAIN_SCRIPT, *argv],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    reference = train(tmp_path / "reference")  # never killed; runs beside the other
    try:
        killed = train(tmp_path / "killed", kill_after=1)
        _, err = killed.communicate(timeout=300)
        assert killed.returncode == -9, err
        with open(tmp_path / "killed" / "backup" / "vqvae" / "epoch.json", encoding="utf-8") as stream:
            assert json.load(stream)["epochs_completed"] == 1
        resumed = train(tmp_path / "killed")
        out, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err
        assert "Resuming" in out
        _, err = reference.communicate(timeout=300)
        assert reference.returncode == 0, err
    finally:
        if reference.poll() is None:  # a failure above: the reference is not left running
            reference.kill()
            reference.wait()
    models = [keras.saving.load_model(tmp_path / run / "vqvae.keras") for run in ("killed", "reference")]
    terms = [model.loss_terms[0] for model in models]
    assert int(terms[0].steps.numpy()) == int(terms[1].steps.numpy()) == 18  # 2 epochs of 9 steps
    # Every weight (the discriminator's among them), both optimizers' slots and step counts: equal.
    assert any("discriminator" in weight.path for weight in models[0].weights)
    resumed_state, reference_state = (
        model.weights + model.optimizer.variables + term.optimizer.variables
        for model, term in zip(models, terms)
    )
    assert len(resumed_state) == len(reference_state) and terms[0].optimizer.variables
    for resumed_variable, reference_variable in zip(resumed_state, reference_state):
        np.testing.assert_array_equal(
            resumed_variable.numpy(), reference_variable.numpy(), err_msg=resumed_variable.path
        )
