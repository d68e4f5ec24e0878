"""A write the storage refuses (full disk, quota, ...) ends in one line and exit 2, and the run resumes."""

import errno
import os
import shutil
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

import vqgen
from vqgen.export import export_saved_model
from vqgen.runs.atomic_file import write_bytes_atomically
from vqgen.runs.callbacks import EpochBackup, EpochCheckpoint, EpochSummaries, MetricsFile
from vqgen.runs.model_files import save_model_file
from vqgen.runs.run_folder import TEMPORARY_NAME, RunFolder
from vqgen.runs.run_lock import LOCK_NAME
from vqgen.runs.write_error import WriteError, storage_errno

RESUME = "; the run folder is intact, free space and run the same command again to resume"
H5PY_CLOSE_ERROR = (
    "Can't decrement id ref count (file write failed: time = Fri Nov 27 21:23:32 2026\n, filename = "
    "'/x/.epoch_001.weights.h5.1-0a1b2c3d.tmp.weights.h5', file descriptor = 3, errno = 28, error "
    "message = 'No space left on device', buf = 0x5653971236b0, total write size = 2048)"
)


@pytest.mark.parametrize(
    "error, expected",
    [
        (OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), errno.EDQUOT),
        (RuntimeError(H5PY_CLOSE_ERROR), errno.ENOSPC),  # h5py's error from a failed close
        (OSError(H5PY_CLOSE_ERROR), errno.ENOSPC),  # h5py's OSError without an errno
        (tf.errors.ResourceExhaustedError(None, None, "x.tfevents; No space left on device"), errno.ENOSPC),
        (tf.errors.UnknownError(None, None, "Read-only file system"), errno.EROFS),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), None),
        (ValueError("codes must be in [0, 16)"), None),
    ],
)
def test_storage_errno_finds_the_errno_wherever_it_surfaces(error, expected):
    assert storage_errno(error) == expected
    try:  # also when wrapped by another exception
        try:
            raise error
        except Exception as inner:
            raise ValueError("while saving") from inner
    except ValueError as outer:
        assert storage_errno(outer) == expected


def test_write_error_is_one_line_naming_the_file():
    error = WriteError(errno.ENOSPC, "runs/a/metrics.csv")
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert str(error) == "no space left on device while writing runs/a/metrics.csv"
    assert error.advice(resumable=True) == f"{error}{RESUME}"
    assert (
        error.advice(resumable=False)
        == f"{error}; nothing was replaced, free space and run the same command again"
    )


def leftovers(folder):
    """Temporary files/folders and lock files anywhere under `folder`."""
    return [
        os.path.join(root, name)
        for root, folders, files in os.walk(folder)
        for name in folders + files
        if TEMPORARY_NAME.match(name) or name == LOCK_NAME
    ]


