"""INPUT (and a plan's input, and `init INPUT`) as a URL or a glob: read from real servers on
127.0.0.1 (HTTP, moto's S3, an asyncssh SFTP server) through fsspec's backends, downloaded
once per run into a private copy, fingerprinted with the store's ETag, shown and recorded
without secrets; a glob's match picked by name or modification time; every failure an exit 2
naming the URL and the cause, the summary still written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from importer.cli.sources import input_label
from importer.core.errors import ConfigError
from importer.sandbox import Sandbox
from importer.sheets.picking import Match, pick_match
from importer.sheets.remote import download
from importer.sheets.share_links import download_url
from importer.sheets.sources import hide_secrets, locate, scrub
from importer.state.journal import Journal, journal_path

from .conftest import SKU_NAME_PRICE, CliRun, creates, write_csv, write_mapping
from .remote_servers import (  # the fixtures: http_files, moto_server, s3 and sftp
    S3,
    HttpFiles,
    Sftp,
    free_port,
    http_files_fixture,  # noqa: F401
    moto_server_fixture,  # noqa: F401
    s3_fixture,  # noqa: F401
    sftp_fixture,  # noqa: F401
    start_sftp,
)

Runner = Callable[..., CliRun]
FEED = b"SKU,Name,Price\n00001,Mug,12\n00002,Hoodie,45\n"
CHANGED = b"SKU,Name,Price\n00001,Mug,13\n00002,Hoodie,45\n"
SECRET = "s3cr3t-signature"


def _run(
    run_cli: Runner, box: Sandbox, tmp: Path, given: str, *extra: Any, command: str = "run"
) -> tuple[CliRun, dict[str, Any]]:
    """Run (or check) `given` with the products mapping; the result and its summary."""
    summary = tmp / "summary.json"
    summary.unlink(missing_ok=True)
    mapping = tmp / "m.yaml"
    if not mapping.exists():
        write_mapping(mapping, SKU_NAME_PRICE)
    result = run_cli(
        command, "-m", mapping, given, "--base-url", box.url, "--state-dir", tmp / "state",
        "--summary-json", summary, *extra,
    )  # fmt: skip
    return result, json.loads(summary.read_text())


def _journal_text(box: Sandbox, tmp: Path) -> str:
    """Every run the journal records, as text."""
    journal = Journal(journal_path(tmp / "state", box.url, "products", box.portal.portal_id))
    try:
        return json.dumps(journal.runs(), default=str)
    finally:
        journal.close()


# --- what INPUT names, without reading it ------------------------------------------------


@pytest.mark.parametrize(
    ("link", "export", "name"),
    [
        (
            "https://docs.google.com/spreadsheets/d/1AbC-x_9/edit#gid=123",
            "https://docs.google.com/spreadsheets/d/1AbC-x_9/export?format=xlsx&gid=123",
            "1AbC-x_9.xlsx",
        ),
        (
            "https://docs.google.com/spreadsheets/d/1AbC/edit?usp=sharing",
            "https://docs.google.com/spreadsheets/d/1AbC/export?format=xlsx",
            "1AbC.xlsx",
        ),
        (
            "https://docs.google.com/spreadsheets/u/1/d/1AbC/view?gid=7",
            "https://docs.google.com/spreadsheets/u/1/d/1AbC/export?format=xlsx&gid=7",
            "1AbC.xlsx",
        ),
        (
            "https://docs.google.com/spreadsheets/d/1AbC/export?format=csv&gid=3",
            "https://docs.google.com/spreadsheets/d/1AbC/export?format=csv&gid=3",
            "1AbC.csv",
        ),
        (
            "https://docs.google.com/spreadsheets/d/e/2PACX-1v/pubhtml?gid=5",
            "https://docs.google.com/spreadsheets/d/e/2PACX-1v/pub?output=xlsx&gid=5",
            "2PACX-1v.xlsx",
        ),
        (
            "https://contoso.sharepoint.com/:x:/g/personal/ann/EaBcD?e=XyZ",
            "https://contoso.sharepoint.com/:x:/g/personal/ann/EaBcD?e=XyZ&download=1",
            "EaBcD.xlsx",
        ),
        (
            "https://contoso-my.sharepoint.com/:x:/r/personal/ann/Documents/Feed.xlsx?d=w1&web=1",
            "https://contoso-my.sharepoint.com/:x:/r/personal/ann/Documents/Feed.xlsx?d=w1&download=1",
            "Feed.xlsx",
        ),
        (
            "https://onedrive.live.com/edit.aspx?resid=ABC!1&authkey=k&download=0",
            "https://onedrive.live.com/edit.aspx?resid=ABC%211&authkey=k&download=1",
            "edit.aspx",
        ),
        (
            "https://example.com/feeds/products.csv",
            "https://example.com/feeds/products.csv",
            "products.csv",
        ),
    ],
)
def test_a_sharing_link_is_read_as_its_download(link: str, export: str, name: str) -> None:
    assert download_url(link) == (export, name)


def test_secrets_in_a_url_are_hidden_wherever_it_is_shown() -> None:
    url = (
        "https://bucket.s3.amazonaws.com/feeds/p.csv?X-Amz-Credential=AKIA1&X-Amz-Signature="
        f"{SECRET}&sig={SECRET}&token={SECRET}&format=csv"
    )
    shown = hide_secrets(url)
    assert SECRET not in shown
    assert "AKIA1" not in shown
    assert shown.endswith("&format=csv")
    location = locate(url)
    assert location.shown == shown
    assert location.url == url  # the secrets are still sent to the server
    # The same object signed anew is the same input (and keeps its downloads together).
    resigned = url.replace(f"Signature={SECRET}", "Signature=another")
    assert locate(resigned.replace("AKIA1", "AKIA2")).key == location.key
    said = scrub(f"403 for url {url} and https://x/y?token={SECRET}", location)
    assert SECRET not in said
    assert shown in said


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("https://ann:pw-" + SECRET + "@example.com/p.csv", "shared or pre-signed link"),
        ("https://token-" + SECRET + "@example.com/p.csv", "shared or pre-signed link"),
        ("s3://AKIA:" + SECRET + "@feeds/p.csv", "AWS_ACCESS_KEY_ID"),
        ("sftp://ann:" + SECRET + "@host/p.csv", "HUBSPOT_IMPORT_SFTP_PASSWORD"),
        ("abfs://c:" + SECRET + "@acct.dfs.core.windows.net/p.csv", "AZURE_STORAGE_ACCOUNT_KEY"),
        ("gs://k:" + SECRET + "@bucket/p.csv", "GOOGLE_APPLICATION_CREDENTIALS"),
    ],
)
def test_a_url_with_credentials_is_refused_saying_where_they_go(url: str, where: str) -> None:
    with pytest.raises(ConfigError) as raised:
        locate(url)
    assert where in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_user_name_that_is_not_a_secret_is_kept() -> None:
    assert locate("sftp://feeds@host:2222/p.csv").shown == "sftp://feeds@host:2222/p.csv"
    abfs = locate("abfs://container@acct.dfs.core.windows.net/feeds/*.csv")
    assert abfs.glob
    assert abfs.remote


def test_an_unknown_scheme_is_refused_naming_those_read() -> None:
    with pytest.raises(ConfigError, match=r"ftp:// URL, which hubspot-import does not read"):
        locate("ftp://example.com/p.csv")


def test_what_is_a_glob() -> None:
    assert locate("exports/products-*.csv").glob
    assert locate("s3://b/feeds/products-2026-1?-*.csv").glob
    # An https URL's query is no glob: HTTP cannot list files.
    assert not locate("https://example.com/p.csv?a=1").glob
    assert not locate("file:///tmp/p.csv").remote
    # Exports are named with brackets: those are names, not globs.
    assert not locate("exports/Products [final].csv").glob
    assert not locate("s3://b/e/Catalogue [2026].xlsx").glob


@pytest.mark.parametrize(
    "given", ["s3://feeds/exports/products-*.csv", "sftp://feeds@host/x/products-*.csv",
              "exports/products-*.csv"],
)  # fmt: skip
def test_a_glob_is_named_as_given_in_a_notification(given: str) -> None:
    assert str(input_label(given)) == "products-*.csv"


def test_a_file_named_like_a_glob_is_read_as_it_is_named(tmp_path: Path) -> None:
    odd = tmp_path / "Products *final*.csv"
    odd.write_bytes(FEED)
    assert not locate(str(odd)).glob


def test_a_glob_picks_the_last_name_or_the_newest_time() -> None:
    import datetime as dt

    day = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    matches = [
        Match("p-2026-11-22.csv", day),
        Match("p-2026-11-23.csv", day - dt.timedelta(days=2)),
        Match("p-2026-11-21.csv", None),
    ]
    assert pick_match(matches, "name").name == "p-2026-11-23.csv"
    assert pick_match(matches, "mtime").name == "p-2026-11-22.csv"


# --- HTTP ---------------------------------------------------------------------------------


def test_a_run_reads_its_input_from_https_once_and_records_the_url_without_secrets(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    http_files: HttpFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    url = http_files.put("/feeds/products.csv", FEED)
    given = f"{url}?sig={SECRET}"
    result, summary = _run(run_cli, sandbox, tmp_path, given, "--verbose")
    assert result.code == 0, result.err
    shown = f"{url}?sig=***"
    assert summary["input_file"] == shown
    assert summary["input_source"]["given"] == shown
    assert summary["input_source"]["remote"] is True
    fingerprint = summary["input_fingerprint"]
    assert fingerprint["size"] == len(FEED)
    assert fingerprint["etag"].startswith('"')
    assert http_files.gets("/feeds/products.csv") == 1  # one GET, streamed
    # The results land in the working folder, named after the URL's file.
    (workbook,) = tmp_path.glob("products-results-*.xlsx")
    # The journal, the workbook and the summary name the URL, never the private copy.
    assert json.loads(_journal_text(sandbox, tmp_path))[-1]["input_file"] == shown
    facts = {row[0]: row[1] for row in openpyxl.load_workbook(workbook)["Summary"].values}
    assert facts["Input file"] == shown
    # The private copy: under the state folder, readable by its owner alone.
    (copy,) = (tmp_path / "state" / "downloads").glob("*/products.csv")
    assert copy.read_bytes() == FEED
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    for text in (result.out, result.err, json.dumps(summary), _journal_text(sandbox, tmp_path)):
        assert SECRET not in text
    assert sum(len(body["inputs"]) for body in creates(sandbox)) == 2


def test_an_unchanged_download_is_read_again_by_its_etag_and_skipped_when_unchanged(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.put("/feeds/products.csv", FEED)
    out = ("--out", tmp_path / "out.xlsx")
    first, _ = _run(run_cli, sandbox, tmp_path, url, *out)
    assert first.code == 0, first.err
    again, summary = _run(run_cli, sandbox, tmp_path, url, "--skip-unchanged", *out)
    assert again.code == 0, again.err
    assert summary["status"] == "skipped_unchanged"
    assert summary["input_file"] == url
    assert "unchanged since run" in again.out
    # The ETag and size said it is the same file: no second GET.
    assert http_files.gets("/feeds/products.csv") == 1
    assert summary["input_source"]["reused_download"] is True
    # Changed at the source: downloaded again, and the run goes on.
    http_files.put("/feeds/products.csv", CHANGED)
    changed, summary = _run(run_cli, sandbox, tmp_path, url, "--skip-unchanged", *out)
    assert changed.code == 0, changed.err
    assert summary.get("status") != "skipped_unchanged"
    assert summary["counts"]["updated"] == 1
    assert http_files.gets("/feeds/products.csv") == 2


def test_without_an_etag_the_file_is_downloaded_each_run_and_its_sha256_decides(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    http_files.etags = False
    url = http_files.put("/feeds/products.csv", FEED)
    out = ("--out", tmp_path / "out.xlsx")
    assert _run(run_cli, sandbox, tmp_path, url, *out)[0].code == 0
    again, summary = _run(run_cli, sandbox, tmp_path, url, "--skip-unchanged", *out)
    assert summary["status"] == "skipped_unchanged", again.err
    assert summary["input_fingerprint"]["etag"] is None
    assert http_files.gets("/feeds/products.csv") == 2


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/feeds/missing.csv", "not found (HTTP 404)"),
        ("/forbidden/products.csv", "access denied"),
    ],
)
def test_a_url_that_cannot_be_read_is_an_exit_2_naming_it_and_the_cause(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    http_files: HttpFiles,
    path: str,
    said: str,
) -> None:
    given = f"{http_files.url}{path}?token={SECRET}"
    result, summary = _run(run_cli, sandbox, tmp_path, given)
    assert result.code == 2
    assert f"{http_files.url}{path}?token=***: {said}" in result.message
    assert "Traceback" not in result.err
    assert summary["exit_code"] == 2
    assert said in summary["error"]
    assert SECRET not in result.err + json.dumps(summary)


def test_an_unreachable_host_and_a_server_too_slow_are_exit_2(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    http_files: HttpFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/products.csv"
    result, summary = _run(run_cli, sandbox, tmp_path, closed)
    assert result.code == 2
    assert f"{closed}: cannot be reached" in result.message
    assert summary["exit_code"] == 2
    monkeypatch.setenv("HUBSPOT_IMPORT_REMOTE_TIMEOUT", "0.5")
    http_files.slow = 3
    slow = http_files.put("/slow/products.csv", FEED)
    started = time.monotonic()
    result, summary = _run(run_cli, sandbox, tmp_path, slow)
    assert result.code == 2
    assert f"{slow}: no answer within 0.5 s (set HUBSPOT_IMPORT_REMOTE_TIMEOUT" in result.message
    assert time.monotonic() - started < 3
    monkeypatch.setenv("HUBSPOT_IMPORT_REMOTE_TIMEOUT", "soon")
    result, _ = _run(run_cli, sandbox, tmp_path, slow)
    assert result.code == 2
    assert "HUBSPOT_IMPORT_REMOTE_TIMEOUT='soon' is not a number of seconds" in result.message


def test_a_url_with_credentials_is_refused_by_the_command_without_showing_them(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    given = http_files.url.replace("://", f"://ann:{SECRET}@") + "/feeds/products.csv"
    result, summary = _run(run_cli, sandbox, tmp_path, given)
    assert result.code == 2
    assert "with credentials in it" in result.message
    assert SECRET not in result.out + result.err + json.dumps(summary)
    assert http_files.requests == []


@pytest.mark.parametrize("tail", ["/feeds/..", "/feeds/../", "/"])
def test_a_url_naming_no_file_is_kept_as_download_never_as_a_folder(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles, tail: str
) -> None:
    http_files.put("/", FEED)
    given = http_files.url + tail
    result, summary = _run(run_cli, sandbox, tmp_path, given)
    assert str(tmp_path / "state") not in result.err
    assert "Errno" not in result.err
    assert result.code == 0, result.err
    assert summary["input_file"] == given
    assert summary["counts"]["created"] == 2
    (copy,) = (tmp_path / "state" / "downloads").glob("*/download*")
    assert copy.is_file()


def test_a_copy_that_cannot_be_saved_is_said_without_the_state_folder(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.put("/feeds/products.csv", FEED)
    # A folder (not empty) where the copy goes: it cannot be replaced by the download.
    (tmp_path / "state" / "downloads" / locate(url).key / "products.csv" / "x").mkdir(parents=True)
    result, summary = _run(run_cli, sandbox, tmp_path, url)
    assert result.code == 2
    assert f"{url}: its copy cannot be saved in the downloads folder (" in result.message
    assert str(tmp_path / "state") not in result.err + json.dumps(summary)


def test_a_redirect_loop_is_said_as_too_many_redirects(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    http_files.redirects = {"/loop/a.csv": "/loop/b.csv", "/loop/b.csv": "/loop/a.csv"}
    given = f"{http_files.url}/loop/a.csv?token={SECRET}"
    result, summary = _run(run_cli, sandbox, tmp_path, given)
    assert result.code == 2
    assert f"{http_files.url}/loop/a.csv?token=***: too many redirects" in result.message
    assert "HTTP 0" not in result.message
    assert SECRET not in result.err + json.dumps(summary)


def test_a_plan_whose_input_is_a_url_downloads_it_once(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.put("/feeds/shop.csv", FEED)
    write_mapping(tmp_path / "products.yaml", SKU_NAME_PRICE)
    (tmp_path / "plan.yaml").write_text(
        f"input: {url}\nsteps:\n  - mapping: products.yaml\n", encoding="utf-8"
    )
    summary = tmp_path / "summary.json"
    result = run_cli(
        "run", "--plan", tmp_path / "plan.yaml", "--base-url", sandbox.url, "--state-dir",
        tmp_path / "state", "--summary-json", summary,
    )  # fmt: skip
    assert result.code == 0, result.err
    (step,) = json.loads(summary.read_text())["steps"]
    assert step["input_file"] == url
    assert step["step"] == "shop"
    assert step["counts"]["created"] == 2
    # Read by the command's check of the plan, then by the plan's run: downloaded once.
    assert http_files.gets("/feeds/shop.csv") == 1
    (workbook,) = tmp_path.glob("plan-results-*.xlsx")
    # The plan's sheet names the step's input by its URL, not by its private copy.
    cells = [c for row in openpyxl.load_workbook(workbook).worksheets[0].values for c in row]
    assert url in cells


def test_a_plan_whose_input_url_is_missing_names_the_step(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    write_mapping(tmp_path / "products.yaml", SKU_NAME_PRICE)
    (tmp_path / "plan.yaml").write_text(
        f"steps:\n  - mapping: products.yaml\n    input: {http_files.url}/gone.csv\n",
        encoding="utf-8",
    )
    result = run_cli("run", "--plan", tmp_path / "plan.yaml", "--base-url", sandbox.url)
    assert result.code == 2
    assert f"steps[0].input: {http_files.url}/gone.csv: not found (HTTP 404)" in result.message


def test_init_drafts_a_mapping_from_a_url(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    http_files: HttpFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    url = http_files.put("/feeds/products.csv", FEED)
    result = run_cli("init", f"{url}?a=1&sig={SECRET}", "--object", "products", "--base-url",
                     sandbox.url)  # fmt: skip
    assert result.code == 0, result.err
    assert (tmp_path / "mappings" / "products.yaml").exists()
    # Quoted for a shell (`&` would run the command in the background), saying what to do for
    # the command to run.
    assert (
        f"Next: hubspot-import check --mapping mappings/products.yaml '{url}?a=1&sig=***' "
        "(put back the hidden values)\n"
    ) in result.out
    assert SECRET not in result.out + result.err
    assert SECRET not in (tmp_path / "mappings" / "products.yaml").read_text()


def test_init_quotes_a_local_path_with_spaces_in_its_next_step(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my feeds").mkdir()
    (tmp_path / "my feeds" / "products.csv").write_bytes(FEED)
    out = "my mappings/products.yaml"
    result = run_cli("init", "my feeds/products.csv", "--object", "products", "--out", out,
                     "--base-url", sandbox.url)  # fmt: skip
    assert result.code == 0, result.err
    assert (
        "Next: hubspot-import check --mapping 'my mappings/products.yaml' 'my feeds/products.csv'\n"
    ) in result.out


# --- S3 -------------------------------------------------------------------------------------


def test_a_run_reads_its_input_from_s3(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, s3: S3
) -> None:
    url = s3.put(s3.bucket("feeds-one"), "catalogue/products.csv", FEED)
    result, summary = _run(run_cli, sandbox, tmp_path, url, "--out", tmp_path / "o.xlsx")
    assert result.code == 0, result.err
    assert summary["input_file"] == url
    assert summary["input_fingerprint"]["etag"].startswith('"')
    assert summary["counts"]["created"] == 2


def test_a_dated_glob_in_s3_reads_the_newest_and_skips_a_feed_unchanged(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, s3: S3
) -> None:
    bucket = s3.bucket("feeds-glob")
    s3.put(bucket, "daily/products-2026-11-23.csv", FEED)
    s3.put(bucket, "daily/products-2026-11-22.csv", CHANGED)
    s3.put(bucket, "daily/other-2026-11-24.csv", CHANGED)
    glob = f"s3://{bucket}/daily/products-*.csv"
    out = ("--out", tmp_path / "o.xlsx")
    result, summary = _run(run_cli, sandbox, tmp_path, glob, *out)
    assert result.code == 0, result.err
    newest = f"s3://{bucket}/daily/products-2026-11-23.csv"
    assert summary["input_file"] == newest
    assert summary["input_source"] == {
        "given": glob,
        "read": newest,
        "remote": True,
        "glob_matches": 2,
        "pick": "name",
        "reused_download": False,
    }
    assert f"INPUT {glob}: read {newest}, the last by name of 2 matches" in result.err
    # Tomorrow's file, with the same rows: the same glob and content, nothing to do.
    s3.put(bucket, "daily/products-2026-11-24.csv", FEED)
    again, summary = _run(run_cli, sandbox, tmp_path, glob, "--skip-unchanged", *out)
    assert summary["status"] == "skipped_unchanged", again.err
    assert summary["input_file"] == f"s3://{bucket}/daily/products-2026-11-24.csv"
    # The day after, new rows: the run goes on.
    s3.put(bucket, "daily/products-2026-11-25.csv", CHANGED)
    changed, summary = _run(run_cli, sandbox, tmp_path, glob, "--skip-unchanged", *out)
    assert changed.code == 0, changed.err
    assert summary["counts"]["updated"] == 1


def test_pick_mtime_reads_the_file_modified_last_in_s3(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, s3: S3
) -> None:
    bucket = s3.bucket("feeds-mtime")
    s3.put(bucket, "products-b.csv", FEED)
    time.sleep(1.1)  # S3 keeps times to the second
    s3.put(bucket, "products-a.csv", CHANGED)
    result, summary = _run(
        run_cli, sandbox, tmp_path, f"s3://{bucket}/products-*.csv", "--pick", "mtime",
        command="check",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert summary["input_file"] == f"s3://{bucket}/products-a.csv"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("s3://no-such-bucket/products.csv", "not found (The specified bucket does not exist)"),
        ("s3://feeds-missing/nothing.csv", "not found"),
        ("s3://feeds-missing/products-*.csv", "no file matches"),
    ],
)
def test_a_missing_bucket_object_or_match_in_s3_is_an_exit_2(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, s3: S3, given: str, said: str
) -> None:
    if "feeds-missing" in given:
        s3.bucket("feeds-missing")
    result, summary = _run(run_cli, sandbox, tmp_path, given)
    assert result.code == 2
    assert f"{given}: {said}" in result.message
    assert summary["exit_code"] == 2


def test_s3_without_credentials_says_where_they_go(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    s3: S3,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = s3.put(s3.bucket("feeds-closed"), "products.csv", FEED)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result, summary = _run(run_cli, sandbox, tmp_path, url)
    assert result.code == 2
    assert (
        f"{url}: no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(or AWS_PROFILE, ~/.aws)"
    ) in result.message
    assert summary["exit_code"] == 2


# --- SFTP -----------------------------------------------------------------------------------


def test_a_run_reads_its_input_over_sftp_with_the_users_key(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, sftp: Sftp
) -> None:
    (sftp.root / "exports").mkdir()
    (sftp.root / "exports" / "products.csv").write_bytes(FEED)
    url = sftp.url("/exports/products.csv")
    result, summary = _run(run_cli, sandbox, tmp_path, url, "--out", tmp_path / "o.xlsx")
    assert result.code == 0, result.err
    assert summary["input_file"] == url
    assert summary["input_fingerprint"]["etag"] is None
    assert summary["counts"]["created"] == 2


def test_sftp_checks_the_host_key_and_takes_a_password_from_the_environment(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = start_sftp(tmp_path, monkeypatch, password="pw-" + SECRET)
    server = next(servers)
    try:
        (server.root / "products.csv").write_bytes(FEED)
        (server.home / ".ssh" / "id_ed25519").unlink()  # no key: the password alone
        url = server.url("/products.csv")
        result, _ = _run(run_cli, sandbox, tmp_path, url, "--out", tmp_path / "o.xlsx")
        assert result.code == 2
        assert f"{url}: access denied" in result.message
        monkeypatch.setenv("HUBSPOT_IMPORT_SFTP_PASSWORD", "pw-" + SECRET)
        result, _ = _run(run_cli, sandbox, tmp_path, url, "--out", tmp_path / "o.xlsx")
        assert result.code == 0, result.err
        assert SECRET not in result.out + result.err
        # A host whose key is not in known_hosts is refused.
        (server.home / ".ssh" / "known_hosts").write_text("")
        result, _ = _run(run_cli, sandbox, tmp_path, url, "--out", tmp_path / "o.xlsx")
        assert result.code == 2
        assert "known_hosts" in result.message
    finally:
        servers.close()


# --- local globs ------------------------------------------------------------------------------


def test_a_local_glob_reads_the_newest_by_name_or_by_mtime(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    rows = [["SKU", "Name", "Price"], ["00001", "Mug", "12"]]
    old = write_csv(exports / "products-2026-11-22.csv", rows)
    new = write_csv(exports / "products-2026-11-23.csv", rows)
    os.utime(new, (time.time() - 3600, time.time() - 3600))
    glob = str(exports / "products-*.csv")
    result, summary = _run(run_cli, sandbox, tmp_path, glob, command="check")
    assert result.code == 0, result.err
    assert summary["input_file"] == str(new)
    assert summary["input_source"]["glob_matches"] == 2
    assert f"read {new}, the last by name of 2 matches" in result.err
    result, summary = _run(run_cli, sandbox, tmp_path, glob, "--pick", "mtime", command="check")
    assert summary["input_file"] == str(old)
    assert summary["input_source"]["pick"] == "mtime"
    result, summary = _run(run_cli, sandbox, tmp_path, str(exports / "orders-*.csv"))
    assert result.code == 2
    assert "orders-*.csv: no file matches" in result.message
    assert summary["exit_code"] == 2


# --- a missing backend ------------------------------------------------------------------------

_WITHOUT_BACKEND = """
import sys
sys.modules["gcsfs"] = None  # as if the gcs extra were not installed
from importer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_missing_backend_names_the_extra_to_install(tmp_path: Path) -> None:
    write_mapping(tmp_path / "m.yaml", SKU_NAME_PRICE)
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": "pat-test", "XDG_DATA_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_BACKEND, "check", "-m", str(tmp_path / "m.yaml"),
         "gs://feeds/products.csv", "--summary-json", str(tmp_path / "s.json")],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "gs:// needs the gcs extra: pip install 'hubspot-import[gcs]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((tmp_path / "s.json").read_text())["exit_code"] == 2


