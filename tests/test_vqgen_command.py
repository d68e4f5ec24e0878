"""The `vqgen` console command keeps TensorFlow's C++ log off stderr unless `--verbose` is given."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from vqgen.data import load_images

# A line of TensorFlow's C++ log: severity letter, four digits (I0000, W0000, E0000, F0000).
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)
TINY_RUN = [
    *("--epochs", "1", "--num-embeddings", "16", "--embedding-dim", "4", "--hidden-channels", "8"),
    *("--residual-channels", "4", "--num-residual-blocks", "1", "--batch-size", "32", "--quiet"),
    *("--prior-epochs", "1", "--num-layers", "2", "--filters", "8"),
]


def run_command(args, cwd):
    """Runs `vqgen ARGS` as the installed command does, in an environment without TF_CPP_MIN_LOG_LEVEL."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-c", "import sys, vqgen_command; sys.exit(vqgen_command.main())", *args]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_default_run_prints_no_tensorflow_cpp_lines(tmp_path):
    digits = load_images("digits")
    picks = np.random.default_rng(0).choice(len(digits), 160, replace=False)
    np.savez(tmp_path / "digits.npz", images=digits.images[picks], labels=digits.labels[picks])
    result = run_command(["run", "--run", "run", "--data", "digits.npz", *TINY_RUN], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "export:" in result.stdout
    assert not CPP_LOG_LINE.findall(result.stderr), result.stderr[-3000:]


@pytest.mark.slow
def test_verbose_shows_the_cpp_log_before_the_error_line(tmp_path):
    # (the quiet default is the test above: a whole run without one C++ line)
    verbose = run_command(["sample", "--run", "missing", "--out", "x.png", "--verbose"], tmp_path)
    assert verbose.returncode == 2
    assert CPP_LOG_LINE.search(verbose.stderr)  # TensorFlow's start-up lines (oneDNN, CUDA driver)
    assert verbose.stderr.strip().splitlines()[-1].startswith("vqgen: error: Run directory missing")
