"""The generated documentation pages are current, and the scripts that write them work.

docs/cli.md must equal what the argument parser prints (and, for one command, what the installed
`vqgen COMMAND --help` prints with the same COLUMNS); docs/benchmarks.md must equal the page made from
benchmarks/results/; the results helper writes the machine, the command and the table.
"""

import contextlib
import importlib.util
import os
import re
import subprocess
import sys

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPOSITORY, "scripts")


def load_script(name):
    """Imports scripts/NAME.py as a module (scripts/ is not a package), with scripts/ importable."""
    if SCRIPTS not in sys.path:
        sys.path.insert(0, SCRIPTS)
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def page_section(page_text, heading):
    """The text of the first ```text block under `## heading`."""
    after = page_text.split(f"\n## {heading}\n", 1)[1]
    return after.split("```text\n", 1)[1].split("\n```", 1)[0]


def test_cli_page_is_current():
    """docs/cli.md is what scripts/write_cli_reference.py makes from vqgen.cli.build_parser() now."""
    reference = load_script("write_cli_reference")
    with open(reference.CLI_PAGE) as stream:
        page = stream.read()
    assert page == reference.cli_reference(), (
        "docs/cli.md is stale: run python scripts/write_cli_reference.py"
    )
    names = re.findall(r"^## vqgen (\S+)$", page, flags=re.MULTILINE)
    assert names == ["train", "train-prior", "sample", "export", "evaluate", "encode", "run"]


