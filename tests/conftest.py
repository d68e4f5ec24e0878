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
def tiny_digits(tmp_path_factory):
    """The path of an .npz of 160 labelled digits (a fixed pick), the data of the tiny runs."""
    from vqgen.data import load_images

    digits = load_images("digits")
    picks = np.random.default_rng(0).choice(len(digits), 160, replace=False)
    source = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(source, images=digits.images[picks], labels=digits.labels[picks])
    return str(source)


# A tiny stage 1 (train_vqvae settings): trains on tiny_digits in seconds.
TINY_VQVAE = dict(
    num_embeddings=16,
    embedding_dim=4,
    hidden_channels=8,
    residual_channels=4,
    num_residual_blocks=1,
    batch_size=32,
)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_digits):
    """A run folder trained in seconds: 160 digits, 2 epochs of a tiny VQ-VAE (K=16) and of a tiny
    class-conditional PixelCNN; shared by the tests that read a finished run."""
    from vqgen.runs.train_prior import train_prior
    from vqgen.runs.train_vqvae import train_vqvae

    run = str(tmp_path_factory.mktemp("runs") / "tiny")
    train_vqvae(run, source=tiny_digits, epochs=2, verbose=0, **TINY_VQVAE)
    train_prior(run, conditional=True, epochs=2, num_layers=2, filters=8, verbose=0)
    return run


@pytest.fixture(scope="session")
def tiny_fsq_run(tmp_path_factory, tiny_digits):
    """A tiny FSQ run with stage 1 only: levels [5, 5, 3] (75 codes), 1 epoch (its codes are single
    integers, so a prior sees them as it sees VQ codes)."""
    from vqgen.runs.train_vqvae import train_vqvae

    run = str(tmp_path_factory.mktemp("runs") / "tiny_fsq")
    train_vqvae(run, source=tiny_digits, epochs=1, verbose=0, quantizer="fsq", levels=[5, 5, 3], **TINY_VQVAE)
    return run


@pytest.fixture(scope="session")
def tiny_rvq_run(tmp_path_factory, tiny_digits):
    """A finished tiny residual-VQ run: d=2 levels of K=16, 1 epoch, and a 1-epoch class-conditional
    Transformer prior over the depth-interleaved [7, 14] grids."""
    from vqgen.runs.train_prior import train_prior
    from vqgen.runs.train_vqvae import train_vqvae

    run = str(tmp_path_factory.mktemp("runs") / "tiny_rvq")
    train_vqvae(run, source=tiny_digits, epochs=1, verbose=0, quantizer="rvq", num_quantizers=2, **TINY_VQVAE)
    transformer = dict(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16)
    train_prior(run, conditional=True, kind="transformer", epochs=1, verbose=0, **transformer)
    return run


@pytest.fixture(scope="session")
def randomise_weights():
    """`randomise_weights(model, scale, seed)`: non-trivial random weights (biases included) for an
    untrained model or layer, so no connection is silently zero; returns the model."""
    return _randomise_weights
