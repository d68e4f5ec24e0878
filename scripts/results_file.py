"""Write a benchmark script's table to `benchmarks/results/NAME.md`, with the machine and the command.

Every script in `scripts/` that prints a table wraps its `main()` in `recording`; what the script prints
to standard output (still shown live) becomes the body of the results file, under a header with the
date, the exact command, the machine (CPU model from /proc/cpuinfo, cores, Python, TensorFlow and
Keras versions) and the load average at start and at end, and docs/benchmarks.md is rewritten to show
it (scripts/write_benchmarks_page.py). Only a full run writes
`benchmarks/results/`; a smoke run (`--quick`) writes to a temporary folder instead, so a smoke run can
never replace a full run's figures. A run that fails (an exception, `--help`, a usage error) writes
nothing.

    if __name__ == "__main__":
        with recording("benchmark", full_run="--quick" not in sys.argv[1:]):
            main()
"""

import contextlib
import datetime
import io
import os
import re
import shlex
import sys
import tempfile
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_FOLDER = os.path.join(REPOSITORY, "benchmarks", "results")
QUICK_RESULTS_FOLDER = os.path.join(tempfile.gettempdir(), "vqgen_quick_results")


def cpu_model(cpuinfo_path="/proc/cpuinfo"):
    """The first `model name` of /proc/cpuinfo, or "unknown" where there is none.

    Args:
        cpuinfo_path: str. The file to read. Defaults to `/proc/cpuinfo`.

    Returns:
        str, e.g. "Intel(R) Xeon(R) Platinum 8488C".

    Example:
    >>> cpu_model()  # doctest: +SKIP
    'Intel(R) Xeon(R) Platinum 8488C'
    """
    try:
        with open(cpuinfo_path) as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def library_versions():
    """Python, TensorFlow and Keras versions as one string ("not installed" for a missing library)."""
    versions = [f"Python {sys.version.split()[0]}"]
    for name, module_name in (("TensorFlow", "tensorflow"), ("Keras", "keras")):
        try:
            version = __import__(module_name).__version__
        except ImportError:
            version = "not installed"
        versions.append(f"{name} {version}")
    return ", ".join(versions)


def format_load(load_average):
    """`os.getloadavg()` as "0.52, 0.60, 0.71 (1, 5, 15 min)"."""
    return ", ".join(f"{load:.2f}" for load in load_average) + " (1, 5, 15 min)"


def command_line(argv):
    """The command that ran the script, with the script's path relative to the repository."""
    script = os.path.relpath(os.path.abspath(argv[0]), REPOSITORY)
    return shlex.join(["python", script, *argv[1:]])


