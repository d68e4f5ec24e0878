"""One writer per run folder: a second writer is refused naming the holder, files untouched."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from vqgen import storage
from vqgen.runs import run_lock
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.run_lock import LOCK_NAME, RunLock

# Holds RunLock(argv[1]) until its stdin closes. It loads run_lock.py and the one module it imports,
# storage.py, from their files, without running vqgen/__init__.py: no TensorFlow, so it starts in
# well under a second instead of the seconds an import of TensorFlow takes.
HOLDER = f"""
import importlib.util, sys

def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

load("vqgen.storage", {storage.__file__!r})
module = load("run_lock", {run_lock.__file__!r})
assert "tensorflow" not in sys.modules
with module.RunLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def locked_run(tiny_run, tmp_path_factory):
    """A copy of the session's tiny run for these tests to lock: the lock file they leave and take must
    not show in the other tests' reads of `tiny_run` (with `-n 2` they run at the same time)."""
    run = str(tmp_path_factory.mktemp("locked") / "run")
    shutil.copytree(tiny_run, run)
    return run


def hold(folder):
    """Starts a process holding the run's lock; returns it once the lock is taken."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, folder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release(holder):
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--run", "{run}", "--overwrite", "--epochs", "1", "--quiet"],
        ["train-prior", "--run", "{run}", "--overwrite", "--quiet"],
        ["run", "--run", "{run}", "--overwrite", "--quick", "--quiet"],
        ["export", "--run", "{run}", "--out", "{run}/saved_model", "--overwrite"],
    ],
    ids=["train", "train-prior", "run", "export"],
)
def test_second_writer_is_refused_naming_the_holder_and_touches_nothing(locked_run, run_cli, hashes, args):
    holder = hold(locked_run)
    try:
        before = hashes(locked_run)
        code, _, stderr = run_cli([arg.format(run=locked_run) for arg in args])
        after = hashes(locked_run)
    finally:
        release(holder)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqgen: error:"), stderr
    assert f"is being written by process {holder.pid}" in lines[0], stderr
    assert after == before  # even with --overwrite, nothing was replaced or deleted
    assert LOCK_NAME in before  # the holder's lock file was there all along, unchanged


def test_readers_need_no_lock(locked_run, tmp_path, run_cli):
    holder = hold(locked_run)
    try:
        out = str(tmp_path / "samples.png")
        assert run_cli(["sample", "--run", locked_run, "-n", "2", "--out", out])[0] == 0
    finally:
        release(holder)
    assert os.path.isfile(out)


@pytest.mark.slow
def test_a_running_training_finishes_while_a_second_writer_is_refused(
    tmp_path, tiny_digits, tiny_train_args, run_cli
):
    run = str(tmp_path / "run")
    command = ["train", "--run", run, "--data", tiny_digits, *tiny_train_args, "--epochs", "3"]
    first = subprocess.Popen(
        [sys.executable, "-m", "vqgen.cli", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    lock = os.path.join(run, LOCK_NAME)
    deadline = time.monotonic() + 120
    while not (os.path.isfile(lock) and open(lock).read().strip() == str(first.pid)):
        assert first.poll() is None and time.monotonic() < deadline, "the first training never took the lock"
        time.sleep(0.05)
    code, _, stderr = run_cli(command)
    assert code == 2 and f"is being written by process {first.pid}" in stderr, stderr
    assert first.wait(timeout=300) == 0, first.stderr.read().decode()[-2000:]
    folder = RunFolder(run)
    assert folder.finished("vqvae") and not os.path.exists(lock)
    with open(folder.metrics_path("vqvae"), encoding="utf-8") as stream:
        assert [line.split(",")[0] for line in stream.read().splitlines()[1:]] == ["1", "2", "3"]


def test_the_kernel_releases_the_lock_of_a_killed_writer(tmp_path):
    folder = str(tmp_path / "run")
    os.makedirs(folder)
    holder = hold(folder)
    with pytest.raises(BlockingIOError, match=f"process {holder.pid}"):
        with RunLock(folder):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert os.listdir(folder) == [LOCK_NAME]  # SIGKILL leaves the file, not the lock
    assert not RunFolder(folder).exists()  # a stale lock file does not make the folder a run
    with RunLock(folder):
        with open(os.path.join(folder, LOCK_NAME), encoding="utf-8") as stream:
            assert stream.read().strip() == str(os.getpid())
    assert os.listdir(folder) == []


def test_the_lock_is_reentrant_in_its_process_and_leaves_no_trace(tmp_path):
    folder = str(tmp_path / "new")
    with RunLock(folder, create=True):
        with RunLock(folder):  # e.g. `vqgen run` entering the stage trainers
            assert RunFolder(folder).exists() is False
            RunFolder(folder).remove_stale_temporaries()
            RunFolder(folder).clear()
            assert os.listdir(folder) == [LOCK_NAME]
        assert os.listdir(folder) == [LOCK_NAME]  # the outer holder still holds it
    assert not os.path.exists(folder)  # created for the lock, left empty: removed
    with RunLock(tmp_path / "missing"):  # without create, a missing folder is not created
        pass
    assert not os.path.exists(tmp_path / "missing")
