import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys

import filelock
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _randomise_weights(model, scale, seed):
    """Sets every weight of a built `model` to normal noise of standard deviation `scale`."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


@contextlib.contextmanager
def _session_folder(tmp_path_factory, name):
    """Yields `(folder, missing)` for a session fixture's output folder, built once per test session.

    Under pytest-xdist (`-n 2`) every worker runs the session fixtures it needs; the folder then lives
    in the temporary root all workers share, and a file lock lets the first worker build it while
    the others wait and reuse it (`missing` is False for them). Without xdist it is a fresh
    `mktemp` folder. The fixture writes into `folder` only when `missing`; a `.complete` marker is
    left once the `with` body ends without an error, so a failed build is removed and made again.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        yield tmp_path_factory.mktemp(name), True
        return
    folder = tmp_path_factory.getbasetemp().parent / f"shared_{name}"
    with filelock.FileLock(f"{folder}.lock"):
        marker = folder / ".complete"
        if not marker.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            yield folder, True
            marker.touch()
        else:
            yield folder, False


@pytest.fixture(scope="session")
def tiny_digits(tmp_path_factory):
    """The path of an .npz of 160 labelled digits (a fixed pick), the data of the tiny runs."""
    from vqgen.data import load_images

    with _session_folder(tmp_path_factory, "data") as (folder, missing):
        source = folder / "digits.npz"
        if missing:
            digits = load_images("digits")
            picks = np.random.default_rng(0).choice(len(digits), 160, replace=False)
            np.savez(source, images=digits.images[picks], labels=digits.labels[picks])
    return str(source)


# A tiny stage 1 (train_vqvae settings): trains on tiny_digits in seconds.
TINY_VQVAE = dict(
    num_embeddings=16,
    embedding_dim=4,
    hidden_channels=8,
    residual_channels=4,
    num_residual_blocks=1,
    batch_size=32,
)


@pytest.fixture(scope="session")
def tiny_vqvae_settings():
    """TINY_VQVAE as `train_vqvae` keyword arguments (a copy): a stage 1 that trains in seconds."""
    return dict(TINY_VQVAE)


def _option_list(settings, prefix=""):
    """`vqgen` command-line options for settings: `{"batch_size": 32}` -> `("--batch-size", "32")`;
    `prefix` goes before each name (`"transformer-"`: `--transformer-num-layers`)."""
    return tuple(
        item
        for name, value in settings.items()
        for item in (f"--{prefix}{name.replace('_', '-')}", str(value))
    )


@pytest.fixture(scope="session")
def tiny_train_args():
    """The `vqgen train` options of a tiny run (TINY_VQVAE, one epoch, no progress bar), a tuple to
    splice into an argv; a later `--epochs` or `--batch-size` overrides its value."""
    return (*_option_list({"epochs": 1, **TINY_VQVAE}), "--quiet")


@pytest.fixture(scope="session")
def tiny_prior_args():
    """The `vqgen train-prior` options of a tiny prior: one epoch of a 2-layer, 8-filter PixelCNN."""
    return ("--prior-epochs", "1", "--num-layers", "2", "--filters", "8", "--quiet")


