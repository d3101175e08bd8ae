"""docs/nightly.md's "A complete nightly feed" works as written: its mapping and its script,
run night after night against a dated feed in S3 (moto's server on 127.0.0.1), a webhook on
127.0.0.1 and the sandbox: imported, skipped when unchanged, products that left the feed
archived, a feed that lost a third of them stopped, and the archive undone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from importer.sandbox import Sandbox

from .remote_servers import S3, moto_server_fixture, s3_fixture  # noqa: F401  (fixtures)
from .test_notify import Webhook, webhook_fixture  # noqa: F401  (the fixture `webhook`)

ROOT = Path(__file__).resolve().parent.parent
RECIPE = (
    (ROOT / "docs" / "nightly.md")
    .read_text(encoding="utf-8")
    .split("### A complete nightly feed", 1)[1]
)
BUCKET = "supplier-feeds"


def _block(kind: str) -> str:
    found = re.search(rf"```{kind}\n(.*?)```", RECIPE, re.DOTALL)
    assert found, f"no {kind} block in the recipe"
    return found.group(1)


def _feed(skus: range) -> bytes:
    """The supplier's CSV, as a European spreadsheet saves it: `;` between cells, prices
    written 1.007,50."""
    lines = ["SKU;Name;Price"]
    lines += [f"{n:05d};Product {n};{1 + n // 1000}.{n % 1000:03d},50" for n in skus]
    return ("\n".join(lines) + "\n").encode()


class Site:
    """/srv/catalogue as the recipe sets it up, and one night's run of its script."""

    def __init__(self, tmp: Path, box: Sandbox, hook: Webhook) -> None:
        self.root = tmp / "catalogue"
        (self.root / "mappings").mkdir(parents=True)
        mapping = _block("yaml").replace(
            "https://hooks.slack.com/services/T000/B000/XXXX", hook.url
        )
        (self.root / "mappings" / "supplier.yaml").write_text(mapping, encoding="utf-8")
        self.token = tmp / "token"
        self.token.write_text("pat-feed-test\n", encoding="utf-8")
        self.script = (
            _block("sh")
            .replace("/srv/catalogue", str(self.root))
            .replace("/etc/hubspot/token", str(self.token))
            .replace("/srv/venv/bin/hubspot-import", f"{sys.executable} -m importer")
            .rstrip()
            + f" --base-url {box.url}\n"
        )

    def night(self) -> tuple[int, dict[str, Any]]:
        """Run the script once: its exit code and the summary it wrote."""
        env = {k: v for k, v in os.environ.items() if k != "HUBSPOT_ACCESS_TOKEN"}
        done = subprocess.run(
            ["sh", "-c", self.script], env=env, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        (summary,) = (self.root / "results").glob("products-*.json")
        data: dict[str, Any] = json.loads(summary.read_text(encoding="utf-8"))
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, data

    def undo(self, run_id: str, box: Sandbox) -> str:
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": "pat-feed-test"}
        done = subprocess.run(
            [sys.executable, "-m", "importer", "undo", run_id, "--yes", "--state-dir",
             str(self.root / "state"), "--base-url", box.url],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout


def _live_skus(box: Sandbox) -> set[str]:
    """The SKUs of the products HubSpot holds (archived ones left out)."""
    return {r["properties"]["hs_sku"] for r in box.store.scan("products")}


def test_the_nightly_feed_recipe_imports_skips_archives_guards_and_undoes(
    sandbox: Sandbox, s3: S3, webhook: Webhook, tmp_path: Path
) -> None:
    s3.bucket(BUCKET)
    site = Site(tmp_path, sandbox, webhook)

    # Night 1: the first feed, 1,000 products, prices in the supplier's format.
    s3.put(BUCKET, "catalogue/products-2026-12-01.csv", _feed(range(1000)))
    code, summary = site.night()
    assert code == 0, summary
    assert summary["counts"]["created"] == 1000
    assert summary["input_file"] == f"s3://{BUCKET}/catalogue/products-2026-12-01.csv"
    assert len(_live_skus(sandbox)) == 1000
    (seventh,) = sandbox.store.find("products", "hs_sku", ["00007"])["00007"]
    assert sandbox.store.get("products", seventh)["properties"]["price"] == "1007.5"

    # Night 2: nothing new in the bucket: skipped at once.
    code, summary = site.night()
    assert code == 0
    assert summary["status"] == "skipped_unchanged"

    # Night 3: ten products left the feed (1 %), ten new ones arrived: archived within the guard.
    s3.put(BUCKET, "catalogue/products-2026-12-02.csv", _feed(range(10, 1010)))
    code, summary = site.night()
    assert code == 0, summary
    assert summary["counts"]["created"] == 10
    assert summary["missing"]["archived"] == 10
    live = _live_skus(sandbox)
    assert len(live) == 1000
    assert "00000" not in live
    assert "01009" in live
    archiving_run = summary["run_id"]

    # Night 4: a third of the products gone: stopped before writing, exit 3.
    s3.put(BUCKET, "catalogue/products-2026-12-03.csv", _feed(range(350, 1350)))
    code, summary = site.night()
    assert code == 3
    assert summary["guard"] == "max_missing"
    assert "340 of 1,000 records the mapping holds" in summary["stopped_by"]
    assert _live_skus(sandbox) == live  # nothing archived, nothing created

    # Every night was posted, the skipped one and the stopped one included.
    posted = [r.body for r in webhook.received]
    assert len(posted) == 4
    assert [p["summary"]["exit_code"] for p in posted] == [0, 0, 0, 3]

    # Undo of night 3 brings the ten archived products back (and archives its ten new ones).
    said = site.undo(archiving_run, sandbox)
    assert "-> " in said
    back = _live_skus(sandbox)
    assert {f"{n:05d}" for n in range(10)} <= back
    assert not {f"{n:05d}" for n in range(1000, 1010)} & back
