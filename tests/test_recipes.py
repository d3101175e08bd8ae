"""The cron line and systemd units of docs/nightly.md work as written, on a fresh directory."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from importer.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "docs" / "nightly.md").read_text(encoding="utf-8")


def block(kind: str) -> str:
    found = re.search(rf"```{kind}\n(.*?)```", README, re.DOTALL)
    assert found, f"no {kind} block in docs/nightly.md"
    return found.group(1)


def fresh_site(tmp_path: Path) -> Path:
    """/srv/catalogue as a new user sets it up: the mapping and tonight's export, no more."""
    site = tmp_path / "catalogue"
    (site / "mappings").mkdir(parents=True)
    (site / "exports").mkdir()
    shutil.copy(ROOT / "mappings" / "products.yaml", site / "mappings")
    shutil.copy(ROOT / "data" / "products.xlsx", site / "exports")
    return site


def test_the_cron_line_runs_on_a_fresh_directory(sandbox: Sandbox, tmp_path: Path) -> None:
    line = block("cron").strip()
    schedule, command = line.split(" ", 5)[:5], line.split(" ", 5)[5]
    assert len(schedule) == 5
    site = fresh_site(tmp_path)
    token = tmp_path / "token"
    token.write_text("pat-cron-test\n", encoding="utf-8")
    command = (
        command.replace("/srv/catalogue", str(site))
        .replace("/etc/hubspot/token", str(token))
        .replace("/srv/venv/bin/hubspot-import", f"{sys.executable} -m importer")
        .replace("\\%", "%")  # cron's escape for %
    ) + f" --base-url {sandbox.url}"
    env = {k: v for k, v in os.environ.items() if k != "HUBSPOT_ACCESS_TOKEN"}
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    today = dt.date.today().isoformat()
    assert (site / "results" / f"products-{today}.xlsx").exists()
    assert "results written to" in (site / "logs" / f"import-{today}.log").read_text("utf-8")
    summary = json.loads((site / "results" / f"products-{today}.json").read_text("utf-8"))
    assert summary["exit_code"] == 0
    assert summary["counts"]["created"] == 320


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    text = block("ini")
    units = re.split(r"^# /etc/systemd/system/(\S+)\n", text, flags=re.MULTILINE)[1:]
    names = units[0::2]
    assert names == ["catalogue-import.service", "catalogue-import.timer"]
    for body in units[1::2]:
        for line in body.splitlines():
            if line and not line.startswith(("#", "[")):
                # systemd has no comments after a value: they become part of it.
                assert "#" not in line, line
    service = units[1]
    assert re.search(r"^SuccessExitStatus=1$", service, re.MULTILINE)  # never 4 (a bug)
    site = fresh_site(tmp_path)
    token = tmp_path / "token.env"
    token.write_text("HUBSPOT_ACCESS_TOKEN=pat-x\n", encoding="utf-8")
    program = shutil.which("hubspot-import") or str(Path(sys.executable).parent / "hubspot-import")
    service = (
        service.replace("/srv/catalogue", str(site))
        .replace("/etc/hubspot/token.env", str(token))
        .replace("/srv/venv/bin/hubspot-import", program)
    )
    (tmp_path / names[0]).write_text(service, encoding="utf-8")
    (tmp_path / names[1]).write_text(units[3], encoding="utf-8")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine; the units' text was checked")
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / names[0]), str(tmp_path / names[1])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
