"""`import vqgen` / `import prior` under another Keras backend: one ImportError naming the fix
(`keras_backend_check.require_tensorflow_backend`), each in a fresh interpreter (jax and torch are not
installed here, so Keras itself cannot load them)."""

import json
import os
import subprocess
import sys

import pytest


def import_in_child(package, **environment):
    """Imports `package` in a fresh interpreter with `environment` on top of ours (KERAS_BACKEND unset)."""
    env = {name: value for name, value in os.environ.items() if name != "KERAS_BACKEND"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", **environment)
    return subprocess.run(
        [sys.executable, "-c", f"import {package}"], env=env, capture_output=True, text=True, timeout=120
    )


def error_lines(stderr):
    """The lines of a traceback that name an exception (`SomethingError: ...`)."""
    return [line for line in stderr.splitlines() if line.split(":")[0].endswith("Error")]


@pytest.mark.parametrize("package", ["vqgen", "prior"])
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_another_backend_in_the_environment_raises_one_import_error(package, backend):
    result = import_in_child(package, KERAS_BACKEND=backend)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [result.stderr.strip().splitlines()[-1]], result.stderr[-3000:]
    assert "During handling" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and "KERAS_BACKEND=tensorflow" in last and repr(backend) in last


def test_another_backend_in_keras_json_raises_the_same_import_error(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax", "floatx": "float32"}))
    result = import_in_child("vqgen", KERAS_HOME=str(tmp_path))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and "KERAS_BACKEND=tensorflow" in last and "'jax'" in last
