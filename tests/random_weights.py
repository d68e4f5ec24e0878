"""Shared by the prior tests: non-trivial random weights for an untrained model."""

import numpy as np


def randomise_weights(model, scale, seed):
    """Sets every weight of a built `model` to normal noise of standard deviation `scale`."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in model.get_weights()])
    return model
