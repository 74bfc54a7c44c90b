"""The file, console and memory providers keep the one contract: one result per message, in order."""

from __future__ import annotations

import email
import io
from email import policy
from pathlib import Path

import pytest

from newsletter.errors import ProviderAuthError, ProviderUnavailable
from newsletter.providers.console import ConsoleProvider
from newsletter.providers.file import FileProvider
from newsletter.providers.memory import MemoryProvider
from tests.newsletter.providers.test_http_providers import BROKEN_SUBJECT
from tests.newsletter.providers.test_mime import message


def test_file_provider_writes_one_eml_per_message(tmp_path: Path) -> None:
    batch = [message(delivery_id=i, to=f"r{i}@example.org") for i in (3, 1, 2)]
    with FileProvider(tmp_path / "outbox", domain="news.example.com") as provider:
        results = provider.send_messages(batch)
        again = provider.send_messages(batch[:1])
    assert [r.delivery_id for r in results] == [3, 1, 2]
    assert all(r.status == "submitted" and r.provider_id and r.provider_id.endswith("@news.example.com>") for r in results)
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert [f.name for f in files] == ["00000001-r1@example.org.eml", "00000002-r2@example.org.eml",
                                       "00000003-r3@example.org.eml"]
    assert again[0].status == "submitted" and len(files) == 3  # a resend replaces the file
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["To"] == "r1@example.org"
    assert not list((tmp_path / "outbox").glob("*.tmp"))


def test_file_provider_writes_a_one_line_subject_and_an_ascii_domain(tmp_path: Path) -> None:
    broken = message(to="user@bücher.example", subject=BROKEN_SUBJECT.format(c=0))
    with FileProvider(tmp_path, domain="news.example.com") as provider:
        provider.send_messages([broken])
    raw = next(tmp_path.glob("*.eml")).read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert b"Subject: Patchwise vs Stackpilot 0 , and 2 more verdicts" in head
    assert b"To: user@xn--bcher-kva.example" in head


def test_console_provider_prints_one_line_per_message_whatever_the_subject() -> None:
    stream = io.StringIO()
    ConsoleProvider(stream).send_messages([message(subject="a\r\nb"), message(subject="c\u2028d")])
    assert stream.getvalue().splitlines()[0].startswith("reader@example.org | a b |")
    assert len(stream.getvalue().splitlines()) == 2


def test_file_provider_reports_an_unwritable_outbox(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ProviderUnavailable, match="cannot create outbox"):
        FileProvider(blocker / "outbox", domain="x.example").send_messages([message()])


def test_console_provider_prints_a_line_per_message() -> None:
    stream = io.StringIO()
    results = ConsoleProvider(stream).send_messages([message(delivery_id=5), message(delivery_id=6, to="b@example.org")])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("b@example.org | Claude 4 Opus API")
    assert [r.status for r in results] == ["submitted", "submitted"]


def test_memory_provider_rejects_per_recipient_and_fails_whole_batches() -> None:
    provider = MemoryProvider(reject={"bad@example.org": "inactive recipient"})
    results = provider.send_messages([message(delivery_id=1), message(delivery_id=2, to="bad@example.org")])
    assert [(r.status, r.reason) for r in results] == [("submitted", None), ("rejected", "inactive recipient")]
    assert [m.delivery_id for m in provider.outbox] == [1]
    provider.fail_with = ProviderAuthError("bad token")
    with pytest.raises(ProviderAuthError):
        provider.send_messages([message()])
    assert provider.send_messages([message(delivery_id=9)])[0].status == "submitted"
