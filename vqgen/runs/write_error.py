"""One error for a write that the storage refused: a full disk, a quota, a read-only or failing disk.

Such failures surface in several shapes: `OSError` with an errno from Python's own file writes, h5py's
`OSError`/`RuntimeError` whose text carries HDF5's "file write failed: ... errno = 28", and TensorFlow's
`tf.errors.OpError` whose text carries the C library's message. `storage_errno` finds the errno behind
any of them (following `__cause__`/`__context__`), and `WriteError` states it as one line naming the
file that was being written.
"""

import errno
import os
import re

# errno values that mean the storage refused a write (not a bug, not bad input), each with what to do.
STORAGE_REMEDIES = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space or raise the disk quota",
    errno.EFBIG: "free space or choose a file system that allows larger files",
    errno.EROFS: "make the file system writable",
    errno.EIO: "check the disk",
    errno.EACCES: "fix the folder's permissions",
    errno.EPERM: "fix the folder's permissions",
}
# HDF5 reports the errno inside its message ("file write failed: ..., errno = 28, ...").
_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def storage_errno(error):
    """Returns the errno of the storage failure behind `error`, or None if it is not one.

    Args:
        error: BaseException. Its `__cause__` and `__context__` chain is searched too.

    Returns:
        int (one of `STORAGE_REMEDIES`) or None.

    Example:
    >>> storage_errno(OSError(errno.ENOSPC, "No space left on device"))
    28
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in STORAGE_REMEDIES:
            return error.errno
        text = str(error)
        for match in _HDF5_ERRNO.finditer(text):
            if int(match.group(1)) in STORAGE_REMEDIES:
                return int(match.group(1))
        if not isinstance(error, OSError) or error.errno is None:  # TensorFlow's and h5py's text-only errors
            for number in STORAGE_REMEDIES:
                if os.strerror(number) in text:
                    return number
        error = error.__cause__ or error.__context__
    return None


class WriteError(OSError):
    """Writing `path` failed because of the storage; nothing at `path` was replaced.

    `str(error)` is one line, e.g. "no space left on device while writing runs/digits/metrics.csv",
    and `advice(resumable)` adds what to do about it.

    Args:
        number: int. The errno (a key of `STORAGE_REMEDIES`).
        path: str. The file or folder that was being written (its final name, not the temporary one).

    Example:
    >>> str(WriteError(errno.ENOSPC, "run/metrics.csv"))
    'no space left on device while writing run/metrics.csv'
    """

    def __init__(self, number, path):
        super().__init__(number, os.strerror(number), os.fspath(path))

    def __str__(self):
        return f"{self.strerror[:1].lower()}{self.strerror[1:]} while writing {self.filename}"

    def advice(self, resumable):
        """The one-line message with what to do: `resumable` for commands that continue a run.

        Args:
            resumable: bool. The command resumes where it stopped (train, train-prior, run).

        Returns:
            str.
        """
        remedy = STORAGE_REMEDIES.get(self.errno, "fix the cause")
        if resumable:
            return f"{self}; the run folder is intact, {remedy} and run the same command again to resume"
        return f"{self}; nothing was replaced, {remedy} and run the same command again"