@pytest.mark.slow
def test_cli_page_equals_the_command_help():
    """`COLUMNS=100 vqgen sample --help`, run as a user would, prints exactly the page's section."""
    reference = load_script("write_cli_reference")
    finished = subprocess.run(
        ["vqgen", "sample", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": str(reference.HELP_COLUMNS)},
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    with open(reference.CLI_PAGE) as stream:
        assert finished.stdout.rstrip("\n") == page_section(stream.read(), "vqgen sample")


def test_benchmarks_page_is_current():
    """docs/benchmarks.md lists every recording script and shows every file of benchmarks/results/."""
    page_writer = load_script("write_benchmarks_page")
    with open(page_writer.BENCHMARKS_PAGE) as stream:
        assert stream.read() == page_writer.benchmarks_page(), (
            "docs/benchmarks.md is stale: run python scripts/write_benchmarks_page.py"
        )
    main_block_call = re.compile(
        r'^if __name__ == "__main__":\n.*\n\n    run_and_record\(main, ', re.MULTILINE
    )
    recording = sorted(
        name[:-3]
        for name in os.listdir(SCRIPTS)
        if name.endswith(".py") and main_block_call.search(open(os.path.join(SCRIPTS, name)).read())
    )
    assert len(recording) == 18
    assert page_writer.recorded_scripts() == recording


def test_benchmarks_page_shows_a_result(tmp_path):
    """A results file appears on the page with its headings moved down and a link from the index."""
    page_writer = load_script("write_benchmarks_page")
    (tmp_path / "benchmark.md").write_text(
        "# benchmark\n\n- date: today\n\n## Output\n\n| a |\n|---|\n| 1 |\n"
    )
    (tmp_path / "benchmark_export.md").write_text("# benchmark_export\n\n- date: today\n")
    (tmp_path / "benchmark-photos_128.md").write_text("# benchmark-photos_128\n\n| b |\n|---|\n| 2 |\n")
    page = page_writer.benchmarks_page(results_folder=str(tmp_path))
    # a file per input measured, after the script's own file, in the same row; not taken for another script
    assert (
        "| [`benchmarks/results/benchmark.md`](#benchmark), "
        "[`benchmarks/results/benchmark-photos_128.md`](#benchmark-photos_128) |"
    ) in page
    assert "\n### benchmark-photos_128\n" in page and "| 2 |" in page
    assert page.index("\n### benchmark\n") < page.index("\n### benchmark-photos_128\n")
    # the toc extension's anchor keeps the underscore (mkdocs --strict fails on a missing anchor)
    assert "[`benchmarks/results/benchmark_export.md`](#benchmark_export)" in page
    assert "\n### benchmark\n" in page and "\n#### Output\n" in page and "| 1 |" in page
    assert (
        page.count("not run since results files were introduced") == len(page_writer.recorded_scripts()) - 2
    )


def test_results_file_records_machine_command_and_table(tmp_path, monkeypatch, capsys):
    """The helper writes the printed table with the date, command, CPU model, cores and load averages."""
    results = load_script("results_file")
    monkeypatch.setattr(results, "QUICK_RESULTS_FOLDER", str(tmp_path / "quick"))
    argv = [os.path.join(SCRIPTS, "benchmark.py"), "--repeats", "2"]
    with results.recording("demo", full_run=True, folder=str(tmp_path / "full"), argv=argv):
        print("| setting | value |\n|---|---|\n| x | 1.5 |")
    assert "| x | 1.5 |" in capsys.readouterr().out  # still shown live
    text = (tmp_path / "full" / "demo.md").read_text()
    with open("/proc/cpuinfo") as cpuinfo:
        model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    assert text.startswith("# demo\n")
    assert "- command: `python scripts/benchmark.py --repeats 2`" in text
    assert f"- machine: {model}, {os.cpu_count()} logical cores" in text
    assert re.search(r"- load average at start: [\d.]+, [\d.]+, [\d.]+ \(1, 5, 15 min\)", text)
    assert re.search(r"- load average at end: [\d.]+, [\d.]+, [\d.]+", text)
    assert re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert text.endswith("## Output\n\n| setting | value |\n|---|---|\n| x | 1.5 |\n")
    assert not (tmp_path / "quick").exists()

    # A smoke run goes elsewhere; a failed run writes nothing.
    with results.recording("demo", full_run=False, folder=str(tmp_path / "full"), argv=argv):
        print("smoke")
    assert (tmp_path / "quick" / "demo.md").read_text().endswith("smoke\n")
    assert (tmp_path / "full" / "demo.md").read_text() == text
    with pytest.raises(RuntimeError):
        with results.recording("failed", full_run=True, folder=str(tmp_path / "full"), argv=argv):
            raise RuntimeError("measurement failed")
    assert not (tmp_path / "full" / "failed.md").exists()


def test_results_name_gives_each_input_its_file():
    """A script measured on several inputs writes one file per input, named from the option's value."""
    results = load_script("results_file")
    name = "compare_fidelity"
    assert results.results_name(name, ["s.py", "--epochs", "3"], "--data") == name
    assert results.results_name(name, ["s.py", "--data", "photos:128"], "--data") == f"{name}-photos_128"
    assert results.results_name(name, ["s.py", "--data=/data/My Set/"], "--data") == f"{name}-my_set"
    assert results.results_name(name, ["s.py", "--data", "photos"], None) == name


def test_run_and_record_treats_quick_and_internal_runs_apart(tmp_path, monkeypatch):
    """`--quick` writes to the temporary folder, an internal worker writes nothing, a full run writes."""
    results = load_script("results_file")
    monkeypatch.setattr(results, "RESULTS_FOLDER", str(tmp_path / "full"))
    monkeypatch.setattr(results, "QUICK_RESULTS_FOLDER", str(tmp_path / "quick"))
    for argv in (["demo.py", "--quick"], ["demo.py", "--worker", "x"]):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) if "--worker" in argv else contextlib.nullcontext():
            results.run_and_record(lambda: print("table"), "demo", internal_flags=("--worker",))
    assert os.listdir(tmp_path) == ["quick"]
    monkeypatch.setattr(results, "recording", _recording_into(results, tmp_path / "elsewhere"))
    monkeypatch.setattr(sys, "argv", ["demo.py"])
    results.run_and_record(lambda: print("table"), "demo")
    assert (tmp_path / "elsewhere" / "demo.md").read_text().endswith("table\n")


def _recording_into(results, folder):
    """`results.recording` with a full run's folder replaced (so the test does not rewrite the docs page)."""
    original = results.recording

    def recording(name, full_run):
        assert full_run
        return original(name, full_run, folder=str(folder))

    return recording


def test_griffe_example_sections():
    """The docs build reads Keras-style `Example:` sections as indented `Examples:` sections."""
    extension = load_script("griffe_example_sections")
    docstring = "Sum.\n\nArgs:\n    a: int.\n\nExample:\n>>> 1 + 1\n2\n\nReturns:\n    int."
    assert extension.with_example_sections(docstring) == (
        "Sum.\n\nArgs:\n    a: int.\n\nExamples:\n    >>> 1 + 1\n    2\n\nReturns:\n    int."
    )
