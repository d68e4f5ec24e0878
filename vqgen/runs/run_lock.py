"""One writer per run folder: an exclusive `flock` on a lock file inside the folder.

The kernel releases a `flock` when its process exits, however it exits (even by SIGKILL), so a crash
never leaves a stale lock. Readers (`vqgen sample`) take no lock: every file of a run is written aside
and renamed into place (`atomic_file`), so they never see a half-written one.
"""

import contextlib
import fcntl
import functools
import os
import threading

from vqgen.storage import refuse_remote_run

# The lock file, inside the run folder. It exists only while a writer holds it.
LOCK_NAME = ".writer.lock"


class RunLock:
    """An exclusive lock on a run folder for one writing process; re-entrant within that process.

    Entering takes an exclusive, non-blocking `fcntl.flock` on `RUN/.writer.lock` and writes the
    process id into it; a second process that tries meanwhile gets a `BlockingIOError` naming that
    process. Leaving deletes the lock file (and the run folder, if entering created it and it is
    still empty), so a refused or failed command leaves the folder as it found it. A lock holder
    that enters the same folder again (e.g. `vqgen run` calling the stage trainers) just counts.

    Args:
        run_path: str or path-like. The run folder.
        create: bool. Create a missing folder (a writer that starts a run). Otherwise a missing
            folder is not locked: there is nothing to protect, and the caller reports it missing.

    Raises:
        BlockingIOError: on entering, another process holds the lock.

    Example:
    >>> with RunLock("runs/digits"):
    ...     train_stage(...)  # doctest: +SKIP
    """

    _held = {}  # real path of a lock file this process holds -> [file descriptor, depth]
    _guard = threading.Lock()

    def __init__(self, run_path, create=False):
        refuse_remote_run(run_path)
        self.folder = os.fspath(run_path)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.create = create
        self._created_folder = False
        self._entered = False

    def __enter__(self):
        if not os.path.isdir(self.folder):
            if not self.create:
                return self
            os.makedirs(self.folder, exist_ok=True)
            self._created_folder = True
        self._entered = True
        key = os.path.realpath(self.path)
        with self._guard:
            if key in self._held:
                self._held[key][1] += 1
                return self
            try:
                descriptor = self._acquire()
            except BaseException:
                self._entered = False
                self._remove_created_folder()
                raise
            self._held[key] = [descriptor, 1]
        return self

    def __exit__(self, *exc_info):
        if not self._entered:
            return
        self._entered = False
        key = os.path.realpath(self.path)
        with self._guard:
            entry = self._held[key]
            entry[1] -= 1
            if entry[1]:
                return
            del self._held[key]
            # Unlinked while still locked: a process that opened the old file re-checks and retries.
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(entry[0])
        self._remove_created_folder()

    def _remove_created_folder(self):
        if self._created_folder:
            self._created_folder = False
            with contextlib.suppress(OSError):
                os.rmdir(self.folder)  # only if nothing else was written into it

    def _acquire(self):
        """Opens and locks the lock file; returns its descriptor."""
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(descriptor)
                os.close(descriptor)
                raise BlockingIOError(
                    f"{self.folder} is being written by {holder} (it holds {self.path}); wait for it "
                    "to finish or stop it, then run the command again"
                ) from None
            except BaseException:
                os.close(descriptor)
                raise
            if _same_file(descriptor, self.path):
                break
            os.close(descriptor)  # the previous holder deleted this file after we opened it: retry
        with contextlib.suppress(OSError):  # on a full disk the lock holds even if the pid is not written
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()}\n".encode())
        return descriptor


def locks_run(create=False):
    """Decorator: `function(run_path, ...)` runs holding `RunLock(run_path, create)`.

    Example:
    >>> @locks_run(create=True)
    ... def train_vqvae(run_path, **settings): ...
    """

    def decorate(function):
        @functools.wraps(function)
        def locked(run_path, *args, **kwargs):
            with RunLock(run_path, create=create):
                return function(run_path, *args, **kwargs)

        return locked

    return decorate


def _read_pid(descriptor):
    """'process PID' from the lock file's content, or 'another process' if it is not written yet."""
    with contextlib.suppress(OSError, ValueError):
        return f"process {int(os.pread(descriptor, 32, 0).decode().strip())}"
    return "another process"


def _same_file(descriptor, path):
    """Whether `path` still names the file open at `descriptor`."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
