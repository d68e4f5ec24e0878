"""Runs every Python and shell example of README.md and docs/*.md, and checks what they say they print.

Each page runs in a fresh temporary folder, its blocks in order:

- ```python blocks are executed in this process, in one namespace per page; a line
  `print(...)  # -> TEXT` states its output, and the printed lines must contain those TEXTs in order.
- ```bash / ```sh blocks run in bash (`set -eo pipefail`) and must exit 0.
- ```console blocks hold `$ command` lines, each followed by its exact output.

Markers, written as HTML comments so that they do not show in the rendered page:

- `<!-- not run here: REASON -->` just before a block skips it; the page must also say, visibly, between
  the marker and the block, "Not run by the tests: ...". Every other block runs.
- `<!-- docs-test: tiny -->` just before a block runs its `vqgen train`, `train-prior`, `run` and
  `evaluate` commands with `TINY_OPTIONS` put before the block's own options (which win): one epoch of
  tiny models instead of the minutes the documented defaults take.
- `<!-- docs-test: run verbatim by tests/test_serving_examples.py -->` just before a block of
  `saved_model_cli` commands hands it to that test, which runs them verbatim on the SavedModels of a
  conditional and an unconditional `vqgen run` and compares what they write with the in-process
  models. The block must be exactly one of the command lists of `tests/serving_examples.py`, so
  nothing unchecked hides behind the marker, and it is not run a second time here.
- `<!-- docs-test: uses the shared tiny run as runs/digits -->` anywhere in a page copies one tiny
  `vqgen run` (trained once per module by the `shared_run` fixture, which is how `vqgen run` itself is
  tested here) to `runs/digits` before the page runs; getting-started's `vqgen run --run runs/digits`
  then finds both stages finished, skips them (as it does after a crash) and samples and exports.

The whole file costs about as much as ten `vqgen` processes (each imports TensorFlow), so pages
share that run rather than train their own.
"""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys

import pytest
import serving_examples  # tests/ is on sys.path (pytest's default prepend import mode)

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(
    os.path.join("docs", name)
    for name in os.listdir(os.path.join(REPOSITORY, "docs"))
    if name.endswith(".md")
)
RUN_LANGUAGES = ("python", "bash", "sh", "console")
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"<!-- not run here: (.+?) -->")
VISIBLE_REASON = "Not run by the tests:"
TINY = "<!-- docs-test: tiny -->"
SHARED_RUN = "<!-- docs-test: uses the shared tiny run as runs/digits -->"
SERVING_TEST = "<!-- docs-test: run verbatim by tests/test_serving_examples.py -->"
# The blocks SERVING_TEST may mark: the command lists tests/test_serving_examples.py runs verbatim.
SERVING_TEST_BLOCKS = (
    "\n".join(serving_examples.CONDITIONAL_COMMANDS),
    "\n".join(serving_examples.UNCONDITIONAL_COMMANDS),
)
STATED_OUTPUT = re.compile(r"^\s*print\(.*\)\s*#\s*->\s*(.+?)\s*$")
MARKER_DISTANCE = 6  # a marker applies to a block that opens at most this many lines below it

# One epoch of tiny models: what `<!-- docs-test: tiny -->` adds to a block's vqgen commands.
TINY_STAGE1 = (
    "--quiet --epochs 1 --batch-size 128 --hidden-channels 16 --residual-channels 8 "
    "--num-residual-blocks 1 --num-embeddings 32 --embedding-dim 8"
)
TINY_PRIOR = {
    "pixelcnn": "--filters 16",
    "transformer": "--transformer-num-layers 1 --transformer-hidden-dim 16 --transformer-num-heads 2 "
    "--transformer-intermediate-dim 32",
    "maskgit": "--maskgit-num-layers 1 --maskgit-hidden-dim 16 --maskgit-num-heads 2 "
    "--maskgit-intermediate-dim 32",
}
TINY_PRIOR_TRAINING = "--quiet --prior-epochs 1 --prior-batch-size 128"
TINY_EVALUATE = "--samples 10 --classifier-epochs 1"
TINY_FUNCTION = f"""
vqgen() {{
    local command=$1 prior=pixelcnn previous= argument
    shift
    for argument in "$@"; do
        if [ "$previous" = --prior ]; then prior=$argument; fi
        previous=$argument
    done
    case $prior in
        pixelcnn) prior="{TINY_PRIOR["pixelcnn"]}" ;;
        transformer) prior="{TINY_PRIOR["transformer"]}" ;;
        maskgit) prior="{TINY_PRIOR["maskgit"]}" ;;
    esac
    case $command in
        train) command vqgen train {TINY_STAGE1} "$@" ;;
        train-prior) command vqgen train-prior {TINY_PRIOR_TRAINING} $prior "$@" ;;
        run) command vqgen run {TINY_STAGE1} {TINY_PRIOR_TRAINING} $prior "$@" ;;
        evaluate) command vqgen evaluate {TINY_EVALUATE} "$@" ;;
        *) command vqgen "$command" "$@" ;;
    esac
}}
"""


