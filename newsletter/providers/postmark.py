"""Postmark: ``POST /email/batch``, up to 500 full messages a request, one answer per message.

The answer is HTTP 200 even when some messages failed: every element's ``ErrorCode`` is read. Postmark has no
idempotency key, so an ambiguous timeout is not retried (see ``http``); instead its outbound message search
(``GET /messages/outbound``, filtered by recipient, date and our ``delivery_id`` metadata) says what it accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from newsletter.errors import ProviderRequestError
from newsletter.providers.bodies import JsonArray, JsonBodies
from newsletter.providers.bodies import json_string as _s
from newsletter.providers.headers import ascii_domain, one_line
from newsletter.providers.http import HttpProvider
from newsletter.values import Message, SendResult

# ErrorCodes that mean this address will never take mail: 300 invalid email request, 406 inactive recipient.
PERMANENT = frozenset({300, 406})
# The message search reads and writes dates in US Eastern time, without an offset (its API reference says so).
EASTERN = ZoneInfo("America/New_York")
# Postmark documents no indexing delay for its search; messages show within seconds. Ten minutes is our margin.
SEARCH_DELAY = timedelta(minutes=10)


class PostmarkProvider(HttpProvider):
    """Sends full bodies in batches on a message stream, tagged, with the delivery id as metadata."""

    name = "postmark"
    max_batch = 500
    fills_itself = True
    default_base_url = "https://api.postmarkapp.com"

    def __init__(self, *, message_stream: str = "broadcast", tag: str = "weekly-digest",
                 search_delay: timedelta = SEARCH_DELAY, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.search_delay = search_delay
        self.message_stream = message_stream
        self.tag = tag
        self.bodies = JsonBodies()

    def auth(self) -> Mapping[str, str]:
        """Postmark's server token header."""
        return {"X-Postmark-Server-Token": self.api_key, "Accept": "application/json"}

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """One request for the batch; per-message ErrorCodes become rejections."""
        if not messages:
            return []
        payload = JsonArray([self._body(m) for m in messages])
        response = self.post("/email/batch", content=payload,
                             headers={"Content-Type": "application/json", "Content-Length": str(payload.size)})
        answer = _json(response)
        if response.status_code != 200 or not isinstance(answer, list) or len(answer) != len(messages):
            raise ProviderRequestError(f"postmark refused the batch (HTTP {response.status_code}): "
                                       f"{_error(answer)}")
        return [_result(m, item) for m, item in zip(messages, answer, strict=True)]

    def accepted(self, sent: Mapping[int, str], *, since: datetime, until: datetime) -> set[int]:
        """One search per delivery (Postmark filters by one metadata field at a time): recipient, our delivery id
        and the window, widened by a minute each side for clock skew (the delivery id alone decides a match)."""
        window = {"fromdate": _eastern(since - timedelta(minutes=1)), "todate": _eastern(until + timedelta(minutes=1))}
        return {delivery for delivery, address in sent.items() if self._found(delivery, address, window)}

    def _found(self, delivery: int, address: str, window: dict[str, str]) -> bool:
        params = {"count": 50, "offset": 0, "recipient": ascii_domain(address), "messagestream": self.message_stream,
                  "metadata_delivery_id": str(delivery), **window}
        response = self.get("/messages/outbound", params=params)
        answer = _json(response)
        if response.status_code != 200 or not isinstance(answer, dict) or not isinstance(answer.get("Messages"), list):
            raise ProviderRequestError(f"postmark's message search failed (HTTP {response.status_code}): "
                                       f"{_error(answer)}")
        return any(isinstance(m, dict) and (m.get("Metadata") or {}).get("delivery_id") == str(delivery)
                   for m in answer["Messages"])

    def _body(self, message: Message) -> list[bytes]:
        """One message of the batch as byte pieces (see ``JsonArray``). The head is written by hand with the C
        string escaper: json.dumps of the same fields costs several times as much, once per message."""
        headers = ",".join(f'{{"Name":{_s(name)},"Value":{_s(one_line(value))}}}' for name, value in message.headers)
        head = (f'{{"From":{_s(message.sender)},"To":{_s(ascii_domain(message.to))},'
                f'"Subject":{_s(one_line(message.subject))},"Headers":[{headers}],'
                f'"MessageStream":{_s(self.message_stream)},"Tag":{_s(self.tag)},'
                f'"Metadata":{{"delivery_id":"{int(message.delivery_id)}"}},"TrackOpens":false,"TrackLinks":"None",'
                '"HtmlBody":"')
        return [head.encode(), *self.bodies.pieces(message, for_html=True), b'","TextBody":"',
                *self.bodies.pieces(message, for_html=False), b'"}']


def _result(message: Message, item: Any) -> SendResult:
    code = item.get("ErrorCode") if isinstance(item, dict) else None
    if code == 0:
        return SendResult(message.delivery_id, "submitted", provider_id=str(item.get("MessageID")))
    reason = f"postmark {code}: {item.get('Message') if isinstance(item, dict) else item}"
    return SendResult(message.delivery_id, "rejected", reason=reason, permanent=code in PERMANENT)


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300]


def _error(answer: Any) -> str:
    if isinstance(answer, dict):
        return f"ErrorCode {answer.get('ErrorCode')}: {answer.get('Message')}"
    return str(answer)[:300]


def _eastern(moment: datetime) -> str:
    """``moment`` as the search's ``fromdate``/``todate`` want it: Eastern local time, to the second."""
    return moment.astimezone(EASTERN).strftime("%Y-%m-%dT%H:%M:%S")
