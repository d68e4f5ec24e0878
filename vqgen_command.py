"""The `vqgen` console command: TensorFlow backend, quiet start-up, then `vqgen.cli.main`.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, when it loads, and importing any `vqgen` module loads
it (the package's `__init__` imports the models), so the variable must be set before the first
`vqgen` import: this module lives outside the package for that reason. TensorFlow 2.21 also
writes a few INFO lines (oneDNN, no CUDA driver) while its libraries load, before its logging
honours the variable; those are held back here and shown only if the import fails.

The toolkit is TensorFlow-only (`tf.data`, `tf.distribute`, `tf.function` sampling loops, SavedModel
export). Keras 3 picks its backend once, when first imported, from `KERAS_BACKEND` or else
`~/.keras/keras.json`. The command sets `KERAS_BACKEND=tensorflow` before Keras loads, whatever the
environment says; `import vqgen` and `import prior` on their own run the check of
`keras_backend_check.py` instead, which raises one ImportError under another backend. No module of
either package imports this one (tests/test_package_boundaries.py).

vqgen run             # no TensorFlow C++ lines (E0000/W0000/I0000) on stderr
KERAS_BACKEND=jax vqgen run   # runs on TensorFlow all the same
KERAS_BACKEND=jax python -c "import vqgen"   # ImportError: ... set KERAS_BACKEND=tensorflow ...
vqgen run --verbose   # TensorFlow's C++ log as TensorFlow prints it
"""

import contextlib
import os
import sys
import tempfile

from keras_backend_check import KERAS_BACKEND

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
