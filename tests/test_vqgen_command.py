"""The `vqgen` console command keeps TensorFlow's C++ log off stderr unless `--verbose` is given."""

import re

import pytest

# A line of TensorFlow's C++ log: severity letter, four digits (I0000, W0000, E0000, F0000).
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)


@pytest.mark.slow
def test_a_default_run_prints_no_tensorflow_cpp_lines(console_run):
    result, _ = console_run  # `vqgen run` of a tiny run, in a child process
    assert result.returncode == 0, result.stderr[-3000:]
    assert "export:" in result.stdout
    assert not CPP_LOG_LINE.findall(result.stderr), result.stderr[-3000:]


@pytest.mark.slow
def test_verbose_shows_the_cpp_log_before_the_error_line(tmp_path, run_command):
    # (the quiet default is the test above: a whole run without one C++ line)
    verbose = run_command(["sample", "--run", "missing", "--out", "x.png", "--verbose"], tmp_path)
    assert verbose.returncode == 2
    assert CPP_LOG_LINE.search(verbose.stderr)  # TensorFlow's start-up lines (oneDNN, CUDA driver)
    assert verbose.stderr.strip().splitlines()[-1].startswith("vqgen: error: Run directory missing")
