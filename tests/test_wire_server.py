"""The wire server's Postmark single-message endpoint, and its counting mode, answer as Postmark does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.wire_server import KEY, WireServer

MESSAGE = {"From": "Verdicts <v@news.example.com>", "To": "reader@example.org", "Subject": "Week 49",
           "HtmlBody": '<p>"To": "not@this.one", {"To":"nor@this"}</p>', "TextBody": "text",
           "MessageStream": "broadcast", "Headers": [{"Name": "List-Unsubscribe", "Value": "<https://u>"}]}


@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


def post(server: WireServer, path: str, body: object, token: str = KEY) -> httpx.Response:
    # json.dumps' default separators, as django-anymail sends them
    return httpx.post(f"{server.url}{path}", content=json.dumps(body), timeout=10,
                      headers={"X-Postmark-Server-Token": token, "Content-Type": "application/json"})


def test_one_message_is_accepted_with_its_id_and_kept(server: WireServer) -> None:
    answer = post(server, "/email", MESSAGE)
    assert answer.status_code == 200
    assert answer.json()["ErrorCode"] == 0 and answer.json()["To"] == "reader@example.org"
    assert answer.json()["MessageID"] and answer.json()["SubmittedAt"]
    (kept,) = server.state.received
    assert (kept.to, kept.html, kept.headers) == ("reader@example.org", MESSAGE["HtmlBody"],
                                                  {"List-Unsubscribe": "<https://u>"})


def test_a_refused_message_is_a_422_with_its_error_code(server: WireServer) -> None:
    server.state.inactive.add("reader@example.org")
    answer = post(server, "/email", MESSAGE)
    assert answer.status_code == 422 and answer.json()["ErrorCode"] == 406
    assert post(server, "/email", {**MESSAGE, "To": "nobody"}).json()["ErrorCode"] == 300
    assert post(server, "/email", MESSAGE, token="wrong").status_code == 401
    assert server.state.received == []


def test_counting_mode_finds_each_recipient_without_reading_the_bodies(server: WireServer) -> None:
    server.state.keep = False
    batch = [{**MESSAGE, "To": f"reader{i}@example.org"} for i in range(3)]
    answer = post(server, "/email/batch", batch)
    assert [item["To"] for item in answer.json()] == [m["To"] for m in batch]
    assert post(server, "/email", MESSAGE).json()["To"] == "reader@example.org"
    assert server.state.recipients == 4  # the "To" text inside the bodies is not counted
    assert post(server, "/email/batch", "not a batch").status_code == 422
    assert httpx.get(f"{server.url}/sample/email", timeout=10).content == json.dumps(MESSAGE).encode()
