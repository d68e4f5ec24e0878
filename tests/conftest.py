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
def randomise_weights():
    """`randomise_weights(model, scale, seed)`: non-trivial random weights (biases included) for an
    untrained model or layer, so no connection is silently zero; returns the model."""
    return _randomise_weights
