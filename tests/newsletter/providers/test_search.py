"""What Postmark's message search and Mailgun's events API are asked, and how their answers are read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from newsletter.errors import ProviderRequestError
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.postmark import PostmarkProvider

SINCE = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 09:00 in New York (EST, UTC-5)
UNTIL = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)


def test_postmark_searches_each_delivery_by_reader_metadata_and_eastern_window() -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        found = request.url.params["metadata_delivery_id"] == "7"
        messages = [{"MessageID": "m", "Recipients": ["a@example.com"], "Metadata": {"delivery_id": "7"},
                     "Status": "Sent", "ReceivedAt": "2026-11-23T09:10:00-05:00"}] if found else []
        return httpx.Response(200, json={"TotalCount": len(messages), "Messages": messages})

    provider = PostmarkProvider(api_key="k", transport=httpx.MockTransport(answer), message_stream="broadcast")
    with provider:
        assert provider.accepted({7: "a@example.com", 8: "b@bücher.example"}, since=SINCE, until=UNTIL) == {7}
    params = [dict(request.url.params) for request in asked]
    assert params[0] == {"count": "50", "offset": "0", "recipient": "a@example.com", "messagestream": "broadcast",
                         "metadata_delivery_id": "7", "fromdate": "2026-11-23T08:59:00",
                         "todate": "2026-11-23T10:31:00"}
    assert params[1]["recipient"] == "b@xn--bcher-kva.example"
    assert all(r.method == "GET" and r.url.path == "/messages/outbound" for r in asked)
    assert asked[0].headers["X-Postmark-Server-Token"] == "k"


def test_postmark_search_refused_is_an_error_not_a_miss() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"ErrorCode": 1, "Message": "bad"})

    with PostmarkProvider(api_key="k", transport=httpx.MockTransport(answer)) as provider, \
            pytest.raises(ProviderRequestError, match="message search failed"):
        provider.accepted({1: "a@example.com"}, since=SINCE, until=UNTIL)


def test_a_search_without_an_answer_is_retried() -> None:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"TotalCount": 0, "Messages": []})

    provider = PostmarkProvider(api_key="k", transport=httpx.MockTransport(answer), sleep=lambda _: None)
    with provider:
        assert provider.accepted({1: "a@example.com"}, since=SINCE, until=UNTIL) == set()
    assert len(calls) == 2  # a read changes nothing, so no answer is not ambiguous


def test_mailgun_asks_accepted_events_per_reader_and_follows_full_pages() -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if request.url.path.endswith("/page2"):
            items = [{"event": "accepted", "user-variables": {"delivery_id": "5"}}]
        else:
            items = [{"event": "accepted", "user-variables": {"delivery_id": "9"}}] * 300
        return httpx.Response(200, content=json.dumps(
            {"items": items, "paging": {"next": "https://api.mailgun.net/v3/news.example.com/events/page2"}}))

    provider = MailgunProvider(api_key="k", domain="news.example.com", transport=httpx.MockTransport(answer))
    with provider:
        assert provider.accepted({5: "a@example.com"}, since=SINCE, until=UNTIL) == {5}
    first = dict(asked[0].url.params)
    assert first == {"event": "accepted", "recipient": "a@example.com", "limit": "300",
                     "begin": str(int(SINCE.timestamp()) - 60), "end": str(int(UNTIL.timestamp()) + 60)}
    assert asked[0].url.path == "/v3/news.example.com/events" and asked[1].url.path.endswith("/page2")
    assert len(asked) == 2  # the second page was short: the last
