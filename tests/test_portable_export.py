"""LiteRT and ONNX exports against the SavedModel: the same codes, images within 1e-5, the same
sampled grids for the same noise."""

import os

import numpy as np
import pytest
import tensorflow as tf

import prior
import vqgen
from vqgen.export import export_saved_model
from vqgen.noise_sampler import gumbel_noise, sample_with_noise
from vqgen.portable_export import PORTABLE_FORMATS, export_portable, load_portable

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

FORMATS = ("litert", "onnx")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A tiny VQ-VAE and class-conditional PixelCNN (label dropout: guidance) with random weights, in all
    three formats."""
    rng = np.random.default_rng(0)
    vqvae = vqgen.VQVAE(
        input_shape=(28, 28, 1),
        num_embeddings=16,
        embedding_dim=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
    )
    pixelcnn = prior.PixelCNN(
        num_embeddings=16, grid_shape=(7, 7), num_layers=3, filters=8, num_classes=10, label_dropout=0.1
    )
    if not vqvae.built:
        vqvae.build((None, 28, 28, 1))
    if not pixelcnn.built:
        pixelcnn.build()
    for model in (vqvae, pixelcnn):
        model.set_weights(
            [rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.get_weights()]
        )
    folder = tmp_path_factory.mktemp("exports")
    saved = tf.saved_model.load(export_saved_model(str(folder / "saved_model"), vqvae, pixelcnn))
    portable = {}
    for name in FORMATS:
        path = export_portable(str(folder / name), vqvae, pixelcnn, format=name)
        portable[name] = load_portable(path)
        portable[name].path = path  # for the tests that open the model files themselves
    return saved, portable


@pytest.mark.slow
@pytest.mark.parametrize("name", FORMATS)
def test_encode_and_decode_equal_the_saved_model(exports, name):
    saved, portable = exports
    images = np.random.default_rng(1).uniform(size=(16, 28, 28, 1)).astype("float32")
    codes = saved.signatures["encode"](images=tf.constant(images))["codes"].numpy()
    np.testing.assert_array_equal(portable[name].encode(images), codes)
    decoded = saved.signatures["decode"](codes=tf.constant(codes))["images"].numpy()
    np.testing.assert_allclose(portable[name].decode(codes), decoded, atol=1e-5, rtol=0)
    assert portable[name].config["format"] == name


@pytest.mark.slow
def test_the_same_noise_samples_the_same_grids_in_every_format(exports):
    saved, portable = exports
    gumbel = gumbel_noise(6, (7, 7), 16, seed=2)
    labels = np.arange(6, dtype=np.int32) % 10
    logits = saved.signatures["prior_logits"]

    def saved_logits(grid, labels_):  # the NumPy loop around the SavedModel's one-pass logits
        return logits(codes=tf.constant(grid), labels=tf.constant(labels_))["logits"].numpy()

    for temperature, guidance in ((1.0, 1.0), (0.5, 1.0), (1.0, 2.5)):
        inputs = dict(
            gumbel=tf.constant(gumbel), temperature=tf.constant(temperature), labels=tf.constant(labels)
        )
        if guidance == 1:  # the signature without a guidance input samples with guidance 1
            drawn = saved.signatures["sample_from_noise"](**inputs)
        else:
            drawn = saved.signatures["sample_from_noise_guided"](**inputs, guidance=tf.constant(guidance))
        codes = drawn["codes"].numpy()
        assert len(np.unique(codes)) > 3  # the draws do depend on the noise
        expected = sample_with_noise(saved_logits, gumbel, temperature, labels, guidance, no_label=10)
        np.testing.assert_array_equal(expected, codes)
        for name in FORMATS:
            sampled = portable[name].sample(gumbel, temperature, labels, guidance)
            np.testing.assert_array_equal(sampled, codes, err_msg=name)
            np.testing.assert_allclose(portable[name].decode(sampled), drawn["images"].numpy(), atol=1e-5)


def runtime_inputs_and_outputs(path, name):
    """`(inputs, outputs)` of the model file `path` as its runtime reports them: `{name: {"dtype",
    "shape"}}` and the output names and dtypes (`{name: dtype}`), unknown sizes as None."""
    if name == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        dtypes = {"tensor(float)": "float32", "tensor(int32)": "int32"}

        def size(value):
            return value if isinstance(value, int) else None

        inputs = {
            node.name: {"dtype": dtypes[node.type], "shape": [size(value) for value in node.shape]}
            for node in session.get_inputs()
        }
        return inputs, {node.name: dtypes[node.type] for node in session.get_outputs()}
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner()
    inputs = {
        input_name: {
            "dtype": np.dtype(details["dtype"]).name,
            "shape": [None if value == -1 else int(value) for value in details["shape_signature"]],
        }
        for input_name, details in runner.get_input_details().items()
    }
    outputs = {
        output: np.dtype(details["dtype"]).name for output, details in runner.get_output_details().items()
    }
    return inputs, outputs


@pytest.mark.slow
@pytest.mark.parametrize("name", FORMATS)
def test_the_config_lists_each_model_file_as_its_runtime_reports_it(exports, name):
    _, portable = exports
    listed = portable[name].config["models"]
    assert set(listed) == {"encode", "decode", "prior_logits"}
    for model, listing in listed.items():
        inputs, outputs = runtime_inputs_and_outputs(
            os.path.join(portable[name].path, f"{model}.{PORTABLE_FORMATS[name]}"), name
        )
        assert listing["inputs"] == inputs, model
        assert {output: info["dtype"] for output, info in listing["outputs"].items()} == outputs, model
    assert listed["prior_logits"]["inputs"] == {
        "codes": {"dtype": "int32", "shape": [None, 7, 7]},
        "labels": {"dtype": "int32", "shape": [None]},
    }


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        export_portable(str(tmp_path / "x"), None, format="coreml")


@pytest.mark.slow
def test_vqgen_export_format_onnx_writes_a_runnable_export(tiny_run, tmp_path):
    from vqgen.cli import main
    from vqgen.runs.model_files import load_stage_model
    from vqgen.runs.run_folder import RunFolder

    out = str(tmp_path / "onnx")
    assert main(["export", "--run", tiny_run, "--out", out, "--format", "onnx"]) == 0
    exported = load_portable(out)
    vqvae = load_stage_model(RunFolder(tiny_run), "vqvae")
    codes = np.random.default_rng(3).integers(0, 16, size=(4, 7, 7)).astype(np.int32)
    np.testing.assert_allclose(exported.decode(codes), vqvae.decode(codes), atol=1e-5, rtol=0)
    labels = np.arange(4, dtype=np.int32)
    assert exported.sample(gumbel_noise(4, (7, 7), 16, seed=0), 1.0, labels).shape == (4, 7, 7)
    with pytest.raises(SystemExit):  # an existing export is kept
        main(["export", "--run", tiny_run, "--out", out, "--format", "onnx"])
