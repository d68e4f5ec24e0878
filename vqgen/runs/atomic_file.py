"""Writing files so that a crash never leaves a truncated file where a good one was."""

import contextlib
import os
import shutil
import sys
import uuid

from vqgen.runs.write_error import WriteError, storage_errno
from vqgen.storage import is_remote, publish_folder, temporary_name_beside


def _temporary_sibling(path):
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.remove(path)


def _release_hdf5_files(temporary):
    """Closes the HDF5 files that a failed write left open at or under `temporary`.

    When h5py fails to flush (a full disk), Keras does not close the file and HDF5 keeps it open: its
    finalizer then retries the flush at garbage collection and at exit, printing `__dealloc__`
    tracebacks and crashing the interpreter. The partial file is about to be deleted, so it is
    truncated first, which gives HDF5 room to finish its flush and close cleanly.
    """
    h5py = sys.modules.get("h5py")
    if h5py is None:
        return
    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        with contextlib.suppress(Exception):
            name = os.path.abspath(os.fsdecode(file_id.name))
            if name == temporary or name.startswith(temporary + os.sep):
                with contextlib.suppress(OSError):
                    os.truncate(name, 0)
                file_id.close()


def _as_write_error(error, temporary, path):
    """Cleans up after a failed write; returns a `WriteError` for `path` if the storage caused it."""
    _release_hdf5_files(temporary)
    number = storage_errno(error)
    if number is None or isinstance(error, WriteError):
        return None
    return WriteError(number, path)


@contextlib.contextmanager
def _remote_aside(path, last_file):
    """`atomic_path` for a URL: written aside, then moved file by file (`vqgen.storage.publish_folder`)."""
    import tensorflow as tf

    temporary = temporary_name_beside(path)
    try:
        yield temporary
        if tf.io.gfile.isdir(temporary):
            publish_folder(temporary, path, last_file)
        else:
            tf.io.gfile.rename(temporary, path, overwrite=True)
    finally:
        if tf.io.gfile.isdir(temporary):
            tf.io.gfile.rmtree(temporary)
        elif tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)


@contextlib.contextmanager
def atomic_path(path, last_file=None):
    """Yields a temporary path next to `path`; on success moves it onto `path` in one rename.

    Works for files and for folders (e.g. a SavedModel): whatever the body writes at the yielded
    path replaces `path` only if the body finishes; otherwise it is deleted and `path` is left as
    it was. Parent folders are created. A failure caused by the storage (no space, quota, read-only
    or failing disk, wherever it surfaces: Python, h5py or TensorFlow) is raised as a `WriteError`
    naming `path`, after any HDF5 file left open on the temporary has been closed.

    A URL `path` (`gs://...`, see `vqgen.storage`) is written aside on its own file system too, but
    moved in place file by file, `last_file` last: where renames are not atomic, a reader knows the
    folder is complete once `last_file` exists (see docs/serving.md).

    Args:
        path: str or path-like. The final location.
        last_file: str or None. For a folder at a URL: the file (relative to the folder) moved last.

    Yields:
        str, the temporary location to write to.

    Example:
    >>> with atomic_path("run/vqvae.keras") as temporary:
    ...     model.save(temporary)  # doctest: +SKIP
    """
    path = os.fspath(path)
    if is_remote(path):
        with _remote_aside(path, last_file) as temporary:
            yield temporary
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    name = os.path.basename(path)
    # Keep the full suffix (".keras", ".weights.h5"): Keras checks it when saving.
    temporary = _temporary_sibling(path) + (name[name.index(".") :] if "." in name.lstrip(".") else "")
    try:
        yield temporary
        if os.path.isdir(temporary) and os.path.isdir(path):
            # A folder cannot be renamed onto a non-empty one: move the old one aside first.
            retired = _temporary_sibling(path)
            os.replace(path, retired)
            try:
                os.replace(temporary, path)
            except OSError:
                os.replace(retired, path)
                raise
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
    except BaseException as error:
        write_error = _as_write_error(error, temporary, path)
        _remove(temporary)
        if write_error is not None:
            raise write_error from error
        raise
    finally:
        _remove(temporary)


@contextlib.contextmanager
def scratch_folder(near):
    """Yields a new empty folder beside `near` (same file system, so a rename out of it is atomic).

    The folder is deleted afterwards, whatever it still holds; a storage failure inside is raised
    as a `WriteError` naming `near`, as in `atomic_path`.

    Args:
        near: str or path-like. A path whose parent folder receives the scratch folder.

    Yields:
        str, the scratch folder.

    Example:
    >>> with scratch_folder("run/logs/train") as scratch:
    ...     write_files_into(scratch)  # doctest: +SKIP
    """
    folder = _temporary_sibling(os.fspath(near))
    try:
        os.makedirs(folder)
        yield folder
    except BaseException as error:
        write_error = _as_write_error(error, folder, os.fspath(near))
        _remove(folder)
        if write_error is not None:
            raise write_error from error
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_bytes_atomically(path, data):
    """Writes `data` to `path` through `atomic_path`, synced to disk before the rename.

    Args:
        path: str or path-like.
        data: bytes.

    Example:
    >>> write_bytes_atomically("run/samples.png", tf.io.encode_png(picture).numpy())  # doctest: +SKIP
    """
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())


def write_text_atomically(path, text):
    """Writes `text` to `path` (UTF-8) through `atomic_path`.

    Args:
        path: str or path-like.
        text: str.

    Example:
    >>> write_text_atomically("run/config.json", json.dumps(config))  # doctest: +SKIP
    """
    write_bytes_atomically(path, text.encode("utf-8"))