def full_disk_at(monkeypatch, site):
    """Makes the rename that puts `site` (a path, or a folder of paths) into place fail with ENOSPC, once."""
    real_replace = os.replace
    target = os.path.abspath(site)

    def replace(source, destination, **kwargs):
        if os.path.abspath(destination).startswith(target) and not getattr(replace, "fired", False):
            replace.fired = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(source, destination, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return replace


def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def write_metrics(folder, model):
    MetricsFile(os.path.join(folder, "metrics.csv")).on_epoch_end(0, {"loss": 1.0})
    return "metrics.csv"


def write_checkpoint(folder, model):
    callback = EpochCheckpoint(os.path.join(folder, "checkpoints"))
    callback.set_model(model)
    callback.on_epoch_end(0)
    return "checkpoints/epoch_001.weights.h5"


def write_summaries(folder, model):
    callback = EpochSummaries(os.path.join(folder, "logs"))
    callback.set_model(model)
    callback.on_epoch_end(0, {"loss": 1.0})
    return "logs/train"


def write_backup(folder, model):
    callback = EpochBackup(os.path.join(folder, "backup"))
    callback.set_model(model)
    callback.on_epoch_end(0)
    return "backup"


def write_model_file(folder, model):
    save_model_file(model, os.path.join(folder, "model.keras"))
    return "model.keras"


def write_codes(folder, model):
    write_bytes_atomically(os.path.join(folder, "codes.npz"), b"codes")
    return "codes.npz"


def write_export(folder, model):
    vqvae = vqgen.VQVAE(
        input_shape=(8, 8, 1),
        num_embeddings=4,
        embedding_dim=2,
        hidden_channels=4,
        residual_channels=2,
        num_residual_blocks=1,
    )
    export_saved_model(os.path.join(folder, "export"), vqvae, overwrite=True)
    return "export"


@pytest.mark.parametrize(
    "write",
    [
        write_metrics,
        write_checkpoint,
        write_summaries,
        write_backup,
        write_model_file,
        write_codes,
        write_export,
    ],
)
def test_a_full_disk_at_each_write_site_raises_write_error_and_keeps_the_old_file(write, tmp_path, hashes):
    folder = str(tmp_path)
    model = tiny_model()
    target = os.path.join(folder, write(folder, model))  # a first, successful write
    before = hashes(target)
    with pytest.MonkeyPatch.context() as patch:
        fault = full_disk_at(patch, target)
        with pytest.raises(WriteError) as raised:
            write(folder, model)
    assert fault.fired
    assert str(raised.value) == f"no space left on device while writing {target}"
    assert hashes(target) == before  # the previous version is untouched
    assert leftovers(folder) == []  # and no temporary is left beside it


@pytest.mark.slow
def test_the_cli_reports_a_full_disk_in_one_line_and_the_same_command_resumes(
    tmp_path, tiny_digits, tiny_train_args, tiny_prior_args, run_cli, monkeypatch
):
    run = str(tmp_path / "run")
    folder = RunFolder(run)
    commands = [  # (command, where the disk is full, the file named, the advice)
        (
            ["train", "--run", run, "--data", tiny_digits, *tiny_train_args],
            folder.checkpoints_path("vqvae"),
            os.path.join(folder.checkpoints_path("vqvae"), "epoch_001.weights.h5"),
            RESUME,
        ),
        (["train-prior", "--run", run, *tiny_prior_args], folder.codes_path, folder.codes_path, RESUME),
        (
            ["export", "--run", run, "--out", folder.file("saved_model")],
            folder.file("saved_model"),
            folder.file("saved_model"),
            "; nothing was replaced, free space and run the same command again",
        ),
    ]
    for command, site, named, advice in commands:
        with monkeypatch.context() as patch:
            fault = full_disk_at(patch, site)
            code, _, stderr = run_cli(command)
        assert getattr(fault, "fired", False), (site, code, stderr)
        assert code == 2 and stderr.count("\n") == 1, stderr
        assert stderr.startswith(f"vqgen: error: no space left on device while writing {named}"), stderr
        assert stderr.endswith(f"{advice}\n"), stderr
        assert leftovers(run) == []
        code, _, stderr = run_cli(command)  # space freed: the same command finishes the job
        assert code == 0, stderr
        assert leftovers(run) == []
    assert folder.finished("vqvae") and folder.finished("prior")
    assert os.path.isfile(os.path.join(run, "saved_model", "saved_model.pb"))
    for stage in ("vqvae", "prior"):
        with open(folder.metrics_path(stage), encoding="utf-8") as stream:
            assert [line.split(",")[0] for line in stream.read().splitlines()[1:]] == ["1"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs, or a skip where this process may not mount one."""
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield str(folder)
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_a_real_full_disk_fails_in_h5py_without_traceback_or_crash_and_resumes(
    small_tmpfs, tiny_digits, tiny_train_args, run_cli
):
    run = os.path.join(small_tmpfs, "run")
    filler = os.path.join(small_tmpfs, "filler")
    statistics = os.statvfs(small_tmpfs)
    with open(
        filler, "wb"
    ) as stream:  # leaves 32 KiB: config.json and metrics.csv fit, a checkpoint does not
        stream.write(b"\0" * (statistics.f_bavail * statistics.f_frsize - 32 * 1024))
    args = ["train", "--run", run, "--data", tiny_digits, *tiny_train_args]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    failed = subprocess.run(  # a child process, to see how it exits
        [sys.executable, "-m", "vqgen.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert failed.returncode == 2, failed.stderr[-3000:]  # not 139 (a segmentation fault at exit)
    ours = [line for line in failed.stderr.splitlines() if line.startswith("vqgen")]
    assert ours == [
        f"vqgen: error: no space left on device while writing "
        f"{os.path.join(run, 'checkpoints', 'vqvae', 'epoch_001.weights.h5')}{RESUME}"
    ], failed.stderr[-3000:]
    for noise in ("Traceback", "Exception ignored", "__dealloc__"):
        assert noise not in failed.stderr, failed.stderr[-3000:]
    assert leftovers(small_tmpfs) == []
    os.remove(filler)
    code, _, stderr = run_cli(args)  # the same command, here in this process, resumes
    assert code == 0, stderr[-3000:]
    assert RunFolder(run).finished("vqvae") and leftovers(small_tmpfs) == []
