"""A reader's time zone through the real app: from the sign-up form, changed in preferences, refused if unknown."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.web.app import SECURITY_HEADERS
from newsletter.web.zone_script import ZONE_SCRIPT, ZONE_SCRIPT_SOURCE
from subscribers.tokens import Signer
from tests.newsletter.web.helpers import SECRET, confirm, csrf, link_in, running
from tests.newsletter.web.test_reader_signup import row


def test_the_sign_up_zone_is_kept_an_unknown_one_ignored_and_preferences_change_it(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url, timezone="Europe/Berlin") as (client, outbox):
        page = client.get("/")
        assert f"<script>{ZONE_SCRIPT}</script>" in page.text and 'name="time_zone"' in page.text
        assert f"script-src {ZONE_SCRIPT_SOURCE};" in page.headers["content-security-policy"]
        assert "unsafe-inline" not in SECURITY_HEADERS["Content-Security-Policy"].split("script-src")[1]
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "kim@example.org",
                                        "time_zone": "America/Los_Angeles"})
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "lee@example.org",
                                        "time_zone": "Europe/Atlantis"})
        assert row(engine, "kim@example.org").time_zone == "America/Los_Angeles"  # type: ignore[union-attr]
        assert row(engine, "lee@example.org").time_zone is None  # type: ignore[union-attr]  # the publication's
        confirm(client, link_in(outbox, "kim@example.org"))
        subscriber = row(engine, "kim@example.org")
        assert subscriber is not None and subscriber.id is not None
        url = f"/preferences/{Signer(SECRET).mint('manage', subscriber.id)}"
        form = client.get(url).text
        assert '<optgroup label="Asia">' in form and "The publication's (Europe/Berlin)" in form
        assert '<option value="America/Los_Angeles" selected>' in form
        saved = client.post(url, data={"csrf": csrf(client, url), "time_zone": "Asia/Kolkata", "pause": "0"})
        assert saved.status_code == 200 and "Saved: your time zone is Asia/Kolkata." in saved.text
        assert row(engine, "kim@example.org").time_zone == "Asia/Kolkata"  # type: ignore[union-attr]
        refused = client.post(url, data={"csrf": csrf(client, url), "time_zone": "Mars/Base", "pause": "0"})
        assert refused.status_code == 400
        assert "Not saved: &#39;Mars/Base&#39; is not an IANA time zone name" in refused.text
        assert row(engine, "kim@example.org").time_zone == "Asia/Kolkata"  # type: ignore[union-attr]
        client.post(url, data={"csrf": csrf(client, url), "time_zone": "", "pause": "0"})
        assert row(engine, "kim@example.org").time_zone is None  # type: ignore[union-attr]
