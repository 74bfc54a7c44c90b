"""``newsletter doctor`` end to end: a real DNS server, the wire server, the app under uvicorn and the database;
a correct setup passes with exit status 0, ``--json`` parses, and a failure exits 1."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

import scheduler
from newsletter.cli import app
from newsletter.config import load_settings
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from tests.conftest import ROOT, TEST_SECRET_KEY
from tests.newsletter.doctor.conftest import ZONES
from tests.newsletter.web.helpers import free_port, uvicorn_serving
from tests.wire_server import KEY, WireServer

runner = CliRunner()


@pytest.fixture
def installation(engine: Engine, database_url: str, dns_zone: Callable[[str], Any],
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A correct Resend installation on 127.0.0.1; yields the DNS server's address for --nameserver."""
    port = free_port()
    with WireServer() as wire:
        for name, value in {
            "DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET_KEY, "POSTAL_ADDRESS": "1 Test Street",
            "FROM_ADDRESS": "Verdicts <verdicts@news.example.com>", "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PROVIDER": "resend", "PROVIDER_API_KEY": KEY, "PROVIDER_BASE_URL": wire.url,
            "RESEND_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }.items():
            monkeypatch.setenv(f"NEWSLETTER_{name}", value)
        settings = load_settings(_env_file=None)
        jobs = scheduler.build_scheduler(settings, engine)
        scheduler.start(jobs, settings)
        jobs.shutdown(wait=False)
        with uvicorn_serving(create_app(settings, provider=MemoryProvider()), port):
            yield dns_zone(ZONES["resend"]).address


def test_a_correct_installation_passes(installation: str) -> None:
    result = runner.invoke(app, ["doctor", "--nameserver", installation], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "SPF" in result.output and "One-click unsubscribe" in result.output
    assert "0 failed" in result.output and KEY not in result.output


def test_json_parses_and_a_failure_exits_1(installation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["doctor", "--json", "--nameserver", installation])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["counts"]["fail"] == 0
    assert {f["name"] for f in report["findings"]} >= {"SPF", "DKIM", "DMARC", "Provider key", "Schema"}
    monkeypatch.setenv("NEWSLETTER_PROVIDER_API_KEY", "re_wrong_key_0123456789")
    failing = runner.invoke(app, ["doctor", "--json", "--nameserver", installation])
    assert failing.exit_code == 1
    report = json.loads(failing.output)
    assert report["ok"] is False and [f["name"] for f in report["findings"] if f["status"] == "fail"] == ["Provider key"]
    assert "re_wrong_key_0123456789" not in failing.output


def test_a_nameserver_that_is_no_address_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["doctor", "--nameserver", "ns1.example.com"])
    assert result.exit_code == 1 and "give an IP address" in result.output


def readme_samples() -> list[list[tuple[str, str]]]:
    """Each README sample run of ``newsletter doctor``: its rows' (check, result), continuation rows left out."""
    readme = (ROOT / "README.md").read_text()
    samples = []
    for block in re.findall(r"```\n\$ [^\n]*newsletter doctor\n(.+?)```", readme, flags=re.DOTALL):
        rows = [[cell.strip() for cell in line.split("│")[1:3]] for line in block.splitlines() if line.startswith("│")]
        samples.append([(check, result) for check, result in rows if check])
    return samples


def test_the_readme_samples_show_the_checks_this_doctor_makes(installation: str) -> None:
    result = runner.invoke(app, ["doctor", "--json", "--nameserver", installation])
    made = [f["name"] for f in json.loads(result.output)["findings"]]
    whole, *parts = sorted(readme_samples(), key=len, reverse=True)
    assert [check for check, _ in whole] == made  # the whole run, in the order the doctor runs its checks
    assert parts and all({check for check, _ in part} <= set(made) for part in parts)
    assert all(r in ("pass", "warn", "FAIL", "n/a") for sample in (whole, *parts) for _, r in sample)
