"""`newsletter issue send` and `issue list` with local delivery: the waves ahead are said, nothing goes early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_PAGES
from tests.newsletter.test_cli import env, run  # noqa: F401 - env: the configured CLI working folder


@pytest.mark.usefixtures("env")
def test_a_local_send_waits_for_the_wave_and_the_list_shows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)  # the readers' (UTC) send time is two hours away
    monkeypatch.setenv("NEWSLETTER_DELIVERY_MODE", "local")
    monkeypatch.setenv("NEWSLETTER_LOCAL_SEND_TIME", later.strftime("%H:%M"))
    monkeypatch.setenv("NEWSLETTER_TIMEZONE", "UTC")
    run("import", *[str(p) for p in sorted(FIXTURE_PAGES.glob("*.txt"))], "--published", "2026-11-18")
    run("subscribers", "add", "a@example.com", "b@example.com")
    run("issue", "build", "--week", "2026-W47")
    sent = run("issue", "send", "1")
    assert "Issue 1 is sending: 0 submitted" in sent and "Waves still ahead" in sent
    assert f"{later.strftime('%H:%M')} UTC: 1 zone, 2 readers, ahead, 2 left" in sent
    assert not list((tmp_path / "out").glob("*.eml"))  # nothing went early
    listing = run("issue", "list")
    assert "Issue 1 wave" in listing and "1 zone, 2 readers, ahead" in listing