def test_help_imports_no_remote_backend(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from importer.cli import main\n"
        "main(['run', '--help'])\n"
        "remote = ('fsspec', 'aiohttp', 's3fs', 'botocore', 'sshfs', 'asyncssh')\n"
        "print(sorted(m for m in remote if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "--pick [name|mtime]" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_downloaded_feed_that_cannot_be_read_is_named_by_its_url(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.put("/feeds/latin.csv", "SKU,Name,Price\n00001,Café,1.5\n".encode("cp1252"))
    result, summary = _run(run_cli, sandbox, tmp_path, f"{url}?token={SECRET}")
    assert result.code == 2, result.message
    shown = f"{url}?token=***"
    assert f"{shown}: " in result.message, result.message
    assert "downloads" not in result.message
    assert "downloads" not in str(summary["error"])
    assert SECRET not in result.message + result.err


# --- the hostile review: each fix with its test -----------------------------------------------


def _workbook_text(path: Path) -> str:
    """Every cell of every sheet of a workbook, as text."""
    book = openpyxl.load_workbook(path)
    return json.dumps([[list(row) for row in ws.values] for ws in book], default=str)


def test_show_out_names_the_url_a_run_read_never_its_private_copy(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.put("/feeds/products.csv", FEED)
    result, summary = _run(run_cli, sandbox, tmp_path, f"{url}?sig={SECRET}", "--out",
                           tmp_path / "o.xlsx")  # fmt: skip
    assert result.code == 0, result.err
    again = tmp_path / "again.xlsx"
    shown = run_cli("show", summary["run_id"], "--state-dir", tmp_path / "state", "--out", again)
    assert shown.code == 0, shown.err
    facts = {row[0]: row[1] for row in openpyxl.load_workbook(again)["Summary"].values}
    assert facts["Input file"] == f"{url}?sig=***"
    assert "downloads" not in _workbook_text(again)
    assert SECRET not in _workbook_text(again)


def test_show_out_of_a_plan_names_each_steps_url(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.put("/feeds/shop.csv", FEED)
    write_mapping(tmp_path / "products.yaml", SKU_NAME_PRICE)
    (tmp_path / "plan.yaml").write_text(
        f"input: {url}#key={SECRET}\nsteps:\n  - mapping: products.yaml\n", encoding="utf-8"
    )
    summary = tmp_path / "summary.json"
    result = run_cli(
        "run", "--plan", tmp_path / "plan.yaml", "--base-url", sandbox.url, "--state-dir",
        tmp_path / "state", "--summary-json", summary, "--out", tmp_path / "plan.xlsx",
    )  # fmt: skip
    assert result.code == 0, result.err
    done = json.loads(summary.read_text())
    (step,) = done["steps"]
    for run_id in (done["plan_run_id"], step["run_id"]):
        again = tmp_path / f"{run_id}.xlsx"
        shown = run_cli("show", run_id, "--state-dir", tmp_path / "state", "--out", again)
        assert shown.code == 0, shown.err
        assert "downloads" not in _workbook_text(again)
        assert SECRET not in _workbook_text(again)


@pytest.mark.parametrize(
    "name",
    [
        "client_secret",
        "access_key",
        "Access-Key",
        "api-key",
        "api_key",
        "apiKey",
        "x-api-key",
        "token",
        "refresh_token",
        "id-token",
        "accesstoken",
        "AppSecret",
        "pwd",
        "passwd",
        "password",
        "jwt",
        "session",
        "SessionId",
        "authkey",
        "key",
        "sig",
        "X-Amz-Credential",
    ],
)
def test_every_secret_looking_parameter_and_the_fragment_are_hidden(name: str) -> None:
    for url in (
        f"https://example.com/feed.csv?page=2&{name}={SECRET}&format=csv",
        f"https://example.com/feed.csv?page=2;{name}={SECRET};format=csv",
    ):
        shown = hide_secrets(url)
        assert SECRET not in shown, shown
        assert f"{name}=***" in shown
        assert "page=2" in shown
        assert "format=csv" in shown
        assert SECRET not in scrub(f"failed: {url}.", locate(url))
        assert SECRET not in scrub(f"also {url} failed", locate("https://other.example/x.csv"))
    assert hide_secrets("https://example.com/feed.csv?page=2&format=csv") == (
        "https://example.com/feed.csv?page=2&format=csv"
    )


def test_a_fragment_is_hidden_everywhere_and_different_keys_keep_apart() -> None:
    url = f"https://example.com/feed.csv?format=csv#frag={SECRET}"
    location = locate(url)
    assert location.shown == "https://example.com/feed.csv?format=csv#***"
    assert SECRET not in scrub(f"GET {url} failed; see https://x.example/y#a={SECRET}", location)
    sheet = locate(f"https://docs.google.com/spreadsheets/d/1AbC/edit#gid=5&token={SECRET}")
    assert SECRET not in sheet.shown
    assert sheet.url == "https://docs.google.com/spreadsheets/d/1AbC/export?format=xlsx&gid=5"
    # Past any other scheme, `#` is part of the path.
    assert hide_secrets("s3://b/exports/a#1.csv") == "s3://b/exports/a#1.csv"
    assert str(input_label(f"https://a:b@example.com/p.csv#t={SECRET}")) == "p.csv"
    # `key` is hidden, yet two keys are two feeds: each its own downloads folder.
    one, two = (
        locate("https://example.com/feed.csv?key=A"),
        locate("https://example.com/feed.csv?key=B"),
    )
    assert one.shown == two.shown
    assert one.key != two.key


def test_a_hanging_server_costs_one_wait_and_a_plan_asks_it_once(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    http_files: HttpFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBSPOT_IMPORT_REMOTE_TIMEOUT", "0.5")
    http_files.slow = 2
    slow = http_files.put("/slow/products.csv", FEED)
    result, _ = _run(run_cli, sandbox, tmp_path, slow)
    assert result.code == 2
    assert f"{slow}: no answer within 0.5 s" in result.message
    assert http_files.requests == [("HEAD", "/slow/products.csv")]  # no GET after it
    # Two steps read the same input: asked once, its failure said for each.
    http_files.requests.clear()
    write_mapping(tmp_path / "products.yaml", SKU_NAME_PRICE)
    (tmp_path / "plan.yaml").write_text(
        f"input: {slow}\nsteps:\n  - mapping: products.yaml\n  - mapping: products.yaml\n",
        encoding="utf-8",
    )
    result = run_cli("run", "--plan", tmp_path / "plan.yaml", "--base-url", sandbox.url)
    assert result.code == 2
    assert f"steps[1].input: {slow}: no answer within 0.5 s" in result.message, result.message
    assert len(http_files.requests) == 1


def test_a_server_that_refuses_head_is_read_by_get(tmp_path: Path, http_files: HttpFiles) -> None:
    http_files.no_head = True
    url = http_files.put("/feeds/products.csv", FEED)
    got = download(locate(url), tmp_path / "downloads", "name")
    assert got.local.read_bytes() == FEED
    assert got.fingerprint.size == len(FEED)


def test_a_kept_copy_is_read_again_only_when_etag_size_and_time_all_match(
    tmp_path: Path, http_files: HttpFiles
) -> None:
    # A server that keeps one ETag whatever it serves: the time tells the new version.
    http_files.etag = '"always-the-same"'
    url = http_files.put("/feeds/products.csv", FEED, modified=1_790_000_000)
    downloads = tmp_path / "downloads"
    assert not download(locate(url), downloads, "name").reused
    assert download(locate(url), downloads, "name").reused
    http_files.put("/feeds/products.csv", CHANGED, modified=1_790_000_060)
    fresh = download(locate(url), downloads, "name")
    assert not fresh.reused
    assert fresh.local.read_bytes() == CHANGED
    assert http_files.gets("/feeds/products.csv") == 2
    # Same ETag, size and time, other bytes: nothing can tell; removing the folder can.
    http_files.put("/feeds/products.csv", FEED, modified=1_790_000_060)
    assert download(locate(url), downloads, "name").reused
    import shutil

    shutil.rmtree(downloads)
    assert download(locate(url), downloads, "name").local.read_bytes() == FEED


def test_a_killed_downloads_leftovers_and_long_unread_copies_are_removed(
    tmp_path: Path, http_files: HttpFiles
) -> None:
    url = http_files.put("/feeds/products.csv", FEED)
    downloads = tmp_path / "downloads"
    own = downloads / locate(url).key
    own.mkdir(parents=True)
    hour_ago, month_ago = time.time() - 3700, time.time() - 31 * 86400
    stale, fresh = own / ".download-abc.part", own / ".download-def.part"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written by another run")
    os.utime(stale, (hour_ago, hour_ago))
    unread, recent = downloads / ("a" * 16), downloads / ("b" * 16)
    for other in (unread, recent):
        other.mkdir()
        (other / "feed.csv").write_bytes(FEED)
    os.utime(unread, (month_ago, month_ago))
    (downloads / "notes").mkdir()  # not a copy's folder: left alone
    os.utime(downloads / "notes", (month_ago, month_ago))
    download(locate(url), downloads, "name")
    assert not stale.exists()
    assert fresh.exists()
    assert not unread.exists()
    assert (recent / "feed.csv").exists()
    assert (downloads / "notes").exists()


def _workbook_bytes(tmp_path: Path) -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["SKU", "Name", "Price"])
    book.active.append(["00001", "Mug", 12])
    book.save(tmp_path / "w.xlsx")
    return (tmp_path / "w.xlsx").read_bytes()


def test_a_workbook_served_without_a_suffix_is_named_by_the_server_or_its_bytes(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    xlsx = _workbook_bytes(tmp_path)
    http_files.disposition["/named"] = 'attachment; filename="Catalogue 2026.xlsx"'
    named = download(locate(http_files.put("/named", xlsx)), tmp_path / "d", "name")
    assert named.local.name == "Catalogue_2026.xlsx"
    sniffed = download(locate(http_files.put("/export", xlsx) + "?format=xlsx"), tmp_path / "d",
                       "name")  # fmt: skip
    assert sniffed.local.name == "export.xlsx"
    old = download(locate(http_files.put("/dl", b"\xd0\xcf\x11\xe0rest")), tmp_path / "d", "name")
    assert old.local.name == "dl.xls"
    # Read again from its kept copy: the same name.
    assert download(locate(http_files.url + "/export?format=xlsx"), tmp_path / "d",
                    "name").local.name == "export.xlsx"  # fmt: skip
    result, summary = _run(run_cli, sandbox, tmp_path, http_files.url + "/export?format=xlsx",
                           "--out", tmp_path / "o.xlsx")  # fmt: skip
    assert result.code == 0, result.err
    assert summary["counts"]["created"] == 1