class Block:
    """One fenced code block of a page, with the markers that apply to it."""

    def __init__(self, page, line, language, code, not_run_reason, tiny, serving_test=False):
        self.page, self.line, self.language, self.code = page, line, language, code
        self.not_run_reason, self.tiny, self.serving_test = not_run_reason, tiny, serving_test

    def __repr__(self):
        return f"{self.page}:{self.line} ({self.language})"


def page_blocks(page, text):
    """The fenced blocks of a page in order, each with its markers.

    Raises:
        AssertionError: a "not run here" marker without the visible "Not run by the tests:" line.
    """
    lines = text.split("\n")
    blocks, index, last_end = [], 0, 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start = index
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
        before = lines[max(last_end, start - MARKER_DISTANCE) : start]
        reasons = [match.group(1) for line in before for match in [NOT_RUN.search(line)] if match]
        if reasons:
            after_marker = "\n".join(before[[bool(NOT_RUN.search(line)) for line in before].index(True) :])
            assert VISIBLE_REASON in after_marker, (
                f"{page}:{start + 1}: a block marked 'not run here' needs the visible line "
                f"'*{VISIBLE_REASON} {reasons[0]}*' between the marker and the block"
            )
        blocks.append(
            Block(
                page,
                start + 1,
                fence.group(1),
                "\n".join(lines[start + 1 : end]),
                reasons[0] if reasons else None,
                any(TINY in line for line in before),
                any(SERVING_TEST in line for line in before),
            )
        )
        index = last_end = end + 1
    return blocks


def stated_outputs(code):
    """The TEXTs of the block's `print(...)  # -> TEXT` lines, in order."""
    return [match.group(1) for line in code.split("\n") for match in [STATED_OUTPUT.match(line)] if match]


def contains_in_order(lines, expected):
    """True when `expected` is a subsequence of `lines` (each compared with its ends stripped)."""
    remaining = iter(line.strip() for line in lines)
    return all(any(line == want for line in remaining) for want in expected)


def console_steps(code):
    """A ```console block as (command, expected output lines) pairs."""
    steps = []
    for line in code.split("\n"):
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"a console block must start with '$ command': {line!r}")
    return steps


def run_shell(script, folder, tiny):
    """Runs `script` in bash inside `folder`; returns the completed process (stdout and stderr text)."""
    preamble = "set -eo pipefail\n" + (TINY_FUNCTION if tiny else "")
    return subprocess.run(
        ["bash", "-c", preamble + script],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "100"},
    )


