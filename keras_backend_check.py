"""`require_tensorflow_backend`: the check `import vqgen` and `import prior` run before Keras loads.

The toolkit is TensorFlow-only (`tf.data`, `tf.distribute`, `tf.function` sampling loops, SavedModel
export). Keras 3 picks its backend once, when first imported, from `KERAS_BACKEND` or else
`~/.keras/keras.json`. Both packages call `require_tensorflow_backend` first, which raises one
ImportError under another backend. The check lives here, outside both packages and free of their
imports, because `prior` imports nothing from `vqgen` and `import vqgen` nothing from `prior`; the
`vqgen` command (`vqgen_command.py`) reads `KERAS_BACKEND` from here too.

KERAS_BACKEND=jax python -c "import vqgen"   # ImportError: ... set KERAS_BACKEND=tensorflow ...
"""

import json
import os

# The value of `KERAS_BACKEND` the packages need (the `vqgen` command sets it before Keras loads).
KERAS_BACKEND = "tensorflow"


def configured_backend():
    """The backend Keras is configured to load, read as Keras documents it.

    `KERAS_BACKEND`, else the `"backend"` of `keras.json` in `KERAS_HOME` (`~/.keras` by default),
    else TensorFlow. Reading the configuration does not import Keras.

    Returns:
        str, e.g. "tensorflow" or "jax".

    Example:
    >>> configured_backend()  # doctest: +SKIP
    'tensorflow'
    """
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
        backend = configured_backend()
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
