"""The vqgen command line end to end on a tiny run, and its one-line errors."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from vqgen.cli import main
from vqgen.runs.code_shards import CodeShards, file_hash
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.settings import GUIDANCE_BY_PRIOR


@pytest.mark.slow
def test_a_finished_run_has_every_output_and_sample_repeats_a_seed(tiny_run, tmp_path, run_cli):
    for name in (
        "config.json",
        "vqvae.keras",
        "metrics.csv",
        "reconstructions.png",
        "codes/manifest.json",
        "codes/train/00000.npy",
        "prior.keras",
        "prior_metrics.csv",
        "checkpoints/vqvae/epoch_001.weights.h5",
        "checkpoints/prior/epoch_001.weights.h5",
    ):
        assert os.path.isfile(os.path.join(tiny_run, name)), name
    for stage in ("vqvae", "prior"):  # both stages log through the same trainer
        assert sorted(os.listdir(os.path.join(tiny_run, "logs", stage))) == ["train", "validation"]
    assert not os.path.exists(os.path.join(tiny_run, "backup"))
    out = str(tmp_path / "samples.png")
    code, stdout, _ = run_cli(
        ["sample", "--run", tiny_run, "-n", "6", "--label", "3", "--seed", "4", "--out", out]
    )
    assert code == 0 and os.path.isfile(out)
    codes = np.load(out[:-4] + ".npy")
    assert codes.shape == (6, 7, 7) and codes.dtype == np.int32 and codes.min() >= 0 and codes.max() < 16
    again = str(tmp_path / "again.png")
    run_cli(["sample", "--run", tiny_run, "-n", "6", "--label", "3", "--seed", "4", "--out", again])
    np.testing.assert_array_equal(np.load(again[:-4] + ".npy"), codes)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--run", "{run}", "--epochs", "1"], "already exists"),
        (["train-prior", "--run", "{run}"], "already exists"),
        (["sample", "--run", "{run}", "--label", "10", "--out", "{tmp}/x.png"], "label"),
        (
            ["sample", "--run", "{run}", "--label", "1", "--out", "{run}/reconstructions.png"],
            "already exists",
        ),
        (
            ["sample", "--run", "{run}", "--temperature", "0", "--label", "1", "--out", "{tmp}/x.png"],
            "temperature",
        ),
        (["sample", "--run", "{run}", "--top-k", "17", "--label", "1", "--out", "{tmp}/x.png"], "top_k"),
        (["sample", "--run", "{tmp}/missing", "--out", "{tmp}/x.png"], "does not exist"),
        (["train", "--run", "{tmp}/new", "--data", "{tmp}/nothing.npz"], "nothing.npz"),
        (["train", "--run", "{tmp}/new", "--data", "no-such-dataset"], "no-such-dataset"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_leave_files_alone(
    tiny_run, tmp_path, run_cli, hashes, args, message
):
    before = hashes(tiny_run)
    args = [a.format(run=tiny_run, tmp=tmp_path) for a in args]
    code, _, stderr = run_cli(args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqgen: error:") and message in lines[0], stderr
    assert hashes(tiny_run) == before
    assert not os.path.exists(tmp_path / "new" / "vqvae.keras")


@pytest.mark.slow
def test_train_prior_and_sample_need_the_earlier_stage(tmp_path, tiny_digits, tiny_train_args, run_cli):
    run = str(tmp_path / "half")
    code, _, _ = run_cli(["train", "--run", run, "--data", tiny_digits, *tiny_train_args])
    assert code == 0
    code, _, stderr = run_cli(["sample", "--run", run, "--out", str(tmp_path / "s.png")])
    assert code == 2 and "vqgen train-prior" in stderr


@pytest.mark.slow
def test_sample_without_label_runs_on_tensorflow_under_keras_backend_jax_one_row_per_class(
    tiny_run, tmp_path
):
    # The installed command in a child process whose environment asks Keras for jax (not installed)
    out = str(tmp_path / "s.png")
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    command = [sys.executable, "-c", "import sys, vqgen_command; sys.exit(vqgen_command.main())"]
    args = ["sample", "--run", tiny_run, "-n", "20", "--seed", "3", "--out", out]
    result = subprocess.run([*command, *args], env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # Two of each of the 10 classes, in class order: the grids the prior samples for those labels
    prior = load_stage_model(RunFolder(tiny_run), "prior")
    assert prior.num_classes == 10
    expected = prior.sample(20, labels=np.repeat(np.arange(10), 2), seed=3)
    np.testing.assert_array_equal(np.load(out[:-4] + ".npy"), expected)
    picture = tf.io.decode_png(tf.io.read_file(out)).numpy()
    assert picture.shape == (10 * (28 + 2) + 2, 2 * (28 + 2) + 2, 1)  # a row per class, 2 columns


COMMAND_OPTIONS = {
    "train": [
        "--run",
        "--data",
        "--seed",
        "--epochs",
        "--num-embeddings",
        "--no-ema",
        "--quantizer",
        "--levels",
        "--num-quantizers",
        "--overwrite",
        "--strategy",
        "--deterministic",
    ],
    "train-prior": [
        "--run",
        "--conditional",
        "--num-layers",
        "--filters",
        "--kernel-size",
        "--prior-epochs",
        "--prior-learning-rate",
        "--strategy",
        "--overwrite",
    ],
    "sample": ["--run", "-n", "--temperature", "--top-k", "--label", "--seed", "--out"],
    "export": ["--run", "--out", "--overwrite"],
    "run": [
        "--run",
        "--quick",
        "--unconditional",
        "--data",
        "--num-embeddings",
        "--num-layers",
        "--prior-epochs",
        "--strategy",
    ],
}


def help_text(capsys, *args):
    """`vqgen ARGS --help` as printed, run in-process (the parser needs no TensorFlow)."""
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_help_lists_each_commands_own_options(capsys):
    top = help_text(capsys)
    for command in COMMAND_OPTIONS:
        assert command in top
    for command, options in COMMAND_OPTIONS.items():
        listed = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", help_text(capsys, command)))
        assert set(options) <= listed, (command, set(options) - listed)
        if command != "run":
            assert not {"--quick", "--unconditional"} & listed, command
        if command in ("sample", "export"):
            assert not {"--epochs", "--num-layers", "--data"} & listed, command
    train_help = help_text(capsys, "train")
    assert "--num-layers" not in train_help and "--label" not in train_help  # stage 2 options stay out
    assert "codebook size K (default: 256)" in " ".join(train_help.split())  # defaults from vqgen.settings


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def truncated_copy(source, destination):
    with open(source, "rb") as stream:
        content = stream.read()
    with open(destination, "wb") as stream:
        stream.write(content[: len(content) // 2])
    return str(destination)


def forge_codes_shard(run, change):
    """Rewrites the run's first train codes shard as `change(codes)` and records its new hash."""
    folder = os.path.join(run, "codes")
    shard = os.path.join(folder, "train", "00000.npy")
    np.save(shard, change(np.load(shard)))
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as stream:
        manifest = json.load(stream)
    manifest["parts"]["train"]["shards"][0]["codes_sha256"] = file_hash(shard)
    with open(os.path.join(folder, "manifest.json"), "w", encoding="utf-8") as stream:
        json.dump(manifest, stream)


