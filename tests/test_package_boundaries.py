"""The architecture, checked by importing in a fresh interpreter: `prior` imports nothing from `vqgen`,
the stage-1 models nothing from `prior`, and `import vqgen` loads neither TFDS, mlxtend nor `prior`."""

import json
import subprocess
import sys

import pytest

IMPORTED_AFTER = r"""
import importlib, json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def top_level_modules_after_importing(module):
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED_AFTER, module], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "module, must_not_import",
    [
        ("prior", {"vqgen"}),
        ("vqgen.models", {"prior"}),
        ("vqgen", {"tensorflow_datasets", "mlxtend", "prior"}),
    ],
)
def test_import_boundaries(module, must_not_import):
    imported = top_level_modules_after_importing(module)
    assert module.split(".")[0] in imported  # the probe did import something
    assert not imported & must_not_import, imported & must_not_import
