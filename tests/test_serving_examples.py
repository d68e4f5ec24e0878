"""The docs' serving commands (tests/serving_examples.py), run verbatim against the SavedModels that
`vqgen run` writes: a class-conditional run with label dropout (the default) and an unconditional run.

What the commands and the REST bodies return is compared with the in-process models of the run:
`sample` with the first release's inputs draws the codes of `prior.sample(..., guidance=1)`.
"""

import json
import os
import subprocess

import numpy as np
import pytest
import serving_examples
import tensorflow as tf

from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder

LABELS = [0, 1, 2, 3]  # the labels the examples send
SERVING_PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "serving.md")


def test_the_serving_page_shows_every_example_verbatim():
    with open(SERVING_PAGE, encoding="utf-8") as stream:
        page = stream.read()
    examples = [
        *serving_examples.CONDITIONAL_COMMANDS,
        *serving_examples.UNCONDITIONAL_COMMANDS,
        *serving_examples.CONDITIONAL_REST_BODIES,
        *serving_examples.UNCONDITIONAL_REST_BODIES,
    ]
    for example in examples:
        assert example in page, f"docs/serving.md does not show: {example}"


@pytest.fixture(scope="module")
def unconditional_run(tmp_path_factory, tiny_digits, tiny_train_args, tiny_prior_args, run_command):
    """A tiny `vqgen run --unconditional` by the console command: its run folder."""
    folder = tmp_path_factory.mktemp("unconditional")
    run = str(folder / "run")
    args = ["run", "--run", run, "--data", tiny_digits, *tiny_train_args, *tiny_prior_args, "--unconditional"]
    result = run_command(args, folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def serving_folder(tmp_path_factory, console_run, unconditional_run):
    """The folder the examples run from: `runs/digits` (the conditional run of `vqgen run`, with its
    label dropout) and `runs/digits-unconditional`, linked to the tiny runs."""
    result, conditional_run = console_run
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path_factory.mktemp("serving")
    (folder / "runs").mkdir()
    os.symlink(conditional_run, folder / serving_examples.CONDITIONAL_RUN)
    os.symlink(unconditional_run, folder / serving_examples.UNCONDITIONAL_RUN)
    return folder


def run_models(folder, run):
    """The run's VQ-VAE and prior, loaded in this process."""
    run_folder = RunFolder(str(folder / run))
    return load_stage_model(run_folder, "vqvae"), load_stage_model(run_folder, "prior")


def run_verbatim(commands, folder):
    """Runs each command with bash in `folder`, in order; returns their standard outputs."""
    outputs = []
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", command], cwd=folder, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
        outputs.append(result.stdout)
    return outputs


@pytest.mark.slow
def test_the_conditional_commands_serve_the_in_process_samples(serving_folder):
    vqvae, prior = run_models(serving_folder, serving_examples.CONDITIONAL_RUN)
    # The premise: `vqgen run` made a class-conditional PixelCNN with label dropout
    assert type(prior).__name__ == "PixelCNN" and prior.conditional and prior.supports_guidance
    show, *_ = run_verbatim(serving_examples.CONDITIONAL_COMMANDS, serving_folder)
    assert "signature_def['sample']" in show and "signature_def['sample_guided']" in show
    out = serving_folder / "out"
    codes = np.load(out / "sample" / "codes.npy")
    expected = prior.sample(4, temperature=1.0, labels=LABELS, seed=7, guidance=1.0)
    assert codes.shape == (4, *prior.grid_shape) and codes.dtype == np.int32
    np.testing.assert_array_equal(codes, expected)
    decoded = vqvae.decode(expected)
    np.testing.assert_allclose(np.load(out / "sample" / "images.npy"), decoded, atol=1e-5, rtol=0)
    guided = prior.sample(4, temperature=1.0, labels=LABELS, seed=7, guidance=3.0)
    np.testing.assert_array_equal(np.load(out / "guided" / "codes.npy"), guided)
    np.testing.assert_allclose(np.load(out / "decoded" / "images.npy"), decoded, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_the_unconditional_commands_serve_the_in_process_samples(serving_folder):
    vqvae, prior = run_models(serving_folder, serving_examples.UNCONDITIONAL_RUN)
    assert not prior.conditional
    run_verbatim(serving_examples.UNCONDITIONAL_COMMANDS, serving_folder)
    out = serving_folder / "out" / "unconditional"
    expected = prior.sample(4, temperature=1.0, seed=7)
    np.testing.assert_array_equal(np.load(out / "codes.npy"), expected)
    np.testing.assert_allclose(np.load(out / "images.npy"), vqvae.decode(expected), atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "run, bodies",
    [
        (serving_examples.CONDITIONAL_RUN, serving_examples.CONDITIONAL_REST_BODIES),
        (serving_examples.UNCONDITIONAL_RUN, serving_examples.UNCONDITIONAL_REST_BODIES),
    ],
    ids=["conditional", "unconditional"],
)
def test_the_rest_bodies_feed_their_signature_and_draw_the_in_process_codes(serving_folder, run, bodies):
    _, prior = run_models(serving_folder, run)
    loaded = tf.saved_model.load(str(serving_folder / run / "saved_model"))
    for text in bodies:
        body = json.loads(text)
        signature = loaded.signatures[body["signature_name"]]
        specs = signature.structured_input_signature[1]
        assert set(body["inputs"]) == set(specs), body["signature_name"]  # every input, no other
        outputs = signature(
            **{name: tf.constant(value, specs[name].dtype) for name, value in body["inputs"].items()}
        )
        inputs = body["inputs"]
        expected = prior.sample(
            inputs["num_samples"],
            temperature=inputs["temperature"],
            labels=inputs.get("labels"),
            seed=inputs["seed"],
            guidance=inputs.get("guidance", 1.0),
        )
        np.testing.assert_array_equal(outputs["codes"].numpy(), expected)


@pytest.mark.slow
def test_the_config_asset_of_the_run_export_lists_the_first_release_sample_contract(serving_folder):
    path = serving_folder / serving_examples.CONDITIONAL_RUN / "saved_model" / "assets" / "vqgen_config.json"
    with open(path, encoding="utf-8") as stream:
        signatures = json.load(stream)["signatures"]
    assert signatures["sample"]["inputs"] == {
        "num_samples": {"dtype": "int32", "shape": []},
        "temperature": {"dtype": "float32", "shape": []},
        "seed": {"dtype": "int64", "shape": []},
        "labels": {"dtype": "int32", "shape": [None]},
    }
    assert signatures["sample_guided"]["inputs"] == {
        **signatures["sample"]["inputs"],
        "guidance": {"dtype": "float32", "shape": []},
    }
