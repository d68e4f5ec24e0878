"""The architecture. Checked by importing in a fresh interpreter: `prior` imports nothing from `vqgen`,
the stage-1 models nothing from `prior`, and `import vqgen` loads neither TFDS, mlxtend nor `prior`.
Checked from the import graph (every module parsed with `ast`, imports inside functions included): no
module of either package imports the command line (`vqgen_command`, `vqgen.cli`), the top-level helper
modules import neither package, no import cycle among the library's modules, and no module imports
another module's private (`_name`) names."""

import ast
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("vqgen", "prior")
# The top-level modules beside the packages: the console command and the helpers both packages share.
TOP_LEVEL_MODULES = ("keras_backend_check", "tf_distribute_helpers", "vqgen_command")
COMMAND_LINE = {"vqgen_command", "vqgen.cli"}
DESIGN_NOTE = ROOT / "docs" / "design.md"
GRAPH_MARKER = "<!-- import-graph"

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


def module_files(root, packages, top_level_modules):
    """`{module name: path}` of every module of `packages` (folders under `root`) and `top_level_modules`."""
    files = {name: root / f"{name}.py" for name in top_level_modules}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imports_of(name, path, modules):
    """The imports of module `name` (file `path`), as `(imported module, imported names)` pairs.

    Every `import` and `from ... import` statement counts, wherever it is (module level, inside a
    function, under `if`). Only modules in `modules` are kept: `from vqgen import data` imports the
    module `vqgen.data`; `from vqgen.settings import X` imports `vqgen.settings` and the name `X`.
    """
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names if alias.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import, resolved against the importing package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:  # a submodule
                    found.append((f"{base}.{alias.name}", ()))
                elif base in modules:
                    found.append((base, (alias.name,)))
    return found


def import_graph(files):
    """`{module: set of library modules it imports}` for the modules `files` (see `module_files`)."""
    return {name: {imported for imported, _ in imports_of(name, path, files)} for name, path in files.items()}


def import_cycles(graph):
    """The import cycles of `graph`: its strongly connected components with more than one module, or a
    module importing itself (Tarjan's algorithm, iterative). Each is a sorted list of module names."""
    index, lowlink, on_stack, stack, cycles = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = lowlink[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    index[successor] = lowlink[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                elif successor in on_stack:
                    lowlink[node] = min(lowlink[node], index[successor])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
            if lowlink[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    cycles.append(sorted(component))
    return cycles


@pytest.fixture(scope="module")
def library():
    """`(files, graph)` of the library: both packages and the top-level modules."""
    files = module_files(ROOT, PACKAGES, TOP_LEVEL_MODULES)
    return files, import_graph(files)


def test_the_graph_holds_every_module_and_known_edges(library):
    files, graph = library
    assert {"vqgen", "vqgen.cli", "vqgen.runs.train_prior", "prior.registry", "vqgen_command"} <= set(files)
    assert "prior.registry" in graph["vqgen.runs.train_prior"]  # a module-level import
    assert "vqgen.cli" in graph["vqgen_command"]  # an import inside `main`
    assert "vqgen.export" in graph["vqgen"]  # an import inside `__getattr__`


def test_no_module_of_the_packages_imports_the_command_line(library):
    _, graph = library
    offenders = {
        (module, imported)
        for module, imports in graph.items()
        if module.split(".")[0] in PACKAGES
        for imported in imports & COMMAND_LINE
        if module != imported
    }
    assert not offenders, offenders


def test_the_top_level_helpers_import_neither_package(library):
    _, graph = library
    for module in set(TOP_LEVEL_MODULES) - {"vqgen_command"}:
        assert not {imported.split(".")[0] for imported in graph[module]} & set(PACKAGES), module


def test_no_import_cycle_among_the_library_modules(library):
    _, graph = library
    assert import_cycles(graph) == []


def test_no_module_imports_another_modules_private_names(library):
    files, _ = library
    private = [
        f"{module} imports {name} from {imported}"
        for module, path in files.items()
        for imported, names in imports_of(module, path, files)
        for name in names
        if imported != module and name.startswith("_") and not name.endswith("__")
    ]
    assert not private, private


def code_map_group(module):
    """The group of `module` in the design note's import list (docs/design.md, "Who imports whom")."""
    parts = module.split(".")
    if parts[0] == "prior":
        return module if module in ("prior", "prior.registry", "prior.settings") else "prior.*"
    if module in ("vqgen.runs.atomic_file", "vqgen.runs.write_error"):
        return "vqgen.runs.atomic_file"
    if parts[0] == "vqgen" and len(parts) > 1 and parts[1] in ("data", "models", "evaluation", "runs"):
        return f"vqgen.{parts[1]}.*"
    return module


def design_note_graph(text):
    """`{group: set of groups}` from the fenced block after the import-graph marker of the design note."""
    block = text.split(GRAPH_MARKER, 1)[1].split("```text", 1)[1].split("```", 1)[0]
    graph = {}
    for line in block.strip().splitlines():
        group, imported = (part.strip() for part in line.split("->"))
        graph[group] = set() if imported == "(nothing)" else {name.strip() for name in imported.split(",")}
    return graph


def test_the_design_notes_code_map_matches_the_import_graph(library):
    _, graph = library
    grouped = {code_map_group(module): set() for module in graph}
    for module, imports in graph.items():
        grouped[code_map_group(module)] |= {code_map_group(name) for name in imports} - {
            code_map_group(module)
        }
    assert design_note_graph(DESIGN_NOTE.read_text(encoding="utf-8")) == grouped


def test_the_cycle_check_finds_a_cycle_through_an_import_inside_a_function(tmp_path):
    # a -> b at module level, b -> c inside a function, c -> a in a relative import
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def late():\n    import pkg.c\n")
    (package / "c.py").write_text("from .a import _private\n")
    (package / "d.py").write_text("import pkg.a\n")  # imports into the cycle, not part of it
    files = module_files(tmp_path, ["pkg"], [])
    graph = import_graph(files)
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert import_cycles({"x": {"x"}}) == [["x"]] and import_cycles({"x": {"y"}, "y": set()}) == []
    assert imports_of("pkg.c", package / "c.py", files) == [("pkg.a", ("_private",))]
