"""The VQ-VAE's loss as parts: the reconstruction loss against NumPy, another reconstruction loss given
as an object, and a loss term with a network and optimizer of its own joining the training step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vqgen
from vqgen.models import LossTerm, MeanAbsoluteError, MeanSquaredError
from vqgen.runs.model_files import load_model_file
from vqgen.runs.run_folder import RunFolder

WIDTHS = dict(num_embeddings=8, embedding_dim=4, downsample=4, hidden_channels=8, residual_channels=4)


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 8, 12, 1)).astype("float32")


@keras.saving.register_keras_serializable(package="test_losses")
class Critic(LossTerm):
    """A loss term with its own network: `weight` times the critic's mean score of the reconstructions;
    `update` trains the critic by its own optimizer to score images above reconstructions."""

    log_names = ("critic_loss",)

    def __init__(self, weight=0.1, learning_rate=1e-2, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight
        self.learning_rate = learning_rate
        self.network = keras.Sequential([keras.layers.Conv2D(2, 3, padding="same"), keras.layers.Dense(1)])
        self.network.build((None, 8, 12, 1))
        self.optimizer = keras.optimizers.SGD(learning_rate)
        self.optimizer.build(self.network.trainable_variables)

    def call(self, images, reconstructions, training=None):
        return -self.weight * tf.reduce_mean(self.network(reconstructions))

    def update(self, images, reconstructions):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(self.network(reconstructions)) - tf.reduce_mean(self.network(images))
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"critic_loss": loss}

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "learning_rate": self.learning_rate}


def test_mean_squared_error_is_the_mean_of_per_image_means():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(2, 3, 4, 4, 2)).astype("float32")
    expected = np.mean([np.mean((a - b) ** 2) for a, b in zip(x, y)])
    np.testing.assert_allclose(MeanSquaredError()(x, tf.constant(y, "bfloat16")), expected, rtol=1e-2)
    np.testing.assert_allclose(MeanSquaredError()(x, y), expected, rtol=1e-6)


def test_reconstruction_loss_is_the_object_given():
    model = vqgen.VQVAE(
        input_shape=(8, 12, 1), reconstruction_loss=keras.losses.MeanAbsoluteError(), seed=0, **WIDTHS
    )
    model.compile(optimizer="adam")
    batch = images(8)
    logs = model.evaluate(batch, batch_size=8, verbose=0, return_dict=True)
    reconstructions = model.decoder(model.quantizer.lookup(model.encode(batch))).numpy()  # unclipped
    np.testing.assert_allclose(
        logs["reconstruction_loss"], np.mean(np.abs(reconstructions - batch)), rtol=1e-5
    )
    np.testing.assert_allclose(logs["loss"], logs["reconstruction_loss"] + logs["vq_loss"], rtol=1e-6)
    config = model.get_config()
    assert isinstance(vqgen.VQVAE.from_config(config).reconstruction_loss, keras.losses.MeanAbsoluteError)


@pytest.mark.parametrize("critic_rate", [0.0, 1e-2])
def test_a_term_with_its_own_optimizer_joins_the_step(critic_rate, tmp_path):
    critic = Critic(learning_rate=critic_rate, name="critic_term")
    # No data initialisation: the training pass then reconstructs as `model(batch)` does before it.
    model = vqgen.VQVAE(input_shape=(8, 12, 1), loss_terms=[critic], init_from_data=False, seed=0, **WIDTHS)
    critic_before = [w.numpy().copy() for w in critic.network.weights]
    model_before = [w.numpy().copy() for w in model.trainable_weights]
    assert not {id(w) for w in critic.trainable_weights} & {id(w) for w in model.trainable_variables}
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    batch = images(8)
    expected_term = -0.1 * np.mean(critic.network(model(batch)).numpy())  # before the step
    logs = model.fit(batch, epochs=1, batch_size=8, verbose=0, shuffle=False).history
    # One step: the term's value is added to the loss and logged, with what its update logged.
    np.testing.assert_allclose(logs["critic_term"][0], expected_term, rtol=1e-4, atol=1e-7)
    total = logs["reconstruction_loss"][0] + logs["vq_loss"][0] + logs["critic_term"][0]
    np.testing.assert_allclose(logs["loss"][0], total, rtol=1e-5)
    assert np.isfinite(logs["critic_loss"][0])
    # The model's optimizer moved the autoencoder; only the term's own optimizer moves the critic.
    assert any(np.any(w.numpy() != old) for w, old in zip(model.trainable_weights, model_before))
    critic_moved = any(np.any(w.numpy() != old) for w, old in zip(critic.network.weights, critic_before))
    assert critic_moved == (critic_rate > 0)
    # The term is saved with the model, its network's weights too.
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert [type(term) for term in loaded.loss_terms] == [Critic]
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)  # no slots for the critic
    for got, want in zip(loaded.loss_terms[0].network.weights, critic.network.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_terms_that_cannot_be_logged_are_refused():
    with pytest.raises(ValueError, match="'psnr' logs psnr, a name already logged"):
        vqgen.VQVAE(input_shape=(8, 12, 1), loss_terms=[Critic(name="psnr")], **WIDTHS)
    with pytest.raises(ValueError, match="loss_terms must be LossTerm layers"):
        vqgen.VQVAE(input_shape=(8, 12, 1), loss_terms=[MeanSquaredError()], **WIDTHS)


def test_mean_absolute_error_is_the_mean_of_per_image_means():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=(2, 3, 4, 4, 2)).astype("float32")
    expected = np.mean([np.mean(np.abs(a - b)) for a, b in zip(x, y)])
    np.testing.assert_allclose(MeanAbsoluteError()(x, tf.constant(y, "bfloat16")), expected, rtol=1e-2)
    np.testing.assert_allclose(MeanAbsoluteError()(x, y), expected, rtol=1e-6)
    assert MeanAbsoluteError()(x, y).dtype == tf.float32


def test_a_model_trained_with_l1_saves_and_loads_with_its_loss(tmp_path):
    model = vqgen.VQVAE(input_shape=(8, 12, 1), reconstruction_loss=MeanAbsoluteError(), seed=0, **WIDTHS)
    model.compile(optimizer="adam")
    batch = images(16)
    model.fit(batch, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "l1.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.reconstruction_loss, MeanAbsoluteError)
    loaded.compile(optimizer="adam")
    logs = loaded.evaluate(batch, batch_size=16, verbose=0, return_dict=True)
    reconstructions = loaded.decoder(loaded.quantizer.lookup(loaded.encode(batch))).numpy()  # unclipped
    np.testing.assert_allclose(
        logs["reconstruction_loss"], np.mean(np.abs(reconstructions - batch)), rtol=1e-5
    )


def test_cli_options_reach_the_saved_model_and_config(tmp_path, tiny_digits, tiny_train_args, run_cli):
    run = str(tmp_path / "l1")
    options = ["--reconstruction-loss", "l1", "--codebook-dim", "2", "--l2-normalize"]
    code, _, stderr = run_cli(["train", "--run", run, "--data", tiny_digits, *tiny_train_args, *options])
    assert code == 0, stderr
    settings = RunFolder(run).read_config()["vqvae"]
    assert (settings["reconstruction_loss"], settings["codebook_dim"], settings["l2_normalize"]) == (
        "l1",
        2,
        True,
    )
    model = load_model_file(RunFolder(run).model_path("vqvae"), vqgen.VQVAE)
    assert isinstance(model.reconstruction_loss, MeanAbsoluteError)
    assert (model.quantizer.codebook_dim, model.quantizer.l2_normalize) == (2, True)
