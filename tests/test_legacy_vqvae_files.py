"""Models saved before quantizers were objects load into today's code and code and decode as they did.

`tests/data/legacy_vqvae_files.tar.xz` holds tiny VQ-VAEs of each quantizer written by commit 94ec57f
(`tests/data/make_legacy_vqvae_files.py`): their configs have a quantizer name and flat settings, and
FSQ's running statistics were then the model's own variables. The expected codes and images are the
ones that code computed. Codes must match exactly; decoded images within float32 rounding, because the
convolution kernels TensorFlow picks differ between CPUs (an AMD EPYC rounds them ~1e-7 apart from the
machine that wrote the archive).
"""

import pathlib
import tarfile

import keras
import numpy as np
import pytest

import vqgen

ARCHIVE = pathlib.Path(__file__).parent / "data" / "legacy_vqvae_files.tar.xz"


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("legacy")
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(folder, filter="data")
    with np.load(folder / "legacy_outputs.npz") as outputs:
        return folder, dict(outputs)


def assert_images_match(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["vq", "fsq", "rvq"])
def test_old_keras_files_load_and_code_as_before(kind, legacy):
    folder, expected = legacy
    model = keras.models.load_model(folder / f"legacy_{kind}.keras")
    quantizer_class = {
        "vq": vqgen.VectorQuantizer,
        "fsq": vqgen.FiniteScalarQuantizer,
        "rvq": vqgen.ResidualVectorQuantizer,
    }[kind]
    assert type(model.quantizer) is quantizer_class
    codes = model.encode(expected["images"])
    np.testing.assert_array_equal(codes, expected[f"{kind}_codes"])
    assert_images_match(model.decode(codes), expected[f"{kind}_decoded"])
    # Saved again by today's code, the model loads to the same outputs.
    model.save(folder / f"resaved_{kind}.keras")
    again = keras.models.load_model(folder / f"resaved_{kind}.keras")
    np.testing.assert_array_equal(again.encode(expected["images"]), codes)


def test_old_fsq_statistics_reach_the_quantizer_from_a_file_and_a_checkpoint(legacy):
    folder, expected = legacy
    model = keras.models.load_model(folder / "legacy_fsq.keras")
    assert model.quantizer.decay == 0.8  # the old config's latent_decay
    assert int(model.quantizer.statistics_set.numpy()) == 1
    assert np.all(model.quantizer.mean.numpy() != 0) and np.all(model.quantizer.variance.numpy() != 1)
    # A run's checkpoint (weights and optimizer state) loads into a model built from the same settings.
    fresh = vqgen.VQVAE.from_config(model.get_config())
    fresh.compile(optimizer=keras.optimizers.Adam(1e-2))
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(folder / "legacy_fsq.weights.h5")
    for name in ("mean", "variance", "statistics_set"):
        np.testing.assert_array_equal(
            getattr(fresh.quantizer, name).numpy(), getattr(model.quantizer, name).numpy()
        )
    codes = fresh.encode(expected["images"])
    np.testing.assert_array_equal(codes, expected["fsq_codes"])
    assert_images_match(fresh.decode(codes), expected["fsq_decoded"])
