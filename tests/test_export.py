"""SavedModel export: signatures agree with the in-process models when loaded without vqgen/prior,
through both the TF2 loader and the TF1 session loader that saved_model_cli and TF Serving use."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

import prior
import vqgen
from vqgen.export import export_saved_model
from vqgen.noise_sampler import gumbel_noise, sample_with_noise
from vqgen.settings import EXPORT_DEFAULTS

LABELS = np.array([0, 2, 1, 2], np.int32)
SAMPLE_ARGUMENTS = {"num_samples": "num_samples", "temperature": "temperature", "seed": "seed"}
SAMPLE_B_ARGUMENTS = {"num_samples": "num_samples", "temperature": "temperature_b", "seed": "seed_b"}
CALLS = {
    # export name -> [(call id, signature, {input name: key of the inputs file})]
    "codec": [
        ("encode", "encode", {"images": "images"}),
        ("decode", "decode", {"codes": "codes"}),
        ("reconstruct", "reconstruct", {"images": "images"}),
        ("serving_default", "serving_default", {"images": "images"}),
    ],
    "unconditional": [
        ("encode", "encode", {"images": "images"}),
        ("decode", "decode", {"codes": "codes"}),
        ("reconstruct", "reconstruct", {"images": "images"}),
        ("sample", "sample", SAMPLE_ARGUMENTS),
        ("sample_b", "sample", SAMPLE_B_ARGUMENTS),
        ("serving_default", "serving_default", SAMPLE_ARGUMENTS),
    ],
    "conditional": [
        ("sample", "sample", {**SAMPLE_ARGUMENTS, "labels": "labels"}),
        ("serving_default", "serving_default", {**SAMPLE_ARGUMENTS, "labels": "labels"}),
    ],
    # trained with label dropout: sample and sample_from_noise take the first release's inputs (guidance
    # 1), sample_guided and sample_from_noise_guided also the guidance scale
    "transformer": [
        ("sample", "sample", {**SAMPLE_ARGUMENTS, "labels": "labels"}),
        ("sample_b", "sample", {**SAMPLE_B_ARGUMENTS, "labels": "labels"}),
        ("guided_one", "sample_guided", {**SAMPLE_ARGUMENTS, "labels": "labels", "guidance": "guidance_one"}),
        ("guided", "sample_guided", {**SAMPLE_ARGUMENTS, "labels": "labels", "guidance": "guidance_three"}),
        ("no_label", "sample_guided", {**SAMPLE_ARGUMENTS, "labels": "labels", "guidance": "guidance_zero"}),
        (
            "noise",
            "sample_from_noise",
            {"gumbel": "gumbel", "temperature": "temperature", "labels": "labels"},
        ),
        (
            "noise_guided",
            "sample_from_noise_guided",
            {
                "gumbel": "gumbel",
                "temperature": "temperature",
                "labels": "labels",
                "guidance": "guidance_three",
            },
        ),
    ],
    "rvq": [
        ("encode", "encode", {"images": "images"}),
        ("decode", "decode", {"codes": "rvq_codes"}),
        ("sample", "sample", SAMPLE_ARGUMENTS),
    ],
}

# Runs in a fresh interpreter in which vqgen and prior cannot be imported (the editable install's
# finder is shadowed by one that refuses them); argv[1] is a JSON list of jobs.
LOAD_WITHOUT_TOOLKIT = r"""
import json, os, sys

class RefuseToolkit:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("vqgen", "prior"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, RefuseToolkit())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

blocked = []
for name in ("vqgen", "prior"):
    try:
        __import__(name)
    except ImportError:
        blocked.append(name)

for job in json.loads(sys.argv[1]):
    inputs = np.load(job["inputs"])
    results = {}
    loaded = tf.saved_model.load(job["path"])
    for call_id, signature, arguments in job["calls"]:
        outputs = loaded.signatures[signature](
            **{name: tf.constant(inputs[key]) for name, key in arguments.items()}
        )
        results.update({f"tf2/{call_id}/{name}": value.numpy() for name, value in outputs.items()})
    with open(loaded.config_file.asset_path.numpy().decode(), encoding="utf-8") as stream:
        results["config"] = np.array(stream.read())
    results["signatures"] = np.array(sorted(loaded.signatures))
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], job["path"])
        for call_id, signature, arguments in job["calls"]:
            definition = meta_graph.signature_def[signature]
            fetches = {name: info.name for name, info in definition.outputs.items()}
            feeds = {definition.inputs[name].name: inputs[key] for name, key in arguments.items()}
            outputs = session.run(fetches, feeds)
            results.update({f"tf1/{call_id}/{name}": value for name, value in outputs.items()})
    toolkit_modules = [name for name in sys.modules if name.split(".")[0] in ("vqgen", "prior")]
    results["isolation"] = np.array(json.dumps({"blocked": blocked, "loaded": toolkit_modules}))
    np.savez(job["out"], **results)
