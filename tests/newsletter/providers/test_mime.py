"""MIME as mail clients read it: structure, required headers, raw one-click unsubscribe headers."""

from __future__ import annotations

import email
import re
from email import policy

from newsletter.providers.mime import build_mime
from newsletter.values import Message

LONG_TOKEN = "MTIzNDU2Nzg5MA." + "x" * 120
HEADERS = (
    ("List-Unsubscribe", f"<https://app.example.com/unsubscribe/{LONG_TOKEN}>, "
                         f"<mailto:unsubscribe@news.example.com?subject=unsubscribe%20{LONG_TOKEN}>"),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ("X-Newsletter-Issue", "7"),
)


def message(**overrides: object) -> Message:
    values: dict[str, object] = {
        "delivery_id": 1, "sender": "Zoë's Verdicts <verdicts@news.example.com>", "to": "reader@example.org",
        "subject": "Claude 4 Opus API vs Mistral 3 Small — and 7 more verdicts, über", "html": "<p>" + "é" * 3000 + "</p>",
        "text": "Plain text first. " * 50, "headers": HEADERS,
    }
    return Message(**(values | overrides))  # type: ignore[arg-type]


def test_structure_is_text_then_html() -> None:
    raw = build_mime(message(), domain="news.example.com").as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed.get_body(("html",)).get_content().rstrip() == "<p>" + "é" * 3000 + "</p>"  # type: ignore[union-attr]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")


def test_date_and_message_id_on_the_senders_domain() -> None:
    parsed = email.message_from_bytes(build_mime(message(), domain="news.example.com").as_bytes(), policy=policy.default)
    assert re.fullmatch(r"<[^@]+@news\.example\.com>", str(parsed["Message-ID"]))
    assert parsed["Date"].datetime is not None
    assert parsed["Subject"] == "Claude 4 Opus API vs Mistral 3 Small — and 7 more verdicts, über"
    assert parsed["From"].addresses[0].display_name == "Zoë's Verdicts"


def test_unsubscribe_headers_are_raw_bytes_never_rfc2047() -> None:
    raw = build_mime(message(), domain="news.example.com").as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head)
    lines = {line.split(b":", 1)[0].lower(): line for line in unfolded.split(b"\r\n")}
    assert lines[b"list-unsubscribe"] == (
        b"List-Unsubscribe: <https://app.example.com/unsubscribe/" + LONG_TOKEN.encode() + b">, "
        b"<mailto:unsubscribe@news.example.com?subject=unsubscribe%20" + LONG_TOKEN.encode() + b">")
    assert lines[b"list-unsubscribe-post"] == b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    assert b"=?utf-8?" not in lines[b"list-unsubscribe"]


def test_content_cannot_inject_headers() -> None:
    injected = message(subject="Hi\r\nBcc: everyone@example.com", headers=(("X-Note", "a\nb"),))
    raw = build_mime(injected, domain="news.example.com").as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hi Bcc: everyone@example.com"
    assert parsed["X-Note"] == "a b"


def test_an_internationalised_domain_is_written_in_ascii_never_rfc2047() -> None:
    raw = build_mime(message(to="user@bücher.example"), domain="news.example.com").as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert b"To: user@xn--bcher-kva.example" in head
    assert not any(line.startswith(b"To:") and b"=?" in line for line in head)
