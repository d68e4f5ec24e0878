"""The Keras API contract: public building blocks compose into a user's own functional model that
trains with compile/fit and reloads from `.keras`; packaged models reload in a fresh process after
importing only their own package; every public name exists and every public layer is registered."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import prior
import vqgen

WIDTHS = dict(downsample=2, hidden_channels=8, residual_channels=4, num_residual_blocks=1)


def images(count, seed=0):
    return np.random.default_rng(seed).uniform(size=(count, 8, 8, 1)).astype("float32")


def user_model():
    inputs = keras.Input((8, 8, 1))
    features = vqgen.Encoder(embedding_dim=4, name="encoder", **WIDTHS)(inputs)
    quantized = vqgen.VectorQuantizer(num_embeddings=8, embedding_dim=4, name="quantizer")(features)
    decoded = vqgen.Decoder(channels=1, name="decoder", **WIDTHS)(quantized)
    outputs = prior.MaskedConv2D(1, 3, mask_type="B", padding="same", name="masked")(decoded)
    return keras.Model(inputs, outputs)


def test_functional_model_of_public_blocks_trains_and_round_trips(tmp_path):
    model = user_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = {layer.name: [w.numpy().copy() for w in layer.weights] for layer in model.layers[1:]}
    data = images(16)
    history = model.fit(data, data, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for layer in model.layers[1:]:
        changed = [
            not np.array_equal(old, new.numpy()) for old, new in zip(before[layer.name], layer.weights)
        ]
        # The encoder learns through the straight-through estimator; the codebook only through the
        # quantizer's add_loss term, so its change shows that term is part of the fitted loss.
        assert any(changed), f"{layer.name} did not train"

    path = tmp_path / "user_model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the blocks are registered
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    probe = images(5, seed=1)
    np.testing.assert_array_equal(loaded.predict(probe, verbose=0), model.predict(probe, verbose=0))


# Loads a .keras file in a fresh interpreter after importing one package only; the other package
# may be made unimportable, so the file cannot lean on it. argv: package, blocked package (or ""),
# model file, inputs file, output file.
LOAD_WITH_ONE_PACKAGE = r"""
import importlib, os, sys

package, blocked, model_path, inputs_path, out_path = sys.argv[1:]

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if blocked and name.split(".")[0] == blocked:
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Refuse())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np

importlib.import_module(package)
model = keras.models.load_model(model_path)
inputs = np.load(inputs_path)
if package == "vqgen":
    results = {"codes": model.encode(inputs["images"]), "images": model.decode(inputs["codes"])}
else:
    results = {
        "logits": model.predict(inputs["codes"], verbose=0),
        "log_prob": model.log_prob(inputs["codes"]),
    }
results["class_name"] = np.array(type(model).__name__)
np.savez(out_path, **results)
"""


@pytest.mark.slow
def test_packaged_models_load_in_a_fresh_process_after_importing_their_package(tmp_path):
    vqvae = vqgen.VQVAE(input_shape=(8, 8, 1), num_embeddings=16, embedding_dim=4, seed=0, **WIDTHS)
    pixelcnn = prior.PixelCNN(num_embeddings=16, grid_shape=(4, 4), num_layers=2, filters=8)
    pixelcnn.build()
    rng = np.random.default_rng(2)
    inputs = {"images": images(6, seed=3), "codes": rng.integers(0, 16, size=(6, 4, 4)).astype("int32")}
    np.savez(tmp_path / "inputs.npz", **inputs)
    vqvae.save(tmp_path / "vqvae.keras")
    pixelcnn.save(tmp_path / "pixelcnn.keras")

    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # package: (package made unimportable, model file); vqgen may use prior, prior never vqgen.
    runs = {"vqgen": ("", "vqvae.keras"), "prior": ("vqgen", "pixelcnn.keras")}
    processes = {
        package: subprocess.Popen(
            [
                sys.executable,
                "-c",
                LOAD_WITH_ONE_PACKAGE,
                package,
                blocked,
                str(tmp_path / model_file),
                str(tmp_path / "inputs.npz"),
                str(tmp_path / f"{package}.npz"),
            ],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for package, (blocked, model_file) in runs.items()
    }
    for process in processes.values():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]

    from_vqgen = np.load(tmp_path / "vqgen.npz")
    assert str(from_vqgen["class_name"]) == "VQVAE"
    np.testing.assert_array_equal(from_vqgen["codes"], vqvae.encode(inputs["images"]))
    np.testing.assert_allclose(from_vqgen["images"], vqvae.decode(inputs["codes"]), atol=1e-6, rtol=0)
    from_prior = np.load(tmp_path / "prior.npz")
    assert str(from_prior["class_name"]) == "PixelCNN"
    np.testing.assert_allclose(
        from_prior["logits"], pixelcnn.predict(inputs["codes"], verbose=0), atol=1e-5, rtol=0
    )
    np.testing.assert_allclose(from_prior["log_prob"], pixelcnn.log_prob(inputs["codes"]), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "package, expected_layers",
    [
        (vqgen, {"Decoder", "Encoder", "ResidualStack", "VQVAE", "VectorQuantizer"}),
        (prior, {"GatedBlock", "MaskedConv2D", "PixelCNN"}),
    ],
)
def test_public_names_exist_and_public_layers_are_registered(package, expected_layers):
    layers = set()
    for name in package.__all__:
        assert hasattr(package, name), f"{package.__name__}.__all__ lists {name}, which does not exist"
        value = getattr(package, name)
        if isinstance(value, type) and issubclass(value, keras.layers.Layer):
            layers.add(name)
            registered = f"{package.__name__}>{name}"
            assert keras.saving.get_registered_name(value) == registered
            assert keras.saving.get_registered_object(registered) is value
    assert expected_layers <= layers
    assert len(set(package.__all__)) == len(package.__all__)
