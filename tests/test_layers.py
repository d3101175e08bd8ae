"""The packages of `importer/` import one way, and no modules import each other in a circle.

The stack, bottom first: `core` (the words every layer speaks: errors, row outcomes and issues,
the prepared row, HubSpot's facts); the spreadsheet, journal and HubSpot sides (`sheets`,
`state`, `api`); what the user writes (`mapping`); the stages of one run (`stages`) and the
history of runs (`history`); plans of several steps (`plans`); the command line (`cli`). The
sandbox stands on its own, on `core` alone. The imports are read from the source with `ast`,
function-level imports included, so an import made late to spare `--help` still counts.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "importer"

BELOW: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "sheets": frozenset({"core"}),
    "api": frozenset({"core"}),
    "state": frozenset({"core", "sheets"}),
    "mapping": frozenset({"core", "sheets", "api"}),
    "stages": frozenset({"core", "sheets", "api", "state", "mapping"}),
    "history": frozenset({"core", "sheets", "api", "state"}),
    "plans": frozenset({"core", "sheets", "api", "state", "mapping", "stages", "history"}),
    "sandbox": frozenset({"core"}),
    "cli": frozenset(
        {"core", "sheets", "api", "state", "mapping", "stages", "history", "plans", "sandbox"}
    ),
}
"""What each package may import besides itself. The package root (`importer/__init__.py`, the
public names) and `__main__` sit on top and may import anything; nothing imports them."""

TOP = {"importer", "importer.__main__"}


@dataclass(frozen=True)
class Import:
    source: str
    """The importing module, dotted."""
    target: str
    """The imported module (a module of ours, dotted)."""
    where: str
    """file:line, relative to the repository."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(modules: dict[str, Path]) -> list[Import]:
    found: list[Import] = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                # `from pkg import mod` imports the module; `from mod import name` the module.
                targets = [
                    f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                    for a in node.names
                ]
            for target in dict.fromkeys(targets):
                if target == "importer" or target.startswith("importer."):
                    found.append(Import(name, target, f"{where}:{node.lineno}"))
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _up_imports(imports: list[Import]) -> list[str]:
    wrong = []
    for imp in imports:
        if imp.source in TOP:
            continue
        if imp.target in TOP:
            wrong.append(f"{imp.where}: {imp.source} imports {imp.target}, the package's top")
            continue
        mine, theirs = _layer(imp.source), _layer(imp.target)
        if mine not in BELOW:
            wrong.append(f"{imp.where}: {imp.source} is in no layer (add `{mine}` to BELOW)")
        elif theirs != mine and theirs not in BELOW[mine]:
            wrong.append(
                f"{imp.where}: {imp.source} imports {imp.target}: `{theirs}` is not below "
                f"`{mine}` (it may import {', '.join(sorted(BELOW[mine])) or 'nothing of ours'})"
            )
    return wrong


def _cycles(imports: list[Import]) -> list[str]:
    """Every circle of modules (Tarjan's strongly connected components), each edge with the
    line that makes it."""
    edges: dict[str, dict[str, str]] = {}
    for imp in imports:
        if imp.source != imp.target:
            edges.setdefault(imp.source, {}).setdefault(imp.target, imp.where)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    said = []
    for component in components:
        inside = set(component)
        lines = [
            f"  {where}: {source} -> {target}"
            for source in component
            for target, where in sorted(edges.get(source, {}).items())
            if target in inside
        ]
        said.append(
            "modules importing each other: " + ", ".join(component) + "\n" + "\n".join(lines)
        )
    return said


def test_every_import_points_down_the_stack() -> None:
    wrong = _up_imports(_imports(_modules()))
    assert not wrong, "imports that point up the stack:\n" + "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle() -> None:
    cycles = _cycles(_imports(_modules()))
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize(
    ("source", "target", "said"),
    [
        ("importer.state.rundata", "importer.stages.validate", "`stages` is not below `state`"),
        ("importer.api.verify", "importer.state.journal", "`state` is not below `api`"),
        ("importer.sandbox.http", "importer.api.hubspot", "`api` is not below `sandbox`"),
        ("importer.plans.runner", "importer", "the package's top"),
    ],
    ids=["journal-names-a-stage", "client-reads-the-journal", "sandbox-climbs", "root"],
)
def test_an_import_up_the_stack_is_named_with_its_line(source: str, target: str, said: str) -> None:
    wrong = _up_imports([Import(source, target, "importer/x.py:7")])
    assert len(wrong) == 1
    assert wrong[0].startswith("importer/x.py:7: ")
    assert said in wrong[0]


def test_a_circle_is_named_with_every_line_of_it() -> None:
    said = _cycles(
        [
            Import("importer.sandbox.server", "importer.sandbox.http", "a.py:3"),
            Import("importer.sandbox.http", "importer.sandbox.associations", "b.py:4"),
            Import("importer.sandbox.associations", "importer.sandbox.server", "c.py:5"),
            Import("importer.sandbox.server", "importer.core.errors", "a.py:6"),
        ]
    )
    assert len(said) == 1
    for line in ("a.py:3", "b.py:4", "c.py:5"):
        assert line in said[0]
    assert "a.py:6" not in said[0]


MAX_MODULE_LINES = 500
MAX_LONG_FUNCTIONS = 12
"""Functions over LONG_FUNCTION lines allowed in the whole package (httpx has 8): past that a
stage no longer reads as its steps."""
LONG_FUNCTION = 60


def test_modules_stay_small_enough_to_read() -> None:
    big = {
        str(path.relative_to(ROOT)): lines
        for path in _modules().values()
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert not big, f"modules over {MAX_MODULE_LINES} lines (split them): {big}"


def test_few_functions_are_long() -> None:
    long = sorted(
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)"
        for path in _modules().values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (lines := (node.end_lineno or node.lineno) - node.lineno + 1) > LONG_FUNCTION
    )
    assert len(long) <= MAX_LONG_FUNCTIONS, (
        f"{len(long)} functions over {LONG_FUNCTION} lines, at most {MAX_LONG_FUNCTIONS}:\n"
        + "\n".join(long)
    )
