"""A create whose outcome is unknown (5xx, lost answer) is settled by lookup, never resent blind,
and lookups by search survive search's lag and limit: nothing is created twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer import RunOptions, RunResult, run_import
from importer.api.client import HubSpotClient, RetryPolicy
from importer.api.lookup import Finder
from importer.sandbox import Fault, Sandbox

from .conftest import TOKEN, creates, read_sheet, write_csv, write_mapping

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05)

BY_SKU = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""
BY_NAME = """\
object_type: products
key: Name
columns:
  Name: name
  Price: price
"""
KEYLESS = """\
object_type: products
columns:
  Name: name
  Price: price
"""


def catalogue(tmp_path: Path, n: int) -> Path:
    rows = [["SKU", "Name", "Price"]]
    rows += [[f"{i:05d}", f"Product {i}", f"{i}.50"] for i in range(n)]
    return write_csv(tmp_path / "catalogue.csv", rows)


def run(tmp_path: Path, box: Sandbox, mapping: str, n: int, **kw: Any) -> RunResult:
    return run_import(
        RunOptions(
            input_file=catalogue(tmp_path, n),
            mapping_file=write_mapping(tmp_path / "m.yaml", mapping),
            token=TOKEN,
            base_url=box.url,
            retry=FAST,
            out=tmp_path / "out.xlsx",
            state_dir=tmp_path / "state",
            **kw,
        )
    )


def outcome(result: RunResult) -> dict[str, int]:
    return {k: v for k, v in result.summary.counts.items() if v}


def per_name(box: Sandbox) -> Counter[str]:
    return Counter(r["properties"]["name"] for r in box.records("products"))


@pytest.mark.parametrize("status", [500, 502, 503, 504, 524])
def test_a_create_answered_5xx_after_commit_is_found_not_sent_again(
    tmp_path: Path, sandbox: Sandbox, status: int
) -> None:
    sandbox.inject(Fault(status=status, after=True, path="/batch/create"))
    result = run(tmp_path, sandbox, BY_SKU, 120)
    assert outcome(result) == {"created": 120}
    assert len(sandbox.records("products")) == 120  # the committed batch was not resent
    assert len(creates(sandbox)) == 2
    rows = read_sheet(tmp_path / "out.xlsx")
    found = [r for r in rows if "looking it up" in (r["message"] or "")]
    # The whole batch that was answered 5xx (the first to arrive), confirmed by batch/read.
    assert len(found) == len(creates(sandbox)[0]["inputs"])


def test_a_create_answered_5xx_before_commit_is_looked_up_then_sent_again(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(status=503, path="/batch/create"))
    result = run(tmp_path, sandbox, BY_SKU, 50)
    assert outcome(result) == {"created": 50}
    assert len(sandbox.records("products")) == 50
    paths = [r.path.rsplit("/", 1)[-1] for r in sandbox.received]
    assert paths[-3:] == ["create", "read", "create"]  # refused, looked up, sent again


def test_without_a_key_a_create_answered_5xx_is_uncertain_never_resent(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    result = run(tmp_path, sandbox, KEYLESS, 30)
    assert outcome(result) == {"uncertain": 30}
    assert len(sandbox.records("products")) == 30
    assert len(creates(sandbox)) == 1
    message = read_sheet(tmp_path / "out.xlsx")[0]["message"]
    assert message.startswith("HubSpot answered 504 (the write may have been carried out)")


def test_a_lookup_by_search_waits_out_the_lag_before_calling_a_row_missing(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    # `name` is not unique: the lookup can only search, and search lags the write by 0.5 s.
    box = make_sandbox(search_lag=0.5)
    box.inject(Fault(status=504, after=True, path="/batch/create"))
    result = run(tmp_path, box, BY_NAME, 30, search_settle=1.0)
    assert outcome(result) == {"created": 30}
    assert per_name(box) == Counter({f"Product {i}": 1 for i in range(30)})
    assert len(creates(box)) == 1
    crm = [r.path.rsplit("/", 1)[-1] for r in box.received if r.path.startswith("/crm/")]
    # name's definition, read once by the portal check, says it is not unique: the lookup
    # after the lost create searches, never a batch read by it
    assert crm.count("products") == 1
    assert "read" not in crm
    assert crm[-2:] == ["create", "search"]


def test_the_sandbox_lag_is_real_trusting_search_at_once_duplicates(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    # The control for the test above: with no wait, search misses the committed records and
    # they are created twice. This is what HubSpot would do to an importer that trusts it.
    box = make_sandbox(search_lag=0.5)
    box.inject(Fault(status=504, after=True, path="/batch/create"))
    run(tmp_path, box, BY_NAME, 30, search_settle=0.0)
    assert set(per_name(box).values()) == {2}


def test_lookups_by_search_stay_under_searchs_own_limit(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(search_rate_limit=5)
    client = HubSpotClient(token=TOKEN, base_url=box.url, retry=FAST)
    try:
        found = Finder(client, "contacts", "lastname").find([f"Name {n}" for n in range(1_000)])
    finally:
        client.close()
    assert found == {}
    searches = [r for r in box.received if r.path.endswith("/search")]
    assert len(searches) == 10  # IN filters of 100 values
    assert client.rate_limited == 0  # paced under 5 a second: no 429 needed


def test_an_upsert_whose_answer_is_lost_says_which_records_it_created(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    # One record exists before; the upsert creates the other two, and its answer is lost.
    (old,) = sandbox.store.create_many("products", [({"hs_sku": "00000", "name": "old"}, [])])
    sandbox.store.update("products", old["id"], {"createdate": "2026-01-05T09:00:00.000Z"})
    sandbox.inject(Fault(drop=True, after=True, path="/batch/upsert"))
    result = run(tmp_path, sandbox, BY_SKU.replace("key: SKU", "key: SKU\nmode: upsert"), 3)
    assert outcome(result) == {"created": 2, "updated": 1}
    statuses = {r["SKU"]: r["status"] for r in read_sheet(tmp_path / "out.xlsx")}
    assert statuses == {"00000": "updated", "00001": "created", "00002": "created"}
    assert len(sandbox.records("products")) == 3