@pytest.fixture(scope="module")
def unconditional_run(tiny_run, tmp_path_factory, tiny_prior_args):
    import shutil

    run = str(tmp_path_factory.mktemp("runs") / "unconditional")
    shutil.copytree(tiny_run, run)
    assert main(["train-prior", "--run", run, "--overwrite", *tiny_prior_args]) == 0
    return run


def bad_input_cases(tmp_path, tiny_run, unconditional_run, tiny_train_args, tiny_prior_args):
    """(name, argv, expected words in the message, run folder whose files must stay unchanged)."""
    import shutil

    corrupt_run = str(tmp_path / "corrupt")
    shutil.copytree(tiny_run, corrupt_run)
    truncated_copy(os.path.join(tiny_run, "vqvae.keras"), os.path.join(corrupt_run, "vqvae.keras"))
    bad_codes_run = str(tmp_path / "bad_codes")
    shutil.copytree(tiny_run, bad_codes_run)
    forge_codes_shard(bad_codes_run, lambda codes: codes + 16)  # consistent hashes, codes out of range
    good = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype("float32")
    nan_images = good.copy()
    nan_images[0, 0, 0, 0] = np.nan
    os.makedirs(tmp_path / "empty_folder")
    new_run = ["--run", str(tmp_path / "new"), *tiny_train_args]
    return [
        (
            "corrupt .keras",
            ["sample", "--run", corrupt_run, "--label", "1", "--out", str(tmp_path / "x.png")],
            "not a readable Keras model",
            corrupt_run,
        ),
        ("missing run", ["train-prior", "--run", str(tmp_path / "nowhere")], "does not exist", tiny_run),
        (
            "truncated npz",
            [
                "train",
                "--data",
                truncated_copy(write_npz(tmp_path / "ok.npz", images=good), tmp_path / "cut.npz"),
                *new_run,
            ],
            "cut.npz",
            tiny_run,
        ),
        (
            "wrong size",
            ["train", "--data", write_npz(tmp_path / "size.npz", images=good[:, :26, :26]), *new_run],
            "not divisible",
            tiny_run,
        ),
        (
            "wrong channels",
            [
                "train",
                "--data",
                write_npz(tmp_path / "channels.npz", images=np.repeat(good, 2, -1)),
                *new_run,
            ],
            "channels",
            tiny_run,
        ),
        (
            "NaN pixels",
            ["train", "--data", write_npz(tmp_path / "nan.npz", images=nan_images), *new_run],
            "NaN",
            tiny_run,
        ),
        (
            "empty folder",
            ["train", "--data", str(tmp_path / "empty_folder"), *new_run],
            "empty_folder",
            tiny_run,
        ),
        (
            "unknown dataset",
            ["train", "--data", "tfds:no_such_dataset_anywhere", *new_run],
            "no_such_dataset_anywhere",
            tiny_run,
        ),
        (
            "label for unconditional prior",
            ["sample", "--run", unconditional_run, "--label", "2", "--out", str(tmp_path / "x.png")],
            "unconditional",
            unconditional_run,
        ),
        (
            "out-of-range codes",
            ["train-prior", "--run", bad_codes_run, "--overwrite", *tiny_prior_args],
            "16",
            bad_codes_run,
        ),
    ]


