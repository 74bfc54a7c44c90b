"""The SMTP relay's login, checked read-only against a real aiosmtpd server: connect, log in, hang up."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller

from newsletter.doctor import Context
from newsletter.doctor.credentials import check_credentials
from tests.newsletter.providers.test_smtp import Inbox, authenticator, free_port


@pytest.fixture
def relay() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield handler, port
    controller.stop()


def test_a_relay_that_takes_the_login_passes_and_nothing_is_sent(relay: tuple[Inbox, int],
                                                                context: Callable[..., Context]) -> None:
    handler, port = relay
    settings = {"provider": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
                "smtp_username": "news"}
    [ok] = check_credentials(context(**settings, smtp_password="s3cret"))
    assert ok.status == "pass" and ok.detail == f"127.0.0.1:{port} accepted the connection as news"
    [refused] = check_credentials(context(**settings, smtp_password="wrong"))
    assert refused.status == "fail" and "s3cret" not in refused.detail + refused.fix and "wrong" not in refused.detail
    assert handler.envelopes == []
