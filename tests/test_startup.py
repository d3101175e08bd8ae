"""Start-up: help, the version and a usage error answer without loading the heavy libraries.

Each command runs in a fresh interpreter (`python -m importer ...`, as a user types it), and
the modules loaded by its end are read from `sys.modules`: pandas, pandera and the spreadsheet
readers take most of a second to import, which a `--help` or a mistyped option should not pay.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HEAVY = (
    "pandas",
    "pandera",
    "numpy",
    "pyarrow",
    "openpyxl",
    "python_calamine",
    "lxml",
    "isal",
)
"""Libraries only the work itself needs: reading sheets, validating, writing workbooks."""

RUN_CLI = f"""
import json, runpy, sys
report, sys.argv = sys.argv[1], ["hubspot-import", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("importer", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    code = stop.code
loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
with open(report, "w", encoding="utf-8") as fh:
    json.dump([code, loaded], fh)
"""
"""Runs the CLI as `python -m importer` does, then writes its exit code and the heavy
libraries loaded by then to the file named first."""


def _start(tmp_path: Path, *args: str) -> tuple[int, list[str], str]:
    """The exit code, the heavy libraries loaded and what was printed, for one command run in
    `tmp_path` (where `exists.yaml` exists), without a token."""
    report = tmp_path / "report.json"
    (tmp_path / "exists.yaml").write_text("", encoding="utf-8")
    (tmp_path / "data.csv").write_text("SKU\n1\n", encoding="utf-8")
    (tmp_path / "typo.yaml").write_text(
        "object_type: products\ncolumns:\n  SKU: {property: hs_sku, tpye: number}\n",
        encoding="utf-8",
    )
    (tmp_path / "plan.yaml").write_text(
        "steps:\n  - mapping: typo.yaml\n    input: data.csv\n", encoding="utf-8"
    )
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": "", "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("HUBSPOT_BASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, str(report), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert report.exists(), done.stderr
    code, heavy = json.loads(report.read_text(encoding="utf-8"))
    return code, heavy, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--help"], 0, "Usage: hubspot-import"),
        (["-h"], 0, "Usage: hubspot-import"),
        (["--version"], 0, "version"),
        (["run", "--help"], 0, "Usage: hubspot-import run"),
        (["check", "--help"], 0, "Usage: hubspot-import check"),
        (["init", "--help"], 0, "Usage: hubspot-import init"),
        (["runs", "--help"], 0, "Usage: hubspot-import runs"),
        (["show", "--help"], 0, "Usage: hubspot-import show"),
        (["undo", "--help"], 0, "Usage: hubspot-import undo"),
        (["sandbox", "--help"], 0, "Usage: hubspot-import sandbox"),
        (["run", "--no-such-option"], 2, "No such option '--no-such-option'"),
        (["no-such-command"], 2, "No such command"),
        (["show"], 2, "Missing argument 'RUN'"),
        (["init", "data.csv"], 2, "Missing option '--object'"),
        (["run", "--mode", "merge"], 2, "Invalid value for '--mode'"),
        (["run", "data.csv"], 2, "--mapping is missing"),
        (["run", "--plan", "plan.yaml", "data.csv"], 2, "give --plan alone"),
        (["run", "--plan", "plan.yaml", "--sheet", "1"], 2, "--sheet is for one sheet"),
        (
            ["run", "-m", "m.yaml", "data.csv", "--dry-run", "--forget-uncertain"],
            2,
            "--dry-run changes nothing",
        ),
        (
            ["run", "-m", "m.yaml", "data.csv", "--sandbox", "--base-url", "http://x"],
            2,
            "give one or the other",
        ),
        (["check", "-m", "m.yaml", "data.csv"], 2, "no access token"),
        (["init", "data.csv", "--object", "products", "--out", "exists.yaml"], 2, "exists;"),
        (["run", "-m", "typo.yaml", "data.csv", "--sandbox"], 2, "did you mean 'type'"),
        (["check", "-m", "typo.yaml", "data.csv", "--sandbox"], 2, "did you mean 'type'"),
        (["run", "--plan", "plan.yaml", "--sandbox"], 2, "did you mean 'type'"),
    ],
    ids=[
        "help",
        "help-short",
        "version",
        "run-help",
        "check-help",
        "init-help",
        "runs-help",
        "show-help",
        "undo-help",
        "sandbox-help",
        "unknown-option",
        "unknown-command",
        "missing-argument",
        "missing-option",
        "bad-choice",
        "no-mapping",
        "plan-and-input",
        "plan-and-sheet",
        "dry-run-and-forget",
        "sandbox-and-base-url",
        "no-token",
        "init-over-a-file",
        "mapping-mistake",
        "mapping-mistake-check",
        "plan-mapping-mistake",
    ],
)
def test_help_version_and_usage_errors_load_no_heavy_library(
    tmp_path: Path, args: list[str], code: int, said: str
) -> None:
    exit_code, heavy, printed = _start(tmp_path, *args)
    assert exit_code == code, printed
    assert said in printed
    assert heavy == [], f"`hubspot-import {' '.join(args)}` imported {', '.join(heavy)}"


def test_the_package_loads_its_public_names_when_first_used() -> None:
    """`import importer` alone is light; each public name is there when asked for."""
    code = f"""
import sys
import importer
heavy = {HEAVY!r}
assert not [m for m in heavy if m in sys.modules], sorted(m for m in heavy if m in sys.modules)
from importer import RowStatus, load_table, run_import
assert importer.run_import is run_import and callable(importer.run_import)
assert importer.RowStatus is RowStatus and importer.RowStatus("created").value == "created"
assert importer.load_table is load_table
assert set(importer.__all__) <= set(dir(importer))
for name in importer.__all__:
    getattr(importer, name)
try:
    importer.no_such_name
except AttributeError as exc:
    assert "no_such_name" in str(exc)
else:
    raise AssertionError("importer.no_such_name resolved")
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_names_type_checkers_see_are_those_loaded() -> None:
    """The `TYPE_CHECKING` imports of `importer/__init__.py` name the same modules and names
    as the table `__getattr__` loads them from; `__all__` is those and the names it imports
    at once (the errors)."""
    import importer

    tree = ast.parse((ROOT / "importer" / "__init__.py").read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    seen = {
        "." * node.level + (node.module or ""): tuple(sorted(a.name for a in node.names))
        for node in block.body
        if isinstance(node, ast.ImportFrom)
    }
    assert seen == {module: tuple(sorted(names)) for module, names in importer._HOMES.items()}
    eager = [
        a.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level
        for a in node.names
    ]
    assert eager  # the errors
    lazy = [n for names in seen.values() for n in names]
    assert sorted(importer.__all__) == sorted(eager + lazy)