def results_text(name, output, command, started, load_start, load_end, seconds):
    """The results file's Markdown: a header with date, command and machine, then the script's output.

    Args:
        name: str. The script's name, e.g. "benchmark".
        output: str. What the script printed to standard output.
        command: str. The exact command.
        started: datetime.datetime. When the run started (UTC).
        load_start: tuple of 3 floats. `os.getloadavg()` at the start.
        load_end: tuple of 3 floats. `os.getloadavg()` at the end.
        seconds: float. Wall time of the run.

    Returns:
        str, ending with a newline.
    """
    header = [
        f"# {name}",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- command: `{command}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0))} usable); {library_versions()}",
        f"- load average at start: {format_load(load_start)}",
        f"- load average at end: {format_load(load_end)}",
        f"- wall time: {seconds:.0f} s",
        "",
        "## Output",
        "",
    ]
    return "\n".join(header) + "\n" + output.rstrip("\n") + "\n"


class _Tee(io.TextIOBase):
    """A text stream that writes to the console and keeps a copy."""

    def __init__(self, console):
        self.console = console
        self.copy = io.StringIO()

    def write(self, text):
        self.copy.write(text)
        return self.console.write(text)

    def flush(self):
        self.console.flush()


@contextlib.contextmanager
def recording(name, full_run, folder=None, argv=None):
    """Tees standard output inside the block and writes it as `NAME.md` when the block succeeds.

    Args:
        name: str. The results file's name, without `.md` (by convention the script's name).
        full_run: bool. True writes to `folder` (the results of record); False (a `--quick` smoke run)
            writes to a temporary folder instead.
        folder: str or None. Where a full run's file goes. Defaults to `benchmarks/results/`.
        argv: list of str or None. The command, for the header. Defaults to `sys.argv`.

    Yields:
        None.

    Example:
    >>> with recording("benchmark", full_run=False):  # doctest: +SKIP
    ...     print("| a | b |")
    """
    folder = (folder or RESULTS_FOLDER) if full_run else QUICK_RESULTS_FOLDER
    command = command_line(argv or sys.argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    start = time.perf_counter()
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield
    text = results_text(
        name,
        tee.copy.getvalue(),
        command,
        started,
        load_start,
        os.getloadavg(),
        time.perf_counter() - start,
    )
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.md")
    with open(path + ".tmp", "w") as stream:
        stream.write(text)
    os.replace(path + ".tmp", path)
    print(f"Wrote {os.path.relpath(path)}" + ("" if full_run else " (a smoke run: not a result of record)"))
    if folder == RESULTS_FOLDER:  # the docs show the latest result of every script
        from write_benchmarks_page import write_page

        print(f"Wrote {os.path.relpath(write_page())}")


def results_name(name, argv, variant_option=None):
    """The results file's name: `name`, or `name-VALUE` where the command sets `variant_option` to VALUE.

    A script measured on several inputs (`compare_fidelity.py --data photos`) keeps one results file per
    input, so a run on one never replaces the figures of another. VALUE is the option's last path
    component, lower case, with every run of other characters than letters and digits made one `_`.

    Args:
        name: str. The script's results name.
        argv: list of str. The command (`sys.argv`).
        variant_option: str or None. The option that names the input, e.g. `"--data"`.

    Returns:
        str.

    Example:
    >>> results_name("compare_fidelity", ["compare_fidelity.py", "--data", "photos:128"], "--data")
    'compare_fidelity-photos_128'
    >>> results_name("compare_fidelity", ["compare_fidelity.py", "--epochs", "3"], "--data")
    'compare_fidelity'
    """
    value = None
    for index, argument in enumerate(argv[1:], start=1):
        if variant_option and argument == variant_option and index + 1 < len(argv):
            value = argv[index + 1]
        elif variant_option and argument.startswith(variant_option + "="):
            value = argument.split("=", 1)[1]
    if value is None:
        return name
    return f"{name}-{re.sub(r'[^a-z0-9]+', '_', os.path.basename(value.rstrip('/')).lower()).strip('_')}"


def run_and_record(main, name, internal_flags=(), variant_option=None):
    """Runs a script's `main()` inside `recording`: the one line each script's `__main__` block calls.

    A run with `--quick` is a smoke run (its file goes to a temporary folder); a run with one of
    `internal_flags` is a measuring subprocess the script starts itself, whose standard output its parent
    parses, so it runs without recording. A non-zero status returned by `main` exits with it, unrecorded.

    Args:
        main: callable taking no arguments, returning None or an exit status.
        name: str. The results file's name, without `.md`.
        internal_flags: tuple of str. Options that mark a script's internal subprocess.
        variant_option: str or None. An option naming the input measured; a run that sets it writes
            `NAME-VALUE.md` (`results_name`). Defaults to None: one file.

    Example:
    >>> if __name__ == "__main__":  # doctest: +SKIP
    ...     run_and_record(main, "benchmark", internal_flags=("--quantizer-worker",))
    """
    if any(flag in sys.argv[1:] for flag in internal_flags):
        sys.exit(main())
    with recording(results_name(name, sys.argv, variant_option), full_run="--quick" not in sys.argv[1:]):
        status = main()
        if status:
            sys.exit(status)
