"""prior.registry: every prior by name, with its class and defaults, and capabilities that hold."""

import dataclasses
import inspect
import itertools

import numpy as np
import pytest

import prior
from prior.registry import DEFAULT_PRIOR, PARALLEL, PRIORS, RASTER, kind_of, prior_kind

# Tiny architectures, so that every prior builds in a moment.
TINY = {
    "pixelcnn": dict(num_layers=2, filters=4, kernel_size=3),
    "transformer": dict(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=8, dropout=0.0),
    "maskgit": dict(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=8, dropout=0.0),
}


def tiny_model(name, num_embeddings=3, grid_shape=(2, 2), seed=0):
    """A registered prior with random (not trained) weights, built."""
    import keras

    keras.utils.set_random_seed(seed)
    model = prior_kind(name).model_class(num_embeddings=num_embeddings, grid_shape=grid_shape, **TINY[name])
    model.build()
    return model


def test_every_prior_is_registered_once_by_its_name():
    assert set(PRIORS) == set(TINY) and DEFAULT_PRIOR in PRIORS
    assert {kind.model_class for kind in PRIORS.values()} == {
        prior.PixelCNN,
        prior.Transformer,
        prior.MaskGIT,
    }
    assert all(PRIORS[name].name == name for name in PRIORS)
    assert prior.PRIORS is PRIORS and prior.kind_of is kind_of  # exported by the package


@pytest.mark.parametrize("name", sorted(TINY))
def test_settings_are_the_class_defaults(name):
    kind = PRIORS[name]
    parameters = inspect.signature(kind.model_class.__init__).parameters
    for field in dataclasses.fields(kind.settings):
        assert parameters[field.name].default == getattr(kind.settings, field.name), field.name


@pytest.mark.parametrize("name", sorted(TINY))
def test_kind_of_a_model_is_its_entry(name):
    assert kind_of(tiny_model(name)) is PRIORS[name]


def test_unknown_names_and_models_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"Unknown prior 'gpt'; choose one of \['maskgit', 'pixelcnn'"):
        prior_kind("gpt")
    with pytest.raises(
        ValueError, match="prior must be a prior.PixelCNN, a prior.Transformer or a prior.MaskGIT"
    ):
        kind_of(object())


def test_option_prefixes_are_distinct_and_only_the_default_has_none():
    prefixes = [kind.option_prefix for kind in PRIORS.values()]
    assert len(set(prefixes)) == len(prefixes)
    assert [kind.name for kind in PRIORS.values() if not kind.option_prefix] == [DEFAULT_PRIOR]
    assert all(kind.option_prefix in ("", f"{kind.name}_") for kind in PRIORS.values())


@pytest.mark.parametrize("name", sorted(TINY))
def test_decoding_says_whether_sampling_takes_steps(name):
    kind = PRIORS[name]
    assert kind.decoding in (RASTER, PARALLEL)
    takes_steps = "steps" in inspect.signature(kind.model_class.sample).parameters
    assert takes_steps == (kind.decoding == PARALLEL)


@pytest.mark.parametrize("name", sorted(TINY))
def test_exact_likelihood_sums_to_one_over_every_grid(name):
    # With an exact likelihood, exp(log_prob) over all K^(rows*cols) grids sums to 1 (brute force).
    model = tiny_model(name)
    grids = np.array(list(itertools.product(range(3), repeat=4)), np.int32).reshape(-1, 2, 2)  # 81 grids
    if not PRIORS[name].exact_likelihood:
        with pytest.raises(NotImplementedError):
            model.log_prob(grids)
        return
    total = np.exp(model.log_prob(grids).astype(np.float64)).sum()
    assert total == pytest.approx(1.0, abs=1e-4)
