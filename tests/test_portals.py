"""The journal belongs to a portal: every portal of a region answers at one base URL, and only
the token tells them apart. Also: undo resumes, a 404 mid-run fails its batch, errors stay in
the tree and the token stays out of every file."""

from __future__ import annotations

import ast
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from importer import HubSpotImportError, RunOptions
from importer.sandbox import Fault, Sandbox
from importer.state.journal import journal_path

from .conftest import CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]
TEST_TOKEN, PROD_TOKEN = "pat-test-portal", "pat-production"
MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""
ROOT = Path(__file__).resolve().parent.parent


def catalogue(path: Path, n: int, name: str = "Product") -> Path:
    return write_csv(path, [["SKU", "Name"], *[[f"{i:05d}", f"{name} {i}"] for i in range(n)]])


@pytest.fixture
def two_portals(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """One base URL, two portals: a developer test portal and production."""
    return make_sandbox(
        portals={TEST_TOKEN: 111, PROD_TOKEN: 222},
        account_types={111: "DEVELOPER_TEST", 222: "STANDARD"},
    )


def run_as(
    run_cli: Runner, monkeypatch: pytest.MonkeyPatch, token: str, *args: str | Path
) -> CliRun:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", token)
    return run_cli("run", *args)


def test_a_rehearsal_in_a_test_portal_does_not_stand_for_production(
    run_cli: Runner, two_portals: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = catalogue(tmp_path / "c.csv", 5)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    common = ("-m", mapping, data, "--base-url", two_portals.url, "--state-dir", state)
    rehearsal = run_as(run_cli, monkeypatch, TEST_TOKEN, *common, "--out", tmp_path / "t.xlsx")
    assert rehearsal.out.startswith("products: 5 rows: 5 created.")
    assert "portal 111 is a DEVELOPER_TEST account, not production" in rehearsal.err
    production = run_as(run_cli, monkeypatch, PROD_TOKEN, *common, "--out", tmp_path / "p.xlsx")
    assert production.code == 0
    assert production.out.startswith("products: 5 rows: 5 created.")  # not "5 unchanged"
    assert "not production" not in production.err
    assert len(two_portals.tenant(111).records("products")) == 5
    assert len(two_portals.tenant(222).records("products")) == 5
    prod_ids = {r["id"] for r in two_portals.tenant(222).records("products")}
    assert {r["hubspot_id"] for r in read_sheet(tmp_path / "p.xlsx")} == prod_ids
    summary = {
        row[0]: row[1]
        for row in __import__("openpyxl")
        .load_workbook(tmp_path / "p.xlsx")["Summary"]
        .iter_rows(values_only=True)
        if row[0]
    }
    assert summary["Portal"] == "222 (STANDARD)"

    # Each portal's journal is its own: tonight's reruns are unchanged in both.
    for token, out in ((TEST_TOKEN, "t2"), (PROD_TOKEN, "p2")):
        again = run_as(run_cli, monkeypatch, token, *common, "--out", tmp_path / f"{out}.xlsx")
        assert again.out.startswith("products: 5 rows: 5 unchanged."), again.err
    assert journal_path(state, two_portals.url, "products", 111).exists()
    assert journal_path(state, two_portals.url, "products", 222).exists()
    listed = run_cli("runs", "--state-dir", state).out
    assert "portal 111 (DEVELOPER_TEST)" in listed
    assert "portal 222 (STANDARD)" in listed


def test_the_portal_is_asked_once_per_token_and_the_token_is_kept_nowhere(
    run_cli: Runner, two_portals: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = catalogue(tmp_path / "c.csv", 3)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    common = ("-m", mapping, data, "--base-url", two_portals.url, "--state-dir", state)
    for n in range(2):
        run_as(run_cli, monkeypatch, PROD_TOKEN, *common, "--out", tmp_path / f"{n}.xlsx")
    asked = [r for r in two_portals.received if r.path.endswith("/details")]
    assert len(asked) == 1
    for path in [*state.rglob("*"), *tmp_path.glob("*.xlsx")]:
        if path.is_file():
            assert PROD_TOKEN.encode() not in path.read_bytes(), path
    assert PROD_TOKEN not in repr(
        RunOptions(input_file=data, mapping_file=mapping, token=PROD_TOKEN)
    )


def _old_journal(state: Path, url: str, portal: int | None) -> Path:
    """A journal as an earlier version kept it: per base URL, with one row synced."""
    path = journal_path(state, url, "products")
    path.parent.mkdir(parents=True, exist_ok=True)
    from importer.state.journal import Journal

    journal = Journal(path)
    if portal is not None:
        journal.set_meta("portal", f'{{"portalId": {portal}, "uiDomain": "app.hubspot.com"}}')
    journal.close()
    return path


def test_a_journal_kept_per_base_url_moves_to_its_portal(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    old = _old_journal(state, sandbox.url, sandbox.portal.portal_id)
    result = run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING), catalogue(tmp_path / "c.csv", 2),
        "--base-url", sandbox.url, "--state-dir", state, "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 0
    new = journal_path(state, sandbox.url, "products", sandbox.portal.portal_id)
    assert f"moved the journal {old} to {new}" in result.err
    assert not old.exists()
    assert old.with_name(f"{old.name}.moved-to-portal{sandbox.portal.portal_id}").exists()


def test_a_journal_that_does_not_say_its_portal_is_left_alone(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    old = _old_journal(state, sandbox.url, None)
    result = run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING), catalogue(tmp_path / "c.csv", 2),
        "--base-url", sandbox.url, "--state-dir", state,
    )  # fmt: skip
    assert result.code == 2
    assert "does not say which portal it belongs to; it was left alone" in result.message
    assert "If it is portal 4242424's, move it to" in result.message
    assert old.exists()
    assert sandbox.records("products") == []


# --- undo resumes ---------------------------------------------------------------------------------


def test_an_undo_stopped_by_the_daily_limit_is_finished_by_the_next(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    run = run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING),
        catalogue(tmp_path / "c.csv", 150), "--base-url", sandbox.url, "--state-dir", state,
        "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert run.code == 0
    (run_id,) = [line.split()[0] for line in run_cli("runs", "--state-dir", state).out.split("\n")
                 if " products " in line]  # fmt: skip
    # Undo reads the 150 records back (two batch reads), archives one batch, then it is spent.
    sandbox.config.daily_limit = len(sandbox.received) + 3
    stopped = run_cli("undo", run_id, "--state-dir", state, "--yes", "--base-url", sandbox.url)
    assert stopped.code == 1
    assert "The undo stopped with 50 of 150 records still to archive" in stopped.message
    assert len(sandbox.records("products")) == 50
    shown = run_cli("show", run_id, "--state-dir", state).out
    assert "part way: 100 archived, 50 left" in shown
    sandbox.config.daily_limit = 1_000_000  # the next day
    finished = run_cli("undo", run_id, "--state-dir", state, "--yes", "--base-url", sandbox.url)
    assert finished.code == 0, finished.err
    assert "An earlier undo archived 100 of them and stopped; 50 are left to archive." in (
        finished.out
    )
    assert sandbox.records("products") == []
    again = run_cli("undo", run_id, "--state-dir", state, "--yes", "--base-url", sandbox.url)
    assert "was already undone" in again.out


def test_an_archive_whose_answer_is_lost_is_sent_again(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING), catalogue(tmp_path / "c.csv", 3),
        "--base-url", sandbox.url, "--state-dir", state, "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    (run_id,) = [line.split()[0] for line in run_cli("runs", "--state-dir", state).out.split("\n")
                 if " products " in line]  # fmt: skip
    sandbox.inject(Fault(drop=True, after=True, path="/batch/archive"))
    undone = run_cli("undo", run_id, "--state-dir", state, "--yes", "--base-url", sandbox.url)
    assert undone.code == 0, undone.err
    assert sandbox.records("products") == []


# --- a 404 mid-run -----------------------------------------------------------------------


def test_a_404_mid_run_fails_that_batch_and_the_workbook_is_written(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.inject(
        Fault(
            status=404,
            path="/batch/create",
            body={
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "resource not found",
                "correlationId": "x",
            },
        )
    )
    out = tmp_path / "o.xlsx"
    result = run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING), catalogue(tmp_path / "c.csv", 3),
        "--base-url", sandbox.url, "--out", out,
    )  # fmt: skip
    assert result.code == 1
    rows = read_sheet(out)
    assert {r["status"] for r in rows} == {"failed"}
    assert rows[0]["message"] == "not created: HubSpot answered resource not found"


