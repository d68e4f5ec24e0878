import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _randomise_weights(model, scale, seed):
    """Sets every weight of a built `model` to normal noise of standard deviation `scale`."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run folder trained in seconds: 160 digits, 2 epochs of a tiny VQ-VAE (K=16) and of a tiny
    class-conditional PixelCNN; shared by the tests that read a finished run."""
    from vqgen.data import load_images
    from vqgen.runs.train_prior import train_prior
    from vqgen.runs.train_vqvae import train_vqvae

    digits = load_images("digits")
    picks = np.random.default_rng(0).choice(len(digits), 160, replace=False)
    source = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(source, images=digits.images[picks], labels=digits.labels[picks])
    run = str(tmp_path_factory.mktemp("runs") / "tiny")
    stage1 = dict(num_embeddings=16, embedding_dim=4, hidden_channels=8, residual_channels=4)
    train_vqvae(run, source=str(source), epochs=2, batch_size=32, num_residual_blocks=1, verbose=0, **stage1)
    train_prior(run, conditional=True, epochs=2, num_layers=2, filters=8, verbose=0)
    return run


@pytest.fixture(scope="session")
def randomise_weights():
    """`randomise_weights(model, scale, seed)`: non-trivial random weights (biases included) for an
    untrained model or layer, so no connection is silently zero; returns the model."""
    return _randomise_weights