@pytest.mark.slow
def test_bad_input_sweep(
    tiny_run, unconditional_run, tmp_path, tiny_train_args, tiny_prior_args, run_cli, hashes
):
    cases = bad_input_cases(tmp_path, tiny_run, unconditional_run, tiny_train_args, tiny_prior_args)
    for name, args, expected, run in cases:
        before = hashes(run)
        code, _, stderr = run_cli(args)
        lines = stderr.strip().splitlines()
        assert code == 2, name
        assert len(lines) == 1 and lines[0].startswith("vqgen: error:"), (name, stderr)
        assert expected in lines[0], (name, lines[0])
        assert "Traceback" not in stderr, name
        changed = {
            path for path in set(before) | set(hashes(run)) if before.get(path) != hashes(run).get(path)
        }
        assert not changed, (name, changed)
        assert not os.path.exists(tmp_path / "new" / "vqvae.keras"), name


@pytest.mark.slow
def test_export_writes_a_saved_model_and_names_a_missing_stage(tiny_run, tmp_path, run_cli, hashes):
    out = str(tmp_path / "exported")
    code, stdout, _ = run_cli(["export", "--run", tiny_run, "--out", out])
    assert code == 0 and os.path.isfile(os.path.join(out, "saved_model.pb"))
    before = hashes(out)
    code, _, stderr = run_cli(["export", "--run", tiny_run, "--out", out])
    assert code == 2 and "already exists" in stderr and hashes(out) == before
    stage_less = tmp_path / "stage_less"
    stage_less.mkdir()
    (stage_less / "config.json").write_text(
        '{"data": {}, "vqvae": {}, "vqvae_training": {}}'
    )  # stage 1 unfinished
    code, _, stderr = run_cli(["export", "--run", str(stage_less), "--out", str(tmp_path / "x")])
    assert code == 2 and "vqgen train" in stderr and len(stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "x")


def test_export_max_samples_sets_the_limit_of_the_served_sample(tiny_run, tmp_path, run_cli):
    import tensorflow as tf

    out = str(tmp_path / "limited")
    assert run_cli(["export", "--run", tiny_run, "--out", out, "--max-samples", "2"])[0] == 0
    sample = tf.saved_model.load(out).signatures["sample"]
    scalars = dict(temperature=tf.constant(1.0), seed=tf.constant(0, tf.int64))
    assert sample(num_samples=tf.constant(2), labels=tf.constant([0, 1]), **scalars)["codes"].shape[0] == 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be <= 2"):
        sample(num_samples=tf.constant(3), labels=tf.constant([0, 1, 2]), **scalars)
    # tiny_run's prior has label dropout (the workflow default): the guided signature has the limit too
    guided = tf.saved_model.load(out).signatures["sample_guided"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be <= 2"):
        guided(
            num_samples=tf.constant(3), labels=tf.constant([0, 1, 2]), guidance=tf.constant(2.0), **scalars
        )
    refused = str(tmp_path / "refused")
    args = ["export", "--run", tiny_run, "--out", refused, "--max-samples", "0"]
    code, _, stderr = run_cli(args)
    assert code == 2 and "--max-samples" in stderr and not os.path.exists(refused)


def test_foreign_folder_and_bad_fraction_are_refused_without_touching_files(
    tmp_path, tiny_digits, tiny_train_args, run_cli, hashes
):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"name": "not a run"}')
    (foreign / ".notes.tmp").write_text("mine")
    before = hashes(str(foreign))
    code, _, stderr = run_cli(["train", "--run", str(foreign), "--data", tiny_digits, *tiny_train_args])
    assert code == 2 and "not a vqgen run" in stderr and hashes(str(foreign)) == before
    fresh = tmp_path / "fresh"
    code, _, stderr = run_cli(
        ["train", "--run", str(fresh), "--data", tiny_digits, "--validation-fraction", "0", *tiny_train_args],
    )
    assert code == 2 and "validation-fraction" in stderr and not fresh.exists()


