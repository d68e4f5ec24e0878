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


# (module imported, top-level modules it must not load)
BOUNDARIES = [
    ("prior", {"vqgen"}),
    ("vqgen.models", {"prior"}),
    ("vqgen", {"tensorflow_datasets", "mlxtend", "prior"}),
]


@pytest.fixture(scope="module")
def imported_after():
    """`{module: top-level modules loaded once it is imported}`, each probed in a fresh interpreter;
    the probes run side by side."""
    probes = {
        module: subprocess.Popen(
            [sys.executable, "-c", IMPORTED_AFTER, module],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module, _ in BOUNDARIES
    }
    found = {}
    for module, probe in probes.items():
        stdout, stderr = probe.communicate(timeout=300)
        assert probe.returncode == 0, stderr[-2000:]
        found[module] = set(json.loads(stdout.strip().splitlines()[-1]))
    return found


@pytest.mark.parametrize("module, must_not_import", BOUNDARIES)
def test_import_boundaries(imported_after, module, must_not_import):
    imported = imported_after[module]
    assert module.split(".")[0] in imported  # the probe did import something
    assert not imported & must_not_import, imported & must_not_import