# --- the error tree ----------------------------------------------------------------------


def test_every_exception_the_package_raises_is_in_the_tree() -> None:
    """Each `raise X(...)` in importer/ (the sandbox aside) names an error under the root, or
    one of a few others: click's for a bad option, the signal that stops a run (a
    KeyboardInterrupt, as Ctrl-C is), and the internal invariants that only a bug could break
    (a template sheet's layout, a pandera failure of no known kind)."""
    import importer

    ours = {
        name
        for name in dir(importer)
        if isinstance(getattr(importer, name), type)
        and issubclass(getattr(importer, name), HubSpotImportError)
    }
    allowed = {
        "BadParameter",
        "ConstructorError",  # YAML's, for a repeated key: load_mapping makes it a MappingError
        "_unusable",  # returns the ConfigError for a journal that cannot be opened
        "not_written",  # returns the ConfigError for results that could not be written
        "no_rows",  # returns the EmptySheetError (NoRows) of a header-only feed
        "BadZipFile",  # a damaged sheet part, caught where the sheet's XML is read
        "Stop",
        "ValueError",
        "RuntimeError",
        "AttributeError",  # importer's __getattr__ (PEP 562), for a name it does not have
        "KeyError",
        "AssertionError",
    } | ours
    raised: set[str] = set()
    for path in (ROOT / "importer").rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name not in ("type", ""):  # re-raising the same class, or a caught error
                    raised.add(name)
    assert raised - allowed == set()
    assert {"LockHeld", "UncertainDelivery"} <= ours