@pytest.mark.slow
def test_run_does_the_whole_job_and_a_rerun_skips_finished_stages(
    console_run, tmp_path, tiny_digits, tiny_train_args, tiny_prior_args, run_cli, hashes
):
    result, whole_run = console_run  # `vqgen run --run WHOLE_RUN --data TINY_DIGITS ...` (conftest)
    assert result.returncode == 0, result.stderr[-3000:]
    for line in ("stage 1:", "stage 2:", "(class-conditional)", "samples:", "export:"):
        assert line in result.stdout
    run = str(tmp_path / "whole")
    shutil.copytree(whole_run, run)  # changed below
    args = ["run", "--run", run, "--data", tiny_digits, *tiny_train_args, *tiny_prior_args]
    assert np.load(os.path.join(run, "samples.npy")).shape == (80, 7, 7)  # 8 per class, 10 classes
    assert os.path.isfile(os.path.join(run, "saved_model", "saved_model.pb"))
    checkpoints = hashes(os.path.join(run, "checkpoints", "vqvae"))
    assert len(checkpoints) == 1
    coded = CodeShards.open(os.path.join(run, "codes")).arrays("train")
    with open(os.path.join(run, "codes", "train", "00000.npy"), "wb") as stream:
        stream.write(b"damaged")
    code, stdout, _ = run_cli(["train-prior", "--run", run, "--overwrite", *tiny_prior_args])
    assert code == 0 and "train/00000 damaged or missing; coding their images again" in stdout
    rebuilt = CodeShards.open(os.path.join(run, "codes")).arrays("train")  # the same codes, coded again
    for name, first, second in zip(("codes", "labels"), coded, rebuilt):
        np.testing.assert_array_equal(second, first, err_msg=name)
    code, stdout, _ = run_cli(args)
    assert code == 0 and "stage 1:" in stdout
    assert hashes(os.path.join(run, "checkpoints", "vqvae")) == checkpoints  # stage 1 not retrained


@pytest.mark.slow
def test_fsq_run_codes_one_integer_per_position(tmp_path, tiny_digits, tiny_train_args, run_cli):
    # The prior stage is the same as for "vq": FSQ codes are single integers in [0, prod(levels)).
    run = str(tmp_path / "fsq")
    options = ["--quantizer", "fsq", "--levels", "5,5,5"]
    assert run_cli(["train", "--run", run, "--data", tiny_digits, *tiny_train_args, *options])[0] == 0
    with open(os.path.join(run, "config.json"), encoding="utf-8") as stream:
        config = json.load(stream)
    assert config["vqvae"]["quantizer"] == "fsq" and config["vqvae"]["levels"] == [5, 5, 5]
    assert config["vqvae_results"]["compression_ratio"] == pytest.approx(28 * 28 * 8 / (7 * 7 * np.log2(125)))


@pytest.mark.slow
def test_rvq_run_trains_a_prior_over_the_depth_and_samples(tiny_rvq_run, tmp_path, tiny_prior_args, run_cli):
    run = str(tmp_path / "rvq")
    shutil.copytree(tiny_rvq_run, run)  # `vqgen train --quantizer rvq --num-quantizers 2` (conftest)
    assert run_cli(["train-prior", "--run", run, "--overwrite", *tiny_prior_args])[0] == 0  # a PixelCNN
    assert CodeShards.open(os.path.join(run, "codes")).arrays("train")[0].shape[1:] == (7, 7, 2)
    out = str(tmp_path / "samples.png")
    assert run_cli(["sample", "--run", run, "-n", "3", "--seed", "1", "--out", out])[0] == 0
    codes = np.load(out[:-4] + ".npy")
    assert codes.shape == (3, 7, 7, 2) and codes.min() >= 0 and codes.max() < 16


