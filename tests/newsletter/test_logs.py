"""Log lines: one per event, logfmt or JSON, and never an address, a token or a key where a hash will do."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from newsletter import logs
from newsletter.config import Settings
from newsletter.errors import ConfigError, ProviderUnavailable
from newsletter.providers.memory import MemoryProvider
from newsletter.web.access_log import log_config
from newsletter.web.app import create_app
from tests.newsletter.test_issues import seed
from tests.newsletter.web.helpers import free_port, uvicorn_serving
from tests.newsletter.web.test_app import token_for

log = logging.getLogger("newsletter.test")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger back as it was, so other tests' capturing works."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(settings: Settings, emit: Callable[[], None]) -> list[str]:
    stream = io.StringIO()
    logs.configure(settings, stream=stream)
    emit()
    return stream.getvalue().splitlines()


def test_logfmt_is_one_line_of_key_value_fields(make_settings: Callable[..., Settings], restore_logging: None) -> None:
    def emit() -> None:
        log.info("issue paused", extra={"issue": 3, "reason": 'said "no"\nthen left', "retry": False})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("job failed")

    first, second = lines(make_settings(), emit)
    fields = dict(part.split("=", 1) for part in shlex.split(first))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"])
    assert (fields["level"], fields["logger"], fields["msg"], fields["issue"], fields["retry"]) == (
        "info", "newsletter.test", "issue paused", "3", "false")
    assert 'reason="said \\"no\\"\\nthen left"' in first  # quoted and escaped: still one line
    assert second.startswith("time=") and "level=error" in second and "ValueError: boom" in second
    assert "exc=\"Traceback" in second


def test_json_lines_with_newsletter_log_format_json(make_settings: Callable[..., Settings],
                                                   restore_logging: None) -> None:
    (line,) = lines(make_settings(log_format="json"), lambda: log.warning("slow", extra={"seconds": 2.5}))
    record = json.loads(line)
    assert {k: record[k] for k in ("level", "logger", "msg", "seconds")} == {
        "level": "warning", "logger": "newsletter.test", "msg": "slow", "seconds": 2.5}


def test_bad_log_settings_say_what_to_write(make_settings: Callable[..., Settings]) -> None:
    from newsletter.config import load_settings

    with pytest.raises(ConfigError, match="NEWSLETTER_LOG_FORMAT: Input should be 'logfmt' or 'json'"):
        load_settings(_env_file=None, log_format="xml")
    assert load_settings(_env_file=None, log_format="JSON", log_level="debug").log_level == "DEBUG"


def test_addresses_tokens_keys_and_passwords_are_taken_out(make_settings: Callable[..., Settings],
                                                          restore_logging: None) -> None:
    token = "MTI.gvCEg4JO-j6qMLrTe4eA72pK81g"
    (line,) = lines(make_settings(), lambda: log.warning(
        "550 <Ann.Smith@example.org> refused at /unsubscribe/%s with api_key=sk-live-123 and Bearer abc.def via "
        "postgresql://app:hunter2@db/newsletter", token))
    assert "Ann.Smith" not in line and "example.org" not in line and token not in line
    assert "sk-live-123" not in line and "abc.def" not in line and "hunter2" not in line
    assert logs.hashed("ann.smith@example.org") in line  # the same reader can still be followed through the log
    assert "[token]" in line and "postgresql://app:***@db/newsletter" in line


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn with the access log `newsletter serve` configures; its base URL."""
    port = free_port()
    with uvicorn_serving(app, port, log_config=log_config(), log_level="info"):
        yield f"http://127.0.0.1:{port}"


def test_a_signup_unsubscribe_and_webhook_flow_logs_no_address_nor_token(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings], capfd: pytest.CaptureFixture[str],
        restore_logging: None) -> None:
    seed(engine)
    settings = make_settings(database_url=database_url, log_format="json", public_url="http://localhost:8000",
                             postmark_webhook_username="pm", postmark_webhook_password="pw-0123456789")
    logs.configure(settings)
    outbox = MemoryProvider()  # the first confirmation fails with the service quoting the address
    outbox.fail_with = ProviderUnavailable("550 5.1.1 <ann.smith@example.org>: mailbox unavailable")
    _, unsubscribe = token_for(engine, "all0@example.com")
    _, manage = token_for(engine, "all1@example.com", "manage")
    bounce = {"RecordType": "Bounce", "ID": 9, "Type": "HardBounce", "Email": "all2@example.com", "MessageID": "m"}
    basic = "Basic " + base64.b64encode(b"pm:pw-0123456789").decode()
    with serving(create_app(settings, provider=outbox)) as base, httpx.Client(base_url=base, timeout=10) as client:
        form = client.get("/").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form)
        assert csrf
        for _ in range(2):  # the second one goes out
            client.post("/subscribe", data={"csrf": csrf[1], "email": "ann.smith@example.org"})
            time.sleep(0.3)  # the mail goes after the answer
        assert client.post(f"/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
        assert client.get(f"/preferences/{manage}").status_code == 200
        assert client.post("/webhooks/postmark", content=json.dumps(bounce),
                           headers={"Authorization": basic}).status_code == 200
        assert client.get("/healthz").status_code == 200
    out, err = capfd.readouterr()
    records = [json.loads(line) for line in (out + err).splitlines() if line.startswith("{")]
    text = "\n".join(json.dumps(r) for r in records)
    assert "@example.org" not in text and "@example.com" not in text
    assert unsubscribe not in text and manage not in text and "pw-0123456789" not in text
    messages = [r["msg"] for r in records]
    assert "confirmation email sent" in messages
    failed = next(r for r in records if "not sent" in r["msg"])
    assert logs.hashed("ann.smith@example.org") in failed["msg"]
    event = next(r for r in records if r["msg"] == "webhook event")
    assert (event["kind"], event["address"]) == ("hard_bounce", logs.hashed("all2@example.com"))
    paths = [r["path"] for r in records if r["msg"] == "request"]
    assert "/unsubscribe/[token]" in paths and "/preferences/[token]" in paths
    assert "/healthz" not in paths  # a probe that answered leaves no line
