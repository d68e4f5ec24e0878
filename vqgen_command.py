"""The `vqgen` console command (TensorFlow backend, quiet start-up, `vqgen.cli.main`), and the backend check.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, when it loads, and importing any `vqgen` module loads
it (the package's `__init__` imports the models), so the variable must be set before the first
`vqgen` import: this module lives outside the package for that reason. TensorFlow 2.21 also
writes a few INFO lines (oneDNN, no CUDA driver) while its libraries load, before its logging
honours the variable; those are held back here and shown only if the import fails.

The toolkit is TensorFlow-only (`tf.data`, `tf.distribute`, `tf.function` sampling loops, SavedModel
export). Keras 3 picks its backend once, when first imported, from `KERAS_BACKEND` or else
`~/.keras/keras.json`. The command sets `KERAS_BACKEND=tensorflow` before Keras loads, whatever the
environment says; `import vqgen` and `import prior` first run `require_tensorflow_backend` (here,
outside both packages, since `prior` imports nothing from `vqgen` and `import vqgen` nothing from
`prior`), which raises one ImportError under another backend.

vqgen run             # no TensorFlow C++ lines (E0000/W0000/I0000) on stderr
KERAS_BACKEND=jax vqgen run   # runs on TensorFlow all the same
KERAS_BACKEND=jax python -c "import vqgen"   # ImportError: ... set KERAS_BACKEND=tensorflow ...
vqgen run --verbose   # TensorFlow's C++ log as TensorFlow prints it
"""

import contextlib
import json
import os
import sys
import tempfile

# The value of `KERAS_BACKEND` the packages need (set by `main` below before Keras loads).
KERAS_BACKEND = "tensorflow"


def _configured_backend():
    """The backend Keras is configured to load, read as Keras documents it: `KERAS_BACKEND`, else the
    `"backend"` of `keras.json` in `KERAS_HOME` (`~/.keras` by default), else TensorFlow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    folder = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(folder, "keras.json"), encoding="utf-8") as stream:
            return json.load(stream).get("backend", KERAS_BACKEND)
    except (OSError, ValueError, AttributeError):  # no file, not JSON, not a JSON object
        return KERAS_BACKEND


def require_tensorflow_backend(package):
    """Imports Keras and raises one ImportError unless its backend is TensorFlow.

    The backend is the one Keras chose (`keras.config.backend()`). When Keras cannot even import
    its backend (e.g. `KERAS_BACKEND=jax` without jax installed), the configured backend is read
    from `KERAS_BACKEND` and `keras.json` instead, so the message is the same with or without jax;
    a failure under the TensorFlow backend is Keras's own error, raised unchanged.

    Args:
        package: str. The importing package, named in the message.

    Raises:
        ImportError: Keras is set to another backend (one line naming `KERAS_BACKEND=tensorflow`),
            or Keras failed to import for another reason (its own error).

    Example:
    >>> require_tensorflow_backend("vqgen")  # nothing happens under the TensorFlow backend
    """
    try:
        import keras
    except ImportError:
        backend = _configured_backend()
        if backend == KERAS_BACKEND:
            raise
    else:
        backend = keras.config.backend()
    if backend != KERAS_BACKEND:
        raise ImportError(
            f"{package} runs on Keras's TensorFlow backend only, but Keras is set to {backend!r} (by "
            f"KERAS_BACKEND or keras.json); set KERAS_BACKEND={KERAS_BACKEND} before importing "
            f"{package} (the vqgen command does this itself)."
        )


# Hides TensorFlow's C++ INFO, WARNING and ERROR lines (`vqgen` reports its own errors itself).
QUIET_LOG_LEVEL = "3"


@contextlib.contextmanager
def _held_back_stderr():
    """Sends file descriptor 2 to a temporary file; replays it on stderr if the body raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv=None):
    """Runs the `vqgen` command on the TensorFlow backend, TensorFlow's C++ log hidden unless `--verbose`.

    An explicit `TF_CPP_MIN_LOG_LEVEL` in the environment is kept (and the start-up lines shown).
    `KERAS_BACKEND` is set to `tensorflow` whatever it was (e.g. `jax` for a user's other work).

    Args:
        argv: list of str or None (then `sys.argv[1:]`).

    Returns:
        The exit status of `vqgen.cli.main`.
    """
    argv = sys.argv[1:] if argv is None else argv
    os.environ["KERAS_BACKEND"] = KERAS_BACKEND  # read once, when Keras is first imported
    quiet = "--verbose" not in argv and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if quiet:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LOG_LEVEL
        with _held_back_stderr():
            import tensorflow  # noqa: F401  (loads the libraries that log on loading)
    from vqgen.cli import main as vqgen_main

    return vqgen_main(argv)


if __name__ == "__main__":
    sys.exit(main())
