"""LiteRT and ONNX exports against the SavedModel: the same codes, images within 1e-5, the same
sampled grids for the same noise, with the cached step and with the full pass, for a PixelCNN and a
Transformer."""

import os

import numpy as np
import pytest
import tensorflow as tf

import prior
import vqgen
from vqgen.export import export_saved_model
from vqgen.noise_sampler import CachedStep, gumbel_noise, sample_with_noise
from vqgen.portable_export import PORTABLE_FORMATS, LiteRTCachedStep, export_portable, load_portable

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

FORMATS = ("litert", "onnx")


def export_all(folder, prior_model):
    """A tiny VQ-VAE with `prior_model` (both given random weights) in all three formats: the loaded
    SavedModel and `{format: load_portable(...)}`."""
    rng = np.random.default_rng(0)
    vqvae = vqgen.VQVAE(
        input_shape=(28, 28, 1),
        num_embeddings=16,
        embedding_dim=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
    )
    if not vqvae.built:
        vqvae.build((None, 28, 28, 1))
    for model in (vqvae, prior_model):
        model.set_weights(
            [rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.get_weights()]
        )
    saved = tf.saved_model.load(export_saved_model(str(folder / "saved_model"), vqvae, prior_model))
    portable = {}
    for name in FORMATS:
        path = export_portable(str(folder / name), vqvae, prior_model, format=name)
        portable[name] = load_portable(path)
        portable[name].path = path  # for the tests that open the model files themselves
    return saved, portable


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A tiny class-conditional PixelCNN (label dropout: guidance) with random weights, in all three
    formats."""
    pixelcnn = prior.PixelCNN(
        num_embeddings=16, grid_shape=(7, 7), num_layers=3, filters=8, num_classes=10, label_dropout=0.1
    )
    return export_all(tmp_path_factory.mktemp("exports"), pixelcnn)


@pytest.fixture(scope="module")
def transformer_exports(tmp_path_factory):
    """A tiny class-conditional Transformer (label dropout: guidance) with random weights, in all three
    formats."""
    transformer = prior.Transformer(
        num_embeddings=16,
        grid_shape=(7, 7),
        num_classes=10,
        label_dropout=0.1,
        num_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=16,
    )
    return export_all(tmp_path_factory.mktemp("transformer_exports"), transformer)


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


def check_the_same_noise_samples_the_same_grids(saved, portable):
    """For one noise tensor: the SavedModel's `sample_from_noise(_guided)` (TensorFlow's raster loop),
    the NumPy loop around its `prior_logits`, and each portable export's cached step and full pass
    draw the same grids, without guidance, at another temperature, and with guidance 2.5 (doubled
    batch and caches)."""
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
            for method in ("cached", "full"):
                sampled = portable[name].sample(gumbel, temperature, labels, guidance, method=method)
                np.testing.assert_array_equal(sampled, codes, err_msg=f"{name} {method}")
            np.testing.assert_allclose(portable[name].decode(sampled), drawn["images"].numpy(), atol=1e-5)


@pytest.mark.slow
def test_the_same_noise_samples_the_same_grids_in_every_format(exports):
    check_the_same_noise_samples_the_same_grids(*exports)


@pytest.mark.slow
def test_the_same_noise_samples_the_same_transformer_grids_in_every_format(transformer_exports):
    check_the_same_noise_samples_the_same_grids(*transformer_exports)


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
    assert set(listed) == {"encode", "decode", "prior_logits", "prior_start", "prior_step", "prior_row"}
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
    # The PixelCNN's caches, 3 blocks of 8 filters and kernel 5 (padding 2), batch dynamic: the
    # vertical contributions to a row (2 x 8 channels), the horizontal stack's last 2 columns, the
    # vertical stack's last 3 rows (padded by 2 columns either side)
    contribution = {f"cache_contribution_{block}": [None, 1, 7, 16] for block in range(3)}
    horizontal = {f"cache_horizontal_{block}": [None, 1, 2, 8] for block in range(3)}
    row_cache = {f"row_cache_{block}": [None, 3, 11, 8] for block in range(3)}
    assert listed["prior_start"]["inputs"] == {"batch": {"dtype": "int32", "shape": []}}
    start_outputs = {k: v["shape"] for k, v in listed["prior_start"]["outputs"].items()}
    assert start_outputs == {**contribution, **horizontal, **row_cache}
    step_inputs = {k: v["shape"] for k, v in listed["prior_step"]["inputs"].items()}
    assert step_inputs == {
        "previous_codes": [None],
        "index": [],
        "labels": [None],
        **contribution,
        **horizontal,
    }
    # A position changes the horizontal histories only
    step_outputs = {k: v["shape"] for k, v in listed["prior_step"]["outputs"].items()}
    assert step_outputs == {"logits": [None, 16], **{f"next_{k}": v for k, v in horizontal.items()}}
    row_inputs = {k: v["shape"] for k, v in listed["prior_row"]["inputs"].items()}
    assert row_inputs == {"row_codes": [None, 7], "labels": [None], **row_cache}
    row_outputs = {k: v["shape"] for k, v in listed["prior_row"]["outputs"].items()}
    float_shapes = {**contribution, **horizontal, **row_cache}
    assert row_outputs == {f"next_{k}": v for k, v in float_shapes.items()}


@pytest.mark.slow
def test_the_transformer_step_returns_the_new_key_value_slice(transformer_exports):
    _, portable = transformer_exports
    listed = portable["onnx"].config["models"]
    # 2 blocks, each with its keys and values (_0, _1) for 2 heads of width 8 over the 49 positions;
    # a step returns its position's keys and values (one position: the traced slice's length is
    # not static) and where they go
    names = [f"cache_{block}_{part}" for block in range(2) for part in range(2)]
    assert {k: v["shape"] for k, v in listed["prior_start"]["outputs"].items()} == {
        name: [None, 2, 49, 8] for name in names
    }
    step_outputs = {k: v["shape"] for k, v in listed["prior_step"]["outputs"].items()}
    assert step_outputs == {
        "logits": [None, 16],
        **{f"update_{name}": [None, 2, None, 8] for name in names},
        **{f"start_{name}": [4] for name in names},
    }
    assert "prior_row" not in listed


@pytest.mark.slow
def test_the_litert_step_holding_its_caches_gives_the_logits_of_the_caches_passed_in(transformer_exports):
    """`LiteRTCachedStep` (caches kept in the interpreter, slices written in place) against
    `CachedStep` over plain signature runners (every cache passed in and out whole), position by
    position; and it refuses another batch, or a cache of an earlier `initial_cache`, in one line."""
    from ai_edge_litert.interpreter import Interpreter

    path = transformer_exports[1]["litert"].path

    def runner(name):
        return Interpreter(model_path=os.path.join(path, f"{name}.tflite")).get_signature_runner()

    held = LiteRTCachedStep(runner("prior_start"), os.path.join(path, "prior_step.tflite"))
    passed = CachedStep(runner("prior_start"), runner("prior_step"))
    labels = np.array([3, 0, 9], np.int32)
    codes = np.random.default_rng(4).integers(0, 16, size=(3, 49)).astype(np.int32)
    for batch in (3, 2, 3):  # sized for 3, resized for 2, back to 3
        held_cache, passed_cache = held.initial_cache(batch), passed.initial_cache(batch)
        for index in range(49):
            previous = codes[:batch, index - 1] if index else np.zeros(batch, np.int32)
            held_logits, held_cache = held.call_with_cache(previous, held_cache, index, labels[:batch])
            logits, passed_cache = passed.call_with_cache(previous, passed_cache, index, labels[:batch])
            np.testing.assert_array_equal(held_logits, logits, err_msg=f"batch {batch} position {index}")
    with pytest.raises(ValueError, match="batch of 3 .* received a batch of 2"):
        held.call_with_cache(codes[:2, 0], held_cache, 1, labels[:2])
    earlier = held.initial_cache(3)
    held.initial_cache(3)
    with pytest.raises(ValueError, match="cache of an earlier initial_cache"):
        held.call_with_cache(codes[:, 0], earlier, 1, labels)


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
