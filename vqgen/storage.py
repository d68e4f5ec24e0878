"""Paths on any file system TensorFlow knows: local, `gs://`, `s3://` (with its plugin), `hdfs://`, `ram://`.

Data sources and the outputs of `vqgen encode` and `vqgen export` go through `tf.io.gfile`, so a URL
path works wherever TensorFlow has that file system. Local paths keep Python's own `open` (its
`OSError`s name the problem) and run folders stay local: they rely on `flock` and atomic renames,
which object stores do not have (`refuse_remote_run`).

Example:
>>> is_remote("gs://bucket/images"), is_remote("images/cats")
(True, False)
"""

import os
import posixpath
import re
import uuid

# A URL path: a scheme (`gs`, `s3`, `hdfs`, `ram`, ...) followed by `://`.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(path):
    """Whether `path` is a URL (`scheme://...`) that only `tf.io.gfile` can open, not a local path.

    Args:
        path: str or path-like.

    Returns:
        bool.

    Example:
    >>> is_remote("ram://shards/train-00000.tfrecord")
    True
    """
    return bool(_URL.match(os.fspath(path)))


def open_file(path, mode="rb"):
    """Opens a file for reading or writing: Python's `open` for a local path, `tf.io.gfile.GFile` for a URL.

    A `GFile` reads lazily (`read(n)` fetches about n bytes, `seek` and `tell` work), so Pillow's
    header parsing and `numpy.load` work on it as on a local file.

    Args:
        path: str or path-like.
        mode: str. "rb", "wb", "r" or "w".

    Returns:
        A file object, to use in a `with` block.

    Raises:
        OSError (local) or `tf.errors.OpError` (URL): the file cannot be opened.

    Example:
    >>> with open_file("ram://notes.txt", "w") as stream:  # doctest: +SKIP
    ...     stream.write("hello")
    """
    path = os.fspath(path)
    if is_remote(path):
        import tensorflow as tf

        return tf.io.gfile.GFile(path, mode)
    return open(path, mode)


def folder_names(path):
    """The names in the folder `path` (local or a URL), without the `/` object stores end sub-folders with.

    Example:
    >>> sorted(folder_names("ram://images"))  # doctest: +SKIP
    ['cat', 'dog']
    """
    import tensorflow as tf

    return [name.rstrip("/") for name in tf.io.gfile.listdir(os.fspath(path))]


def refuse_remote_run(path):
    """Raises ValueError when a run folder is given as a URL: run folders must be local.

    A run folder is written by one process at a time (`flock` on a lock file) and every file in it is
    replaced by an atomic rename; object stores such as `gs://` offer neither.

    Args:
        path: str or path-like. The `--run` folder.

    Raises:
        ValueError: one line naming the fix.

    Example:
    >>> refuse_remote_run("runs/digits")  # a local folder: accepted
    """
    if is_remote(path):
        raise ValueError(
            f"--run {os.fspath(path)} is not a local folder; run folders must be local (they rely on flock "
            "and atomic renames): train into a local --run, then write to the remote path with "
            "`vqgen export --out` or `vqgen encode --out`"
        )


def publish_folder(staged, path, last_file):
    """Moves a finished folder onto the URL `path` file by file, `last_file` last.

    Object stores rename one object at a time (`gs://` copies it), and TensorFlow's `ram://` file
    system does not rename a folder's contents with it; so each file of `staged` is renamed to its
    place under `path`, and `last_file` (e.g. a SavedModel's `saved_model.pb`, a config) is moved only
    after every other file is in place: a reader that finds it finds a complete folder. An existing
    `path` is removed first (the caller has checked that it may be).

    Args:
        staged: str. A folder on the same file system as `path` (a temporary sibling), fully written.
        path: str. The destination folder (a URL).
        last_file: str. Path relative to the folder of the file that marks it complete.

    Example:
    >>> publish_folder("gs://b/.export.1a2b3c4d.tmp", "gs://b/export", "saved_model.pb")  # doctest: +SKIP
    """
    import tensorflow as tf

    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)
    files = [
        posixpath.join(root[len(staged) :].lstrip("/"), name)
        for root, _, names in tf.io.gfile.walk(staged)
        for name in names
    ]
    for relative in sorted(files, key=lambda name: name == last_file):
        target = posixpath.join(path, relative)
        tf.io.gfile.makedirs(posixpath.dirname(target))
        tf.io.gfile.rename(posixpath.join(staged, relative), target, overwrite=True)
    tf.io.gfile.rmtree(staged)


def copy_folder(source, target):
    """Copies the local folder `source` to `target` (a new folder, local or a URL), file by file.

    Example:
    >>> copy_folder("/tmp/staging/export", "gs://b/.export.1a2b3c4d.tmp")  # doctest: +SKIP
    """
    import tensorflow as tf

    for root, _, names in os.walk(source):
        relative = os.path.relpath(root, source)
        folder = os.fspath(target) if relative == "." else posixpath.join(os.fspath(target), relative)
        tf.io.gfile.makedirs(folder)
        for name in names:
            tf.io.gfile.copy(os.path.join(root, name), posixpath.join(folder, name), overwrite=True)


def temporary_name_beside(path):
    """A fresh name beside `path` (local or a URL) for writing it aside: `.NAME.<8 hex digits>.tmp`.

    Example:
    >>> temporary_name_beside("gs://b/export")  # doctest: +SKIP
    'gs://b/.export.1a2b3c4d.tmp'
    """
    head, name = posixpath.split(os.fspath(path).rstrip("/"))
    return posixpath.join(head, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