def run_python(block, namespace):
    """Executes a ```python block in `namespace` (the page's) and returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block.code, f"{block.page}:{block.line}", "exec"), namespace)
    return printed.getvalue()


def uses_shared_run(page):
    """True when the page asks for the shared tiny run."""
    with open(os.path.join(REPOSITORY, page)) as stream:
        return SHARED_RUN in stream.read()


def run_page(page, folder, shared_run):
    """Runs every unmarked block of `page` in `folder`; returns the blocks run (or handed to
    tests/test_serving_examples.py) and those skipped.

    Raises:
        AssertionError: a block fails, prints other than it states, or is handed to the serving
            test without being one of the command lists that test runs.
    """
    with open(os.path.join(REPOSITORY, page)) as stream:
        text = stream.read()
    if SHARED_RUN in text:
        shutil.copytree(shared_run, os.path.join(folder, "runs", "digits"))
    ran, skipped = [], []
    namespace = {"__name__": "__docs_example__"}
    for block in page_blocks(page, text):
        if block.language not in RUN_LANGUAGES:
            continue
        if block.not_run_reason:
            skipped.append(block)
            continue
        if block.serving_test:
            assert block.code in SERVING_TEST_BLOCKS, (
                f"{block}: marked as run by tests/test_serving_examples.py, but it is not one of the "
                "command lists of tests/serving_examples.py"
            )
        elif block.language == "python":
            printed = run_python(block, namespace)
            expected = stated_outputs(block.code)
            assert contains_in_order(printed.split("\n"), expected), (
                f"{block}: stated outputs {expected} not printed in that order; printed:\n{printed}"
            )
        elif block.language == "console":
            for command, expected in console_steps(block.code):
                finished = run_shell(command, folder, block.tiny)
                assert finished.returncode == 0, f"{block}: `{command}` failed:\n{finished.stderr[-3000:]}"
                got = finished.stdout.rstrip("\n").split("\n")
                assert [line.rstrip() for line in got] == [line.rstrip() for line in expected], (
                    f"{block}: `{command}` printed\n{finished.stdout}\ninstead of\n" + "\n".join(expected)
                )
        else:
            finished = run_shell(block.code, folder, block.tiny)
            assert finished.returncode == 0, (
                f"{block} failed (exit {finished.returncode}):\n"
                f"{finished.stdout[-2000:]}\n{finished.stderr[-3000:]}"
            )
        ran.append(block)
    return ran, skipped


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """One tiny `vqgen run` on the digits, copied into the pages that use it."""
    path = tmp_path_factory.mktemp("shared") / "digits"
    finished = run_shell(f"vqgen run --run {path}", tmp_path_factory.getbasetemp(), tiny=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return path


@contextlib.contextmanager
def isolated_imports(folder):
    """Restores `sys.path` and forgets modules imported from `folder` (a page's exports) afterwards."""
    path = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = path
        for name, module in list(sys.modules.items()):
            if os.path.realpath(getattr(module, "__file__", None) or "/").startswith(
                os.path.realpath(folder)
            ):
                del sys.modules[name]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page, tmp_path, monkeypatch, request):
    """Every unmarked Python and shell block of the page runs, and its stated outputs are printed."""
    shared_run = request.getfixturevalue("shared_run") if uses_shared_run(page) else None
    monkeypatch.chdir(tmp_path)
    with isolated_imports(tmp_path):
        ran, skipped = run_page(page, str(tmp_path), shared_run)
    with open(os.path.join(REPOSITORY, page)) as stream:
        runnable = [b for b in page_blocks(page, stream.read()) if b.language in RUN_LANGUAGES]
    assert len(ran) + len(skipped) == len(runnable)
    assert all(block.not_run_reason for block in skipped)


def test_markers_are_parsed():
    """A marked block is skipped with its reason, a tiny block is flagged, and a hidden reason is refused."""
    text = (
        "<!-- not run here: needs a server -->\n*Not run by the tests: needs a server.*\n\n"
        "```bash\ncurl x\n```\n"
        "<!-- docs-test: tiny -->\n```bash\nvqgen train --run r\n```\n```python\nprint(1)  # -> 1\n```\n"
    )
    blocks = page_blocks("page.md", text)
    assert [(b.language, b.not_run_reason, b.tiny) for b in blocks] == [
        ("bash", "needs a server", False),
        ("bash", None, True),
        ("python", None, False),
    ]
    assert stated_outputs(blocks[2].code) == ["1"]
    with pytest.raises(AssertionError, match="visible line"):
        page_blocks("page.md", "<!-- not run here: hidden -->\n```bash\ncurl x\n```\n")


def test_only_the_serving_tests_command_lists_can_be_handed_to_it(tmp_path, monkeypatch):
    """A block marked as run by tests/test_serving_examples.py is not run here, and the marker is
    refused on a block that is not exactly one of that test's command lists."""
    monkeypatch.chdir(tmp_path)
    handed = f"{SERVING_TEST}\n```bash\n{SERVING_TEST_BLOCKS[1]}\n```\n"
    (tmp_path / "handed.md").write_text(handed)
    ran, skipped = run_page(str(tmp_path / "handed.md"), str(tmp_path), shared_run=None)
    assert [block.serving_test for block in ran] == [True] and skipped == []
    assert not (tmp_path / "out").exists()  # the command was not run here
    changed = handed.replace("seed=7", "seed=8")
    (tmp_path / "changed.md").write_text(changed)
    with pytest.raises(AssertionError, match="not one of the command lists"):
        run_page(str(tmp_path / "changed.md"), str(tmp_path), shared_run=None)


def test_a_broken_example_fails(tmp_path, monkeypatch):
    """The runner fails on a wrong stated output, a failing shell command and a wrong console output."""
    monkeypatch.chdir(tmp_path)
    pages = {
        "wrong_output.md": "```python\nprint(2 + 2)  # -> 5\n```\n",
        "failing_shell.md": "```bash\nfalse\n```\n",
        "wrong_console.md": "```console\n$ echo a\nb\n```\n",
    }
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(AssertionError):
            run_page(str(tmp_path / name), str(tmp_path), shared_run=None)
    (tmp_path / "right.md").write_text("```python\nprint(2 + 2)  # -> 4\n```\n```console\n$ echo a\na\n```\n")
    ran, skipped = run_page(str(tmp_path / "right.md"), str(tmp_path), shared_run=None)
    assert (len(ran), skipped) == (2, [])