def test_levels_must_be_comma_separated_integers(run_cli):
    code, _, stderr = run_cli(["train", "--run", "x", "--quantizer", "fsq", "--levels", "5,x"])
    assert code == 2 and "comma-separated integers" in stderr


@pytest.mark.slow
def test_transformer_prior_trains_samples_and_exports_like_the_pixelcnn(
    tiny_run, tmp_path, tiny_transformer_args, run_cli
):
    run = str(tmp_path / "transformer")
    shutil.copytree(tiny_run, run)  # stage 1 and a PixelCNN prior, replaced below
    code, _, stderr = run_cli(
        ["train-prior", "--run", run, "--overwrite", "--filters", "8", *tiny_transformer_args]
    )
    assert code == 2 and "--filters: PixelCNN options" in stderr
    code, _, stderr = run_cli(["train-prior", "--run", run, "--overwrite", "--transformer-num-layers", "1"])
    assert code == 2 and "need --prior transformer" in stderr
    args = ["train-prior", "--run", run, "--overwrite", "--conditional", *tiny_transformer_args]
    assert run_cli(args)[0] == 0
    with open(os.path.join(run, "config.json"), encoding="utf-8") as stream:
        recorded = json.load(stream)["prior"]
    assert recorded["kind"] == "transformer" and recorded["hidden_dim"] == 8 and recorded["conditional"]
    with zipfile.ZipFile(os.path.join(run, "prior.keras")) as archive:
        assert json.loads(archive.read("config.json"))["class_name"] == "Transformer"
    out = str(tmp_path / "samples.png")
    sample = ["sample", "--run", run, "-n", "5", "--label", "2", "--seed", "3", "--temperature", "0.8"]
    assert run_cli([*sample, "--out", out])[0] == 0
    codes = np.load(out[:-4] + ".npy")
    assert codes.shape == (5, 7, 7) and codes.min() >= 0 and codes.max() < 16
    again = str(tmp_path / "again.png")
    assert run_cli([*sample, "--out", again])[0] == 0
    np.testing.assert_array_equal(np.load(again[:-4] + ".npy"), codes)
    exported = str(tmp_path / "exported")
    assert run_cli(["export", "--run", run, "--out", exported])[0] == 0
    signatures = tf.saved_model.load(exported).signatures
    inputs = dict(
        num_samples=tf.constant(5),
        temperature=tf.constant(0.8),
        seed=tf.constant(3, tf.int64),
        labels=tf.constant([2] * 5),
    )
    # `vqgen sample` guides a prior trained with label dropout at the Transformer's measured scale
    measured = GUIDANCE_BY_PRIOR["transformer"]
    guided = signatures["sample_guided"](**inputs, guidance=tf.constant(measured))
    np.testing.assert_array_equal(guided["codes"].numpy(), codes)
    # `sample` takes the first release's inputs, though the prior has the default label dropout: unguided
    plain = load_stage_model(RunFolder(run), "prior").sample(5, temperature=0.8, labels=[2] * 5, seed=3)
    np.testing.assert_array_equal(signatures["sample"](**inputs)["codes"].numpy(), plain)


@pytest.mark.slow
def test_transformer_prior_samples_every_level_of_rvq_codes(tiny_rvq_run, tmp_path, run_cli):
    transformer = load_stage_model(RunFolder(tiny_rvq_run), "prior")
    assert type(transformer).__name__ == "Transformer"
    assert tuple(transformer.grid_shape) == (7, 7 * 2) and transformer.num_embeddings == 16
    out = str(tmp_path / "samples.png")
    args = ["sample", "--run", tiny_rvq_run, "-n", "4", "--label", "3", "--seed", "2", "--out", out]
    assert run_cli(args)[0] == 0
    codes = np.load(out[:-4] + ".npy")
    assert codes.shape == (4, 7, 7, 2) and codes.dtype == np.int32
    for level in range(2):
        assert 0 <= codes[..., level].min() and codes[..., level].max() < 16
    # Position by position, level 0 then level 1: the Transformer's [7, 14] token grids, in NumPy,
    # drawn at the Transformer's measured guidance scale (the prior was trained with label dropout)
    assert transformer.supports_guidance
    tokens = transformer.sample(4, labels=3, seed=2, guidance=GUIDANCE_BY_PRIOR["transformer"])
    np.testing.assert_array_equal(codes[..., 0], tokens[:, :, 0::2])
    np.testing.assert_array_equal(codes[..., 1], tokens[:, :, 1::2])