def test_a_journal_opened_by_another_version_keeps_working(tmp_path: Path) -> None:
    """The undone table is added to journals that lack it."""
    path = tmp_path / "j.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    from importer.state.journal import Journal

    journal = Journal(path)
    assert journal.archived_by_undo("nope") == set()
    journal.close()


def test_undo_with_the_token_of_another_portal_archives_nothing(
    run_cli: Runner, two_portals: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rehearsal in the test portal, then production imported the same catalogue: undoing
    # the rehearsal with production's token (same base URL) must not touch production.
    data = catalogue(tmp_path / "c.csv", 5)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    common = ("-m", mapping, data, "--base-url", two_portals.url, "--state-dir", state)
    assert run_as(run_cli, monkeypatch, TEST_TOKEN, *common, "--out", tmp_path / "t.xlsx").code == 0
    assert run_as(run_cli, monkeypatch, PROD_TOKEN, *common, "--out", tmp_path / "p.xlsx").code == 0
    (rehearsal,) = [
        line.split()[0]
        for line in run_cli("runs", "--state-dir", state).out.splitlines()
        if "111" in line
    ]
    archives = len([r for r in two_portals.received if r.path.endswith("/batch/archive")])
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", PROD_TOKEN)
    wrong = run_cli("undo", rehearsal, "--state-dir", state, "--yes", "--base-url", two_portals.url)
    assert wrong.code == 2
    assert f"run {rehearsal} wrote to portal 111 (DEVELOPER_TEST)" in wrong.message
    assert "this token reaches portal 222 (STANDARD): nothing was archived" in wrong.message
    assert len([r for r in two_portals.received if r.path.endswith("/batch/archive")]) == archives
    assert len(two_portals.tenant(222).records("products")) == 5
    assert len(two_portals.tenant(111).records("products")) == 5

    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TEST_TOKEN)
    right = run_cli("undo", rehearsal, "--state-dir", state, "--yes", "--base-url", two_portals.url)
    assert right.code == 0, right.message
    assert two_portals.tenant(111).records("products") == []
    assert len(two_portals.tenant(222).records("products")) == 5


def test_undo_with_a_token_hubspot_will_not_name_a_portal_for_archives_nothing_unless_told(
    run_cli: Runner, two_portals: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Production's run kept its own state folder; the rehearsal is undone with production's
    # token, which may not read the account details: the portal cannot be told, so nothing.
    data = catalogue(tmp_path / "c.csv", 5)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    for token, folder in ((TEST_TOKEN, state), (PROD_TOKEN, tmp_path / "prod")):
        common = ("-m", mapping, data, "--base-url", two_portals.url, "--state-dir", folder)
        done = run_as(run_cli, monkeypatch, token, *common, "--out", tmp_path / "o.xlsx")
        assert done.code == 0, done.message
    listed = run_cli("runs", "--state-dir", state).out.splitlines()
    (rehearsal,) = [line.split()[0] for line in listed if "111" in line]
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", PROD_TOKEN)
    two_portals.inject(Fault(status=403, path="account-info", times=10))
    undo = ("undo", rehearsal, "--state-dir", state, "--yes", "--base-url", two_portals.url)
    blind = run_cli(*undo)
    assert blind.code == 2
    assert "HubSpot will not say which portal this token reaches" in blind.message
    assert "say so with --portal-id 111" in blind.message
    assert len(two_portals.tenant(222).records("products")) == 5
    told_wrong = run_cli(*undo, "--portal-id", "222")
    assert told_wrong.code == 2
    assert "this token reaches portal 222" in told_wrong.message
    assert len(two_portals.tenant(222).records("products")) == 5
    assert len(two_portals.tenant(111).records("products")) == 5


def test_a_portal_id_hubspot_contradicts_is_refused_by_undo_and_by_run(
    run_cli: Runner, two_portals: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --portal-id stands only where HubSpot will not say: told the rehearsal's portal with
    # production's token, undo would archive production's records with the rehearsal's ids,
    # and a run would write production's records into the rehearsal's journal.
    data = catalogue(tmp_path / "c.csv", 3)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    common = ("-m", mapping, data, "--base-url", two_portals.url, "--state-dir", state)
    assert run_as(run_cli, monkeypatch, TEST_TOKEN, *common, "--out", tmp_path / "t.xlsx").code == 0
    assert run_as(run_cli, monkeypatch, PROD_TOKEN, *common, "--out", tmp_path / "p.xlsx").code == 0
    listed = run_cli("runs", "--state-dir", state).out.splitlines()
    (rehearsal,) = [line.split()[0] for line in listed if "111" in line]
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", PROD_TOKEN)
    told = run_cli("undo", rehearsal, "--state-dir", state, "--yes", "--base-url",
                   two_portals.url, "--portal-id", "111")  # fmt: skip
    assert told.code == 2
    assert "--portal-id 111 is not the portal this token reaches" in told.message
    assert len(two_portals.tenant(222).records("products")) == 3
    wrong = run_as(run_cli, monkeypatch, PROD_TOKEN, *common, "--portal-id", "111",
                   "--out", tmp_path / "w.xlsx")  # fmt: skip
    assert wrong.code == 2
    assert "HubSpot said it is portal 222" in wrong.message
    assert len(two_portals.tenant(111).records("products")) == 3