"""


def tiny_vqvae():
    model = vqgen.VQVAE(
        input_shape=(8, 8, 1),
        num_embeddings=16,
        embedding_dim=4,
        downsample=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
        seed=0,
    )
    # Codebook rows taken from encoder outputs, so that random images use many different codes.
    features = model.encoder(np.random.default_rng(5).uniform(size=(8, 8, 8, 1)).astype("float32"))
    model.quantizer.codebook.assign(tf.reshape(features, [-1, 4])[::2])
    return model


def tiny_rvq_vqvae():
    """A residual-VQ model (d=2) whose codebooks make random images use many codes at both levels."""
    model = vqgen.VQVAE(
        input_shape=(8, 8, 1),
        num_embeddings=16,
        embedding_dim=4,
        downsample=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
        quantizer="rvq",
        num_quantizers=2,
        seed=0,
    )
    features = model.encoder(np.random.default_rng(5).uniform(size=(8, 8, 8, 1)).astype("float32"))
    first, second = model.quantizer.quantizers
    vectors = tf.reshape(features, [-1, 4])  # (32, 4)
    first.codebook.assign(vectors[::2])
    residuals = vectors - tf.gather(first.codebook, first.indices(vectors))  # zero at the even rows
    second.codebook.assign(residuals[1::2])
    return model


@pytest.fixture(scope="module")
def models(randomise_weights):
    return {
        "vqvae": tiny_vqvae(),
        "unconditional": prior.PixelCNN(num_embeddings=16, grid_shape=(2, 2), num_layers=2, filters=8),
        "conditional": prior.PixelCNN(
            num_embeddings=16, grid_shape=(2, 2), num_classes=3, num_layers=2, filters=8
        ),
        # Seeded N(0, 1) weights: Keras' initial ones, small and unseeded, let guidance 3 draw the
        # plain grids now and then, which the guided-sampling test must rule out to mean anything.
        "transformer": randomise_weights(
            prior.Transformer(
                num_embeddings=16,
                grid_shape=(2, 2),
                num_classes=3,
                label_dropout=0.1,
                num_layers=1,
                hidden_dim=8,
                num_heads=2,
            ),
            1.0,
            seed=1,
        ),
        "rvq_vqvae": tiny_rvq_vqvae(),
        # over the (h, w * d) grids of VQVAE.to_token_grid
        "rvq_prior": prior.PixelCNN(num_embeddings=16, grid_shape=(2, 4), num_layers=2, filters=8),
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    rng = np.random.default_rng(0)
    arrays = {
        "images": rng.uniform(size=(5, 8, 8, 1)).astype(np.float32),
        "codes": rng.integers(0, 16, size=(5, 2, 2)).astype(np.int32),
        "num_samples": np.array(len(LABELS), np.int32),
        "temperature": np.array(1.0, np.float32),
        "seed": np.array(7, np.int64),
        "temperature_b": np.array(0.5, np.float32),
        "seed_b": np.array(123, np.int64),
        "labels": LABELS,
        "rvq_codes": rng.integers(0, 16, size=(5, 2, 2, 2)).astype(np.int32),
        "guidance_one": np.array(1.0, np.float32),
        "guidance_three": np.array(3.0, np.float32),
        "guidance_zero": np.array(0.0, np.float32),
        "gumbel": gumbel_noise(len(LABELS), (2, 2), 16, seed=4),
    }
    path = tmp_path_factory.mktemp("inputs") / "inputs.npz"
    np.savez(path, **arrays)
    return {"path": str(path), **arrays}


@pytest.fixture(scope="module")
def reference(models, inputs):
    """What the in-process models return for the inputs (sampled before export)."""
    vqvae = models["vqvae"]
    unconditional, conditional = models["unconditional"], models["conditional"]
    return {
        "codes": vqvae.encode(inputs["images"]),
        "decoded": vqvae.decode(inputs["codes"]),
        "sample": unconditional.sample(4, temperature=1.0, seed=7),
        "sample_b": unconditional.sample(4, temperature=0.5, seed=123),
        "conditional_sample": conditional.sample(4, temperature=1.0, seed=7, labels=LABELS),
        "transformer_sample": models["transformer"].sample(4, temperature=1.0, seed=7, labels=LABELS),
        "transformer_sample_b": models["transformer"].sample(4, temperature=0.5, seed=123, labels=LABELS),
        "transformer_guided": models["transformer"].sample(4, seed=7, labels=LABELS, guidance=3.0),
        "transformer_no_label": models["transformer"].sample(4, seed=7, labels=3),  # 3: "no label"
        "rvq_codes": models["rvq_vqvae"].encode(inputs["images"]),
        "rvq_decoded": models["rvq_vqvae"].decode(inputs["rvq_codes"]),
        "rvq_sample": models["rvq_vqvae"].from_token_grid(models["rvq_prior"].sample(4, seed=7)),
    }


@pytest.fixture(scope="module")
def exports(models, reference, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    priors = {"codec": None, "unconditional": models["unconditional"], "conditional": models["conditional"]}
    priors["transformer"] = models["transformer"]
    return {
        name: export_saved_model(folder / name, models["vqvae"], pixelcnn)
        for name, pixelcnn in priors.items()
    }


def start(command, cwd=None):
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.Popen(
        command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process):
    stdout, stderr = process.communicate(timeout=600)  # the loader runs every call of every export
    assert process.returncode == 0, stderr[-3000:]
    return stdout


@pytest.fixture(scope="module")
def rvq_export(models, tmp_path_factory):
    path = tmp_path_factory.mktemp("exports") / "rvq"
    return export_saved_model(path, models["rvq_vqvae"], models["rvq_prior"])


@pytest.fixture(scope="module")
def elsewhere(exports, rvq_export, inputs, tmp_path_factory):
    """Results of separate processes, run side by side: every signature called in a process that
    cannot import vqgen or prior, `saved_model_cli show --all` of two exports, and `saved_model_cli
    run` of decode."""
    folder = tmp_path_factory.mktemp("subprocess")
    jobs = [
        {
            "path": str({**exports, "rvq": rvq_export}[name]),
            "inputs": inputs["path"],
            "calls": calls,
            "out": str(folder / f"{name}.npz"),
        }
        for name, calls in CALLS.items()
    ]
    np.save(folder / "codes.npy", inputs["codes"])
    processes = {
        "loader": start([sys.executable, "-c", LOAD_WITHOUT_TOOLKIT, json.dumps(jobs)], cwd=folder),
        "show": start(["saved_model_cli", "show", "--dir", str(exports["conditional"]), "--all"]),
        "show_transformer": start(["saved_model_cli", "show", "--dir", str(exports["transformer"]), "--all"]),
        "run": start(
            [
                "saved_model_cli",
                "run",
                "--dir",
                str(exports["codec"]),
                "--tag_set",
                "serve",
                "--signature_def",
                "decode",
                "--inputs",
                f"codes={folder / 'codes.npy'}",
                "--outdir",
                str(folder / "cli"),
            ]
        ),
    }
    outputs = {name: finish(process) for name, process in processes.items()}
    return {
        "outputs": {name: dict(np.load(job["out"])) for name, job in zip(CALLS, jobs)},
        "show": {"conditional": outputs["show"], "transformer": outputs["show_transformer"]},
        "run_images": np.load(folder / "cli" / "images.npy"),
    }


@pytest.fixture(scope="module")
def loaded_elsewhere(elsewhere):
    return elsewhere["outputs"]


@pytest.mark.slow
def test_the_loading_process_has_no_toolkit(loaded_elsewhere):
    for outputs in loaded_elsewhere.values():
        isolation = json.loads(str(outputs["isolation"]))
        assert isolation == {"blocked": ["vqgen", "prior"], "loaded": []}


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["tf2", "tf1"])
@pytest.mark.parametrize("export", ["codec", "unconditional"])
def test_codec_signatures_match_the_in_process_vqvae(loaded_elsewhere, reference, inputs, loader, export):
    outputs = loaded_elsewhere[export]
    np.testing.assert_array_equal(outputs[f"{loader}/encode/codes"], reference["codes"])
    np.testing.assert_allclose(outputs[f"{loader}/decode/images"], reference["decoded"], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(outputs[f"{loader}/reconstruct/codes"], reference["codes"])
    assert len(np.unique(reference["codes"])) > 3  # the comparison is not of constant grids
    assert outputs[f"{loader}/decode/images"].dtype == np.float32
    assert outputs[f"{loader}/encode/codes"].dtype == np.int32


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["tf2", "tf1"])
def test_reconstruct_is_decode_of_encode(loaded_elsewhere, models, reference, loader):
    outputs = loaded_elsewhere["codec"]
    expected = models["vqvae"].decode(reference["codes"])
    np.testing.assert_allclose(outputs[f"{loader}/reconstruct/images"], expected, atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["tf2", "tf1"])
def test_sample_draws_the_in_process_codes_for_a_seed(loaded_elsewhere, models, reference, loader):
    unconditional = loaded_elsewhere["unconditional"]
    np.testing.assert_array_equal(unconditional[f"{loader}/sample/codes"], reference["sample"])
    np.testing.assert_array_equal(unconditional[f"{loader}/sample_b/codes"], reference["sample_b"])
    assert not np.array_equal(reference["sample"], reference["sample_b"])  # seeds matter
    np.testing.assert_allclose(
        unconditional[f"{loader}/sample/images"],
        models["vqvae"].decode(reference["sample"]),
        atol=1e-5,
        rtol=0,
    )
    conditional = loaded_elsewhere["conditional"]
    np.testing.assert_array_equal(conditional[f"{loader}/sample/codes"], reference["conditional_sample"])
    np.testing.assert_allclose(
        conditional[f"{loader}/sample/images"],
        models["vqvae"].decode(reference["conditional_sample"]),
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["tf2", "tf1"])
def test_residual_vq_signatures_carry_the_depth_axis(loaded_elsewhere, models, reference, loader):
    outputs = loaded_elsewhere["rvq"]
    codes = reference["rvq_codes"]
    assert codes.shape == (5, 2, 2, 2) and len(np.unique(codes[..., 1])) > 3
    np.testing.assert_array_equal(outputs[f"{loader}/encode/codes"], codes)
    decoded = outputs[f"{loader}/decode/images"]
    np.testing.assert_allclose(decoded, reference["rvq_decoded"], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(outputs[f"{loader}/sample/codes"], reference["rvq_sample"])
    expected = models["rvq_vqvae"].decode(reference["rvq_sample"])
    np.testing.assert_allclose(outputs[f"{loader}/sample/images"], expected, atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["tf2", "tf1"])
def test_transformer_sample_draws_the_in_process_codes(loaded_elsewhere, models, reference, inputs, loader):
    outputs = loaded_elsewhere["transformer"]
    np.testing.assert_array_equal(outputs[f"{loader}/sample/codes"], reference["transformer_sample"])
    np.testing.assert_array_equal(outputs[f"{loader}/sample_b/codes"], reference["transformer_sample_b"])
    assert not np.array_equal(reference["transformer_sample"], reference["transformer_sample_b"])
    np.testing.assert_allclose(
        outputs[f"{loader}/sample/images"],
        models["vqvae"].decode(reference["transformer_sample"]),
        atol=1e-5,
        rtol=0,
    )
    # Guidance: 1 as sample, 3 as in-process, 0 as the "no label" class, and the noise-driven loop as NumPy's
    np.testing.assert_array_equal(outputs[f"{loader}/guided_one/codes"], reference["transformer_sample"])
    np.testing.assert_array_equal(outputs[f"{loader}/guided/codes"], reference["transformer_guided"])
    np.testing.assert_array_equal(outputs[f"{loader}/no_label/codes"], reference["transformer_no_label"])
    assert not np.array_equal(reference["transformer_guided"], reference["transformer_sample"])

    def logits(codes, labels):
        return models["transformer"]({"codes": codes, "labels": labels}).numpy()

    expected = sample_with_noise(logits, inputs["gumbel"], 1.0, LABELS, guidance=3.0, no_label=3)
    np.testing.assert_array_equal(outputs[f"{loader}/noise_guided/codes"], expected)
    expected = sample_with_noise(logits, inputs["gumbel"], 1.0, LABELS)
    np.testing.assert_array_equal(outputs[f"{loader}/noise/codes"], expected)
    config = json.loads(str(outputs["config"]))
    assert config["prior_class"] == "Transformer"
    assert config["prior"] == json.loads(json.dumps(models["transformer"].get_config()))


@pytest.mark.slow
def test_serving_default_is_sample_with_a_prior_else_reconstruct(loaded_elsewhere):
    aliases = {"codec": "reconstruct", "unconditional": "sample", "conditional": "sample"}
    for export, alias_of in aliases.items():
        outputs = loaded_elsewhere[export]
        for output in ("images", "codes"):
            np.testing.assert_array_equal(
                outputs[f"tf2/serving_default/{output}"], outputs[f"tf2/{alias_of}/{output}"]
            )
    codec_signatures = set(loaded_elsewhere["codec"]["signatures"])
    assert codec_signatures == {"encode", "decode", "reconstruct", "serving_default"}
    assert "sample" in set(loaded_elsewhere["unconditional"]["signatures"])


@pytest.mark.slow
def test_the_guided_signatures_are_those_of_a_prior_trained_with_label_dropout(loaded_elsewhere):
    codec = {"encode", "decode", "reconstruct", "serving_default"}
    raster = codec | {"sample", "prior_logits", "sample_from_noise"}
    guided = raster | {"sample_guided", "sample_from_noise_guided"}
    for export, expected in {"unconditional": raster, "conditional": raster, "transformer": guided}.items():
        assert set(loaded_elsewhere[export]["signatures"]) == expected, export


def signature_defs(path):
    """The SignatureDefs of the SavedModel at `path`, read from its saved_model.pb."""
    with open(os.path.join(path, "saved_model.pb"), "rb") as stream:
        return saved_model_pb2.SavedModel.FromString(stream.read()).meta_graphs[0].signature_def


@pytest.mark.slow
def test_no_signature_has_a_default_that_a_server_would_have_to_fill_in(exports, rvq_export):
    for path in [*exports.values(), rvq_export]:
        for name, definition in signature_defs(path).items():
            assert not definition.defaults, (path, name)


@pytest.mark.slow
def test_config_asset_holds_version_and_model_configs(loaded_elsewhere, models):
    config = json.loads(str(loaded_elsewhere["conditional"]["config"]))
    assert config["vqgen_version"] == vqgen.__version__
    assert config["vqvae"] == json.loads(json.dumps(models["vqvae"].get_config()))
    assert config["prior"] == json.loads(json.dumps(models["conditional"].get_config()))
    assert json.loads(str(loaded_elsewhere["codec"]["config"]))["prior"] is None
    rebuilt = vqgen.VQVAE.from_config(config["vqvae"])
    assert rebuilt.image_shape == (8, 8, 1) and rebuilt.grid_shape == (2, 2)
    rebuilt_prior = prior.PixelCNN.from_config(config["prior"])
    assert rebuilt_prior.num_classes == 3 and rebuilt_prior.grid_shape == (2, 2)


def signature_blocks(show_output):
    """`{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}}` from `show --all`."""
    blocks = {}
    for name, body in re.findall(r"signature_def\['(\w+)'\]:(.*?)(?=signature_def\[|\Z)", show_output, re.S):
        blocks[name] = {
            side: {
                tensor: (dtype, shape)
                for tensor, dtype, shape in re.findall(
                    rf"{side}\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))", body
                )
            }
            for side in ("inputs", "outputs")
        }
    return blocks


@pytest.mark.slow
def test_saved_model_cli_show_lists_every_signature(elsewhere):
    blocks = signature_blocks(elsewhere["show"]["conditional"])
    images = ("DT_FLOAT", "(-1, 8, 8, 1)")
    codes = ("DT_INT32", "(-1, 2, 2)")
    sample_inputs = {
        "num_samples": ("DT_INT32", "()"),
        "temperature": ("DT_FLOAT", "()"),
        "seed": ("DT_INT64", "()"),
        "labels": ("DT_INT32", "(-1)"),
    }
    assert blocks["encode"] == {"inputs": {"images": images}, "outputs": {"codes": codes}}
    assert blocks["decode"] == {"inputs": {"codes": codes}, "outputs": {"images": images}}
    both = {"images": images, "codes": codes}
    assert blocks["reconstruct"] == {"inputs": {"images": images}, "outputs": both}
    for name in ("sample", "serving_default"):
        assert blocks[name] == {"inputs": sample_inputs, "outputs": both}


def listed_as_in_the_config(blocks):
    """`signature_blocks` written as the config asset lists signatures: numpy dtype names, shape lists."""

    def describe(dtype, shape):
        sizes = [int(size) for size in shape.strip("()").split(",") if size.strip()]
        name = tf.as_dtype(types_pb2.DataType.Value(dtype)).name  # DT_FLOAT -> float32
        return {"dtype": name, "shape": [None if size == -1 else size for size in sizes]}

    return {
        name: {
            side: {tensor: describe(*info) for tensor, info in tensors.items()}
            for side, tensors in block.items()
        }
        for name, block in blocks.items()
        if name != "__saved_model_init_op"
    }


@pytest.mark.slow
@pytest.mark.parametrize("export", ["conditional", "transformer"])
def test_the_config_asset_lists_every_signature_as_saved_model_cli_shows_it(elsewhere, export):
    config = json.loads(str(elsewhere["outputs"][export]["config"]))
    shown = listed_as_in_the_config(signature_blocks(elsewhere["show"][export]))
    assert set(shown) == set(config["signatures"]) and "sample" in shown
    assert config["signatures"] == shown


@pytest.mark.slow
def test_saved_model_cli_run_decodes_like_the_in_process_vqvae(elsewhere, reference):
    np.testing.assert_allclose(elsewhere["run_images"], reference["decoded"], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def loaded(exports):
    """The exports the bad-input tests call, loaded in this process."""
    return {
        name: tf.saved_model.load(str(exports[name]))
        for name in ("unconditional", "conditional", "transformer")
    }


def scalars(num_samples=4, temperature=1.0, seed=7):
    return dict(
        num_samples=tf.constant(num_samples, tf.int32),
        temperature=tf.constant(temperature, tf.float32),
        seed=tf.constant(seed, tf.int64),
    )


IMAGES_SHAPE = re.escape("images must have shape [batch, 8, 8, 1]")
PIXELS = re.escape("images must be float32 pixels in [0, 1]")
CODES_RANGE = re.escape("codes must be in [0, 16)")


@pytest.mark.parametrize(
    "export, signature, arguments, message",
    [
        ("unconditional", "encode", dict(images=tf.zeros([2, 9, 8, 1])), IMAGES_SHAPE),
        ("unconditional", "encode", dict(images=tf.zeros([2, 8, 8, 3])), IMAGES_SHAPE),
        ("unconditional", "encode", dict(images=tf.zeros([2, 8, 8])), IMAGES_SHAPE),
        ("unconditional", "reconstruct", dict(images=tf.zeros([1, 8, 8, 1, 1])), IMAGES_SHAPE),
        ("unconditional", "encode", dict(images=tf.zeros([1, 8, 8, 1, 2])), IMAGES_SHAPE),
        ("unconditional", "encode", dict(images=tf.fill([1, 8, 8, 1], 255.0)), PIXELS),
        ("unconditional", "encode", dict(images=tf.fill([1, 8, 8, 1], float("nan"))), PIXELS),
        ("unconditional", "decode", dict(codes=tf.fill([1, 2, 2], 16)), CODES_RANGE),
        ("unconditional", "decode", dict(codes=tf.fill([1, 2, 2], -1)), CODES_RANGE),
        (
            "unconditional",
            "decode",
            dict(codes=tf.zeros([1, 2, 3], tf.int32)),
            re.escape("codes must have shape [batch, 2, 2]"),
        ),
        (
            "unconditional",
            "decode",
            dict(codes=tf.zeros([1, 2, 2, 1], tf.int32)),
            re.escape("codes must have shape [batch, 2, 2]"),
        ),
        ("unconditional", "sample", scalars(num_samples=0), "num_samples must be >= 1"),
        ("unconditional", "sample", scalars(temperature=0.0), "temperature must be > 0"),
        ("unconditional", "sample", scalars(temperature=-1.0), "temperature must be > 0"),
        ("unconditional", "sample", scalars(temperature=float("inf")), "temperature must be a finite number"),
        (
            "conditional",
            "sample",
            dict(**scalars(), labels=tf.constant([0, 1, 2])),
            "labels must hold one label per sample",
        ),
        (
            "conditional",
            "sample",
            dict(**scalars(), labels=tf.constant([0, 1, 2, 3])),
            "labels must be < num_classes",
        ),
        (
            "conditional",
            "sample",
            dict(**scalars(), labels=tf.constant([0, -1, 2, 1])),
            "labels must be >= 0",
        ),
        (
            "conditional",
            "sample",
            dict(**scalars(), labels=tf.zeros([4, 1], tf.int32)),
            re.escape("labels must have shape [num_samples]"),
        ),
        *[
            (
                "transformer",
                "sample_guided",
                dict(**scalars(), labels=tf.constant(LABELS), guidance=tf.constant(guidance)),
                re.escape("guidance must be a finite number >= 0"),
            )
            for guidance in (-1.0, float("inf"))
        ],
        (
            "transformer",
            "sample_from_noise_guided",
            dict(
                gumbel=tf.zeros([4, 2, 2, 16]),
                temperature=tf.constant(1.0),
                labels=tf.constant(LABELS),
                guidance=tf.constant(-0.5),
            ),
            re.escape("guidance must be a finite number >= 0"),
        ),
    ],
)
def test_bad_inputs_fail_at_the_signature_with_the_expected_shape_or_range(
    loaded, export, signature, arguments, message
):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded[export].signatures[signature](**arguments)


def test_bad_arguments_to_export_are_refused(models, tmp_path):
    with pytest.raises(ValueError, match="vqvae must be a vqgen.VQVAE"):
        export_saved_model(tmp_path / "a", models["unconditional"])
    with pytest.raises(ValueError, match="prior must be a prior.PixelCNN"):
        export_saved_model(tmp_path / "a", models["vqvae"], models["vqvae"])
    other_grid = prior.PixelCNN(num_embeddings=16, grid_shape=(3, 3), num_layers=1, filters=4)
    with pytest.raises(ValueError, match="export the prior trained on this VQ-VAE's codes"):
        export_saved_model(tmp_path / "a", models["vqvae"], other_grid)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        export_saved_model(tmp_path / "file", models["vqvae"])
    assert sorted(os.listdir(tmp_path)) == ["file"]


def folder_contents(path):
    return {
        os.path.relpath(os.path.join(root, name), path): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(path)
        for name in names
    }


def test_existing_export_is_kept_unless_overwrite(models, tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "keep.txt").write_text("previous export")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_saved_model(target, models["vqvae"])
    assert folder_contents(target) == {"keep.txt": b"previous export"}
    export_saved_model(target, models["vqvae"], overwrite=True)
    assert "keep.txt" not in os.listdir(target) and "saved_model.pb" in os.listdir(target)
    assert sorted(os.listdir(tmp_path)) == ["export"]  # no temporary folders left behind


def test_failed_export_leaves_nothing_half_written(models, tmp_path, monkeypatch):
    def save_then_fail(module, path, signatures=None):
        os.makedirs(os.path.join(path, "variables"))
        with open(os.path.join(path, "saved_model.pb"), "wb") as stream:
            stream.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", save_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(tmp_path / "new", models["vqvae"])
    assert os.listdir(tmp_path) == []
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "keep.txt").write_text("previous export")
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(previous, models["vqvae"], overwrite=True)
    assert os.listdir(tmp_path) == ["previous"]
    assert folder_contents(previous) == {"keep.txt": b"previous export"}


@pytest.mark.parametrize(
    "prior_class, sizes",
    [
        (prior.PixelCNN, dict(num_layers=1, filters=8)),
        (prior.Transformer, dict(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16)),
    ],
    ids=["PixelCNN", "Transformer"],
)
def test_never_called_models_export_and_sample_as_in_process(prior_class, sizes, tmp_path):
    # Fresh from their constructors, as in a smoke test of a serving setup: nothing called or trained.
    vqvae = vqgen.VQVAE(
        input_shape=(8, 8, 1),
        num_embeddings=16,
        embedding_dim=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
    )
    pixelcnn = prior_class(num_embeddings=16, grid_shape=(2, 2), num_classes=3, **sizes)
    path = export_saved_model(tmp_path / "untrained", vqvae, pixelcnn)
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["sample"](**scalars(num_samples=4, seed=11), labels=tf.constant(LABELS))
    expected = pixelcnn.sample(4, temperature=1.0, seed=11, labels=LABELS)
    np.testing.assert_array_equal(served["codes"].numpy(), np.asarray(expected))
    np.testing.assert_allclose(served["images"].numpy(), vqvae.decode(expected), atol=1e-5, rtol=0)


@pytest.mark.parametrize("num_classes, label_dropout", [(None, 0.0), (3, 0.0), (3, 0.2)])
def test_maskgit_samples_in_the_default_steps_or_those_asked_for_as_in_process(
    tmp_path, num_classes, label_dropout
):
    vqvae = vqgen.VQVAE(
        input_shape=(12, 12, 1),
        num_embeddings=16,
        embedding_dim=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
    )
    sizes = dict(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16)
    maskgit = prior.MaskGIT(16, (3, 3), num_classes=num_classes, label_dropout=label_dropout, **sizes)
    path = export_saved_model(tmp_path / "maskgit", vqvae, maskgit)
    signatures = tf.saved_model.load(str(path)).signatures
    samplers = {"sample", "sample_with_steps", "prior_logits", "sample_from_noise"}
    if label_dropout:
        samplers |= {"sample_guided", "sample_guided_with_steps", "sample_from_noise_guided"}
    assert set(signatures) == samplers | {"encode", "decode", "reconstruct", "serving_default"}
    inputs, options = scalars(num_samples=4, seed=11), {}
    if num_classes:
        inputs["labels"], options["labels"] = tf.constant(LABELS), LABELS
    in_process = {steps: maskgit.sample(4, seed=11, steps=steps, **options) for steps in (1, 3, 8)}
    assert not np.array_equal(in_process[1], in_process[8])  # the steps change the grids
    # sample: the first release's inputs only, the default steps (8 = min(MASKGIT_STEPS, 3 * 3))
    np.testing.assert_array_equal(signatures["sample"](**inputs)["codes"].numpy(), in_process[8])
    np.testing.assert_array_equal(maskgit.sample(4, seed=11, **options), in_process[8])
    for steps, expected in in_process.items():
        served = signatures["sample_with_steps"](**inputs, steps=tf.constant(steps))
        np.testing.assert_array_equal(served["codes"].numpy(), expected)
    message = re.escape("steps must be an int in [1, 9] (rows * cols)")
    for steps in (0, 10):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signatures["sample_with_steps"](**inputs, steps=tf.constant(steps))
    if label_dropout:
        guidance = tf.constant(2.0)
        for steps in (3, 8):
            expected = maskgit.sample(4, seed=11, steps=steps, guidance=2.0, **options)
            served = signatures["sample_guided_with_steps"](
                **inputs, guidance=guidance, steps=tf.constant(steps)
            )
            np.testing.assert_array_equal(served["codes"].numpy(), expected)
        expected = maskgit.sample(4, seed=11, guidance=2.0, **options)
        np.testing.assert_array_equal(
            signatures["sample_guided"](**inputs, guidance=guidance)["codes"], expected
        )
    # The default steps are in the config asset; no SignatureDef holds a default
    with open(os.path.join(path, "assets", "vqgen_config.json"), encoding="utf-8") as stream:
        config = json.load(stream)
    assert config["sample_steps"] == 8
    assert set(config["signatures"]) == set(signatures)
    assert config["signatures"]["sample_with_steps"]["inputs"]["steps"] == {"dtype": "int32", "shape": []}
    assert not any(definition.defaults for definition in signature_defs(path).values())


def test_sample_refuses_more_than_max_samples_before_allocating(models, tmp_path):
    path = export_saved_model(tmp_path / "limited", models["vqvae"], models["unconditional"], max_samples=3)
    sample = tf.saved_model.load(str(path)).signatures["sample"]
    assert sample(**scalars(num_samples=3))["codes"].shape == (3, 2, 2)
    limit = re.escape("num_samples must be <= 3, the limit this model was exported with")
    with pytest.raises(tf.errors.InvalidArgumentError, match=limit):
        sample(**scalars(num_samples=4))
    with pytest.raises(tf.errors.InvalidArgumentError, match=limit):  # refused, not ResourceExhausted
        sample(**scalars(num_samples=2_000_000_000))


def test_the_default_limit_comes_from_the_settings(loaded):
    limit = EXPORT_DEFAULTS.max_samples
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"num_samples must be <= {limit}"):
        loaded["unconditional"].signatures["sample"](**scalars(num_samples=limit + 1))


@pytest.mark.parametrize("max_samples", [0, -1, 2.5, True, None])
def test_bad_max_samples_is_refused(models, tmp_path, max_samples):
    with pytest.raises(ValueError, match="max_samples must be an int >= 1"):
        export_saved_model(tmp_path / "a", models["vqvae"], max_samples=max_samples)
    assert os.listdir(tmp_path) == []
