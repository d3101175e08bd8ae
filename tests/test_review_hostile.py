"""Mistakes and environments a hostile review found ending in a secret printed or in exit 4
("a bug in this tool"): each is now a clear message, exit 2, with no secret in it (#26)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from importer.cli.entry import _shown_args
from importer.sandbox import Sandbox

from .conftest import CliRun, write_mapping

Runner = Callable[..., CliRun]

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""


def test_a_base_url_with_an_old_api_key_in_its_query_is_refused_without_repeating_it(
    run_cli: Runner, tmp_path: Path
) -> None:
    data = tmp_path / "p.csv"
    data.write_text("SKU,Name\nA-1,Mug\n", encoding="utf-8")
    summary = tmp_path / "s.json"
    done = run_cli("run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING), data,
                   "--base-url", "http://127.0.0.1:9/?hapikey=QSECRETB", "--state-dir",
                   tmp_path / "state", "--summary-json", summary)  # fmt: skip
    assert done.code == 2
    assert "may not hold a query or fragment" in done.err
    assert "QSECRETB" not in done.err + done.out
    assert "QSECRETB" not in summary.read_text(encoding="utf-8")


def test_a_crash_report_shows_an_input_urls_secret_query_values_hidden() -> None:
    shown = _shown_args(["run", "-m", "m.yaml",
                         "http://127.0.0.1:1/g.csv?X-Amz-Signature=QSIG&X-Amz-Credential=AKIAQ",
                         "http://[::1/x.csv?sig=QSECRETV6"])  # fmt: skip
    for secret in ("QSIG", "AKIAQ", "QSECRETV6"):
        assert secret not in shown
    assert "http://127.0.0.1:1/g.csv?X-Amz-Signature=***" in shown


def test_an_input_url_that_cannot_be_read_is_exit_2_without_its_query(
    run_cli: Runner, tmp_path: Path, sandbox: Sandbox
) -> None:
    done = run_cli("run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING),
                   "http://[::1/x.csv?sig=QSECRETV6", "--base-url", sandbox.url,
                   "--state-dir", tmp_path / "state")  # fmt: skip
    assert done.code == 2, done.err
    assert "cannot be read as a URL" in done.message
    assert "QSECRETV6" not in done.err


@pytest.mark.parametrize(
    ("encoding", "said"),
    [
        ("utf-16", "cannot be read as utf-16 (UTF-16 stream does not start with BOM)"),
        ("rot13", "'rot13' is not a text encoding"),
        ("base64", "'base64' is not a text encoding"),
        ("punycode", "cannot be read as punycode"),
    ],
)
def test_an_encoding_the_file_is_not_in_is_exit_2_naming_it(
    run_cli: Runner, tmp_path: Path, sandbox: Sandbox, encoding: str, said: str
) -> None:
    data = tmp_path / "p.csv"
    data.write_bytes(b"SKU,Name\nAB,C\n")  # an even length: UTF-16 reads it, but finds no BOM
    done = run_cli("run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING), data,
                   "--encoding", encoding, "--base-url", sandbox.url,
                   "--state-dir", tmp_path / "state")  # fmt: skip
    assert done.code == 2, done.err
    assert said in done.message
    assert sandbox.records("products") == []
