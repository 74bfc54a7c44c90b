"""Request bodies are capped before and while they are read, under a real uvicorn, on both databases."""

from __future__ import annotations

import base64
import select
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from newsletter.web.limits import MAX_BODY
from tests.newsletter.test_issues import seed
from tests.newsletter.web.helpers import SECRET, free_port, running, uvicorn_serving
from tests.newsletter.web.test_provider_hooks import MAILGUN_KEY, RESEND_SECRET, SENDGRID_PUBLIC, signed, snapshot

WEBHOOKS: dict[str, Any] = {"postmark_webhook_username": "pm", "postmark_webhook_password": "pw",
                            "sendgrid_webhook_public_key": SENDGRID_PUBLIC, "mailgun_webhook_signing_key": MAILGUN_KEY,
                            "resend_webhook_secret": RESEND_SECRET}
HUGE = 64 * 1024 * 1024  # what the client would send in all; the server must stop long before
CHUNK = 64 * 1024


@pytest.fixture
def port(engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> Iterator[int]:
    """The app under uvicorn on a free port, every webhook configured."""
    seed(engine)
    free = free_port()
    settings = make_settings(database_url=database_url, secret_key=SECRET, **WEBHOOKS)
    with uvicorn_serving(create_app(settings, provider=MemoryProvider()), free):
        yield free


def stream(port: int, path: str, headers: dict[str, str], *, chunked: bool = True) -> tuple[int, int]:
    """POST up to HUGE bytes in chunks, stopping as soon as the server answers; returns (status, bytes sent)."""
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(HUGE)}
    head = "".join(f"{name}: {value}\r\n" for name, value in (headers | framing).items())
    piece = b"{" * CHUNK
    frame = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
        while sent < HUGE and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(frame)
            except OSError:  # the server answered and closed while we were still writing
                break
            sent += CHUNK
        answer = sock.recv(200)
    return int(answer.split()[1]), sent


CASES = [
    ("/webhooks/postmark", {"Authorization": "Basic " + base64.b64encode(b"pm:wrong").decode()}, 401),
    ("/webhooks/postmark", signed("postmark", b""), 413),
    ("/webhooks/sendgrid", {}, 401),  # no signature headers: refused before the body is read
    ("/webhooks/resend", {"svix-id": "msg_1"}, 401),
    ("/webhooks/mailgun", {}, 413),  # the signature is inside the body: only the cap protects it
    ("/subscribe", {"Content-Type": "application/x-www-form-urlencoded"}, 413),
]


@pytest.mark.parametrize(("path", "headers", "expected"), CASES, ids=[f"{p}-{c}" for p, _, c in CASES])
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_huge_body_is_refused_without_being_read(port: int, engine: Engine, path: str, headers: dict[str, str],
                                                   expected: int, chunked: bool) -> None:
    before = snapshot(engine)
    code, sent = stream(port, path, headers, chunked=chunked)
    assert code == (expected if chunked else 413)  # a declared length over the cap is refused before all else
    assert sent < 16 * MAX_BODY, f"the client got to send {sent} bytes"  # socket buffers hold a few MB at most
    assert snapshot(engine) == before


def test_the_cap_is_exact(engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    seed(engine)
    with running(make_settings, database_url, **WEBHOOKS) as (client, _):
        over = client.post("/webhooks/postmark", content=b" " * (MAX_BODY + 1), headers=signed("postmark", b""))
        assert over.status_code == 413 and over.headers["x-frame-options"] == "DENY"
        at = client.post("/webhooks/postmark", content=b" " * MAX_BODY, headers=signed("postmark", b""))
        assert at.status_code == 400  # read, and refused only as not being JSON