@pytest.fixture
def run_cli(capsys):
    """`run_cli(argv)`: runs `vqgen ARGV` in this process; returns `(exit code, stdout, stderr)`.

    Example: `code, out, err = run_cli(["sample", "--run", run, "--out", "x.png"])`.
    """
    from vqgen.cli import main

    def run(args):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _hashes(path):
    """sha256 of the file at `path`, or `{relative path: sha256}` of every file under the folder `path`
    (hidden ones included); an empty or missing folder fails, as comparing it would prove nothing."""
    if os.path.isfile(path):
        with open(path, "rb") as stream:
            return hashlib.sha256(stream.read()).hexdigest()
    found = {
        os.path.relpath(os.path.join(root, name), path): _hashes(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    }
    assert found, f"no files under {path}"
    return found


@pytest.fixture(scope="session")
def hashes():
    """`hashes(path)`: the sha256 of a file, or of every file under a folder by relative path, to
    show that a command left files untouched (`hashes(run) == before`)."""
    return _hashes


def _run_command(args, cwd):
    """Runs `vqgen ARGS` as the installed console command does, in a child process whose environment
    has no TF_CPP_MIN_LOG_LEVEL (as a user's shell); returns the `subprocess.CompletedProcess`."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-c", "import sys, vqgen_command; sys.exit(vqgen_command.main())", *args]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def run_command():
    """`run_command(argv, cwd)`: `vqgen ARGV` run by the console command in a child process (see
    `_run_command`), for what only a fresh process shows (its stderr, its exit code)."""
    return _run_command


@pytest.fixture(scope="session")
def console_run(tmp_path_factory, tiny_digits, tiny_train_args, tiny_prior_args):
    """`(result, run)`: one whole tiny `vqgen run` (both stages class-conditional, samples, export) by
    the console command in a child process, its `CompletedProcess` and its run folder; shared by the
    console-command and CLI tests, which copy the folder before changing it."""
    with _session_folder(tmp_path_factory, "console") as (folder, missing):
        run = str(folder / "run")
        if missing:
            result = _run_command(
                ["run", "--run", run, "--data", tiny_digits, *tiny_train_args, *tiny_prior_args], folder
            )
            recorded = {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}
            with open(folder / "result.json", "w", encoding="utf-8") as stream:
                json.dump(recorded, stream)
    with open(folder / "result.json", encoding="utf-8") as stream:
        result = subprocess.CompletedProcess(args=["vqgen", "run"], **json.load(stream))
    return result, run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_digits):
    """A run folder trained in seconds: 160 digits, 2 epochs of a tiny VQ-VAE (K=16) and of a tiny
    class-conditional PixelCNN; shared by the tests that read a finished run."""
    from vqgen.runs.train_prior import train_prior
    from vqgen.runs.train_vqvae import train_vqvae

    with _session_folder(tmp_path_factory, "tiny_run") as (folder, missing):
        run = str(folder / "tiny")
        if missing:
            train_vqvae(run, source=tiny_digits, epochs=2, verbose=0, **TINY_VQVAE)
            train_prior(run, conditional=True, epochs=2, num_layers=2, filters=8, verbose=0)
    return run


@pytest.fixture(scope="session")
def tiny_transformer_args():
    """The `vqgen train-prior` options of a tiny Transformer prior: one epoch, 1 layer, width 8, 2 heads."""
    settings = dict(num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16)
    return (
        "--prior",
        "transformer",
        "--prior-epochs",
        "1",
        *_option_list(settings, prefix="transformer-"),
        "--quiet",
    )


@pytest.fixture(scope="session")
def tiny_fsq_run(tmp_path_factory, tiny_digits):
    """A tiny FSQ run with stage 1 only: levels [5, 5, 3] (75 codes), 1 epoch (its codes are single
    integers, so a prior sees them as it sees VQ codes)."""
    from vqgen.runs.train_vqvae import train_vqvae

    with _session_folder(tmp_path_factory, "tiny_fsq_run") as (folder, missing):
        run = str(folder / "tiny_fsq")
        if missing:
            train_vqvae(
                run, source=tiny_digits, epochs=1, verbose=0, quantizer="fsq", levels=[5, 5, 3], **TINY_VQVAE
            )
    return run


@pytest.fixture(scope="session")
def tiny_rvq_run(tmp_path_factory, tiny_digits, tiny_train_args, tiny_transformer_args):
    """A finished tiny residual-VQ run: d=2 levels of K=16, 1 epoch, and a 1-epoch class-conditional
    Transformer prior over the depth-interleaved [7, 14] grids; made by `vqgen train --quantizer rvq
    --num-quantizers 2` and `vqgen train-prior --conditional --prior transformer` (in this process)."""
    from vqgen.cli import main

    with _session_folder(tmp_path_factory, "tiny_rvq_run") as (folder, missing):
        run = str(folder / "tiny_rvq")
        if missing:
            rvq = ["--quantizer", "rvq", "--num-quantizers", "2"]
            assert main(["train", "--run", run, "--data", tiny_digits, *tiny_train_args, *rvq]) == 0
            assert main(["train-prior", "--run", run, "--conditional", *tiny_transformer_args]) == 0
    return run


@pytest.fixture(scope="session")
def randomise_weights():
    """`randomise_weights(model, scale, seed)`: non-trivial random weights (biases included) for an
    untrained model or layer, so no connection is silently zero; returns the model."""
    return _randomise_weights
