"""Writing files so that a crash never leaves a truncated file where a good one was."""

import contextlib
import os
import shutil
import uuid


def _temporary_sibling(path):
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to `path`; on success moves it onto `path` in one rename.

    Works for files and for folders (e.g. a SavedModel): whatever the body writes at the yielded
    path replaces `path` only if the body finishes; otherwise it is deleted and `path` is left as
    it was. Parent folders are created.

    Args:
        path: str or path-like. The final location.

    Yields:
        str, the temporary location to write to.

    Example:
    >>> with atomic_path("run/vqvae.keras") as temporary:
    ...     model.save(temporary)  # doctest: +SKIP
    """
    path = os.fspath(path)
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
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary)
        elif os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def scratch_folder(near):
    """Yields a new empty folder beside `near` (same file system, so a rename out of it is atomic).

    The folder is deleted afterwards, whatever it still holds.

    Args:
        near: str or path-like. A path whose parent folder receives the scratch folder.

    Yields:
        str, the scratch folder.

    Example:
    >>> with scratch_folder("run/logs/train") as scratch:
    ...     write_files_into(scratch)  # doctest: +SKIP
    """
    folder = _temporary_sibling(os.fspath(near))
    os.makedirs(folder)
    try:
        yield folder
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