@pytest.mark.slow
def test_maskgit_prior_trains_samples_evaluates_and_exports(tiny_run, tmp_path, run_cli, hashes):
    run = str(tmp_path / "maskgit")
    shutil.copytree(tiny_run, run)  # stage 1 and a PixelCNN prior, replaced below
    code, _, stderr = run_cli(["train-prior", "--run", run, "--overwrite", "--maskgit-num-layers", "1"])
    assert code == 2 and "need --prior maskgit" in stderr
    tiny = ["--maskgit-num-layers", "1", "--maskgit-hidden-dim", "8", "--maskgit-num-heads", "2"]
    args = ["train-prior", "--run", run, "--overwrite", "--conditional", "--prior", "maskgit", *tiny]
    assert run_cli([*args, "--maskgit-intermediate-dim", "16", "--prior-epochs", "1", "--quiet"])[0] == 0
    with open(os.path.join(run, "config.json"), encoding="utf-8") as stream:
        config = json.load(stream)
    assert config["prior"]["kind"] == "maskgit" and config["prior"]["hidden_dim"] == 8
    assert set(config["prior_results"]) == {"validation_masked_bits_per_code"}
    out = str(tmp_path / "samples.png")
    sample = [
        "sample",
        "--run",
        run,
        "-n",
        "5",
        "--label",
        "2",
        "--seed",
        "3",
        "--steps",
        "4",
        "--guidance",
        "2",
    ]
    assert run_cli([*sample, "--out", out])[0] == 0
    codes = np.load(out[:-4] + ".npy")
    assert codes.shape == (5, 7, 7) and codes.min() >= 0 and codes.max() < 16
    code, _, stderr = run_cli([*sample[:-4], "--steps", "50", "--out", str(tmp_path / "x.png")])
    assert code == 2 and stderr.count("\n") == 1 and "steps must be an int in [1, 49]" in stderr
    code, _, stderr = run_cli(["sample", "--run", tiny_run, "--steps", "4", "--out", str(tmp_path / "y.png")])
    assert code == 2 and "--steps is for a MaskGIT prior" in stderr
    code, stdout, _ = run_cli(["evaluate", "--run", run, "--samples", "0"])
    assert code == 0 and "n/a (MaskGIT defines no likelihood)" in stdout and "masked bits per code" in stdout
    exported = str(tmp_path / "exported")
    assert run_cli(["export", "--run", run, "--out", exported])[0] == 0
    loaded = tf.saved_model.load(exported)
    maskgit = load_stage_model(RunFolder(run), "prior")
    inputs = dict(
        num_samples=tf.constant(3),
        temperature=tf.constant(1.0),
        seed=tf.constant(4, tf.int64),
        labels=tf.constant([0, 1, 2]),
    )
    outputs = loaded.signatures["sample_guided_with_steps"](
        **inputs, guidance=tf.constant(2.0), steps=tf.constant(3)
    )
    np.testing.assert_array_equal(  # the exported sampler decodes in the steps it is given
        outputs["codes"].numpy(), maskgit.sample(3, labels=[0, 1, 2], seed=4, guidance=2.0, steps=3)
    )
    outputs = loaded.signatures["sample"](**inputs)  # the default steps, guidance 1
    np.testing.assert_array_equal(outputs["codes"].numpy(), maskgit.sample(3, labels=[0, 1, 2], seed=4))
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    from vqgen.noise_sampler import maskgit_noise
    from vqgen.portable_export import load_portable

    onnx = str(tmp_path / "onnx")
    before = hashes(run)
    assert (
        run_cli(["export", "--run", run, "--out", onnx, "--format", "onnx"])[0] == 0 and hashes(run) == before
    )
    noise = maskgit_noise(3, 4, (7, 7), 16, seed=5)  # 4 decoding steps
    served = loaded.signatures["sample_from_noise_guided"](
        **{name: tf.constant(value) for name, value in noise.items()},
        temperature=tf.constant(1.0),
        labels=inputs["labels"],
        guidance=tf.constant(2.0),
    )
    sampled = load_portable(onnx).sample(**noise, labels=np.array([0, 1, 2]), guidance=2.0)
    np.testing.assert_array_equal(sampled, served["codes"].numpy())  # the same noise, the same grids
