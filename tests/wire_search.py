"""The wire server's searches of what it accepted: Postmark's outbound message search and Mailgun's events API.

Each answers from the messages the server accepted (``Received``) as the service's API reference describes
(README, "Reconciling unknown outcomes"): Postmark ``GET /messages/outbound`` with ``count``/``offset`` required,
``recipient``, ``fromdate``/``todate`` in US Eastern time and one ``metadata_<key>`` filter, answering
``{TotalCount, Messages: [{MessageID, Recipients, Metadata, Status, ReceivedAt, …}]}``; Mailgun
``GET /v3/{domain}/events`` with ``begin``/``end`` epoch seconds, ``event``, ``recipient`` and ``limit`` (≤ 300),
answering ``{items: [{event, recipient, timestamp, user-variables, …}], paging: {next, …}}``.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from tests.wire_accounts import KEY

EASTERN = ZoneInfo("America/New_York")


class Accepted(Protocol):
    """What the server keeps of an accepted message."""

    service: str
    to: str
    delivery_id: str
    at: float


def answer(path: str, headers: Mapping[str, str], received: Sequence[Accepted]) -> tuple[int, str] | None:
    """The answer to ``GET path`` from a search endpoint, or None when ``path`` is not one."""
    parts = urlsplit(path)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if parts.path == "/messages/outbound":
        return _postmark(query, headers, received)
    if re.fullmatch(r"/v3/[^/]+/events", parts.path):
        return _mailgun(query, headers, received)
    return None


def _eastern(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=EASTERN).timestamp()


def _postmark(query: dict[str, str], headers: Mapping[str, str], received: Sequence[Accepted]) -> tuple[int, str]:
    if headers.get("X-Postmark-Server-Token") != KEY:
        return 401, json.dumps({"ErrorCode": 10, "Message": "Bad or missing Server API token."})
    if "count" not in query or "offset" not in query or int(query["count"]) > 500:
        return 422, json.dumps({"ErrorCode": 1, "Message": "count (at most 500) and offset are required"})
    metadata = {k[len("metadata_"):]: v for k, v in query.items() if k.startswith("metadata_")}
    if len(metadata) > 1:
        return 422, json.dumps({"ErrorCode": 1, "Message": "only one metadata field at a time"})
    begin = _eastern(query["fromdate"]) if "fromdate" in query else 0.0
    end = _eastern(query["todate"]) if "todate" in query else float("inf")
    hits = [item for item in received if item.service == "postmark" and begin <= item.at <= end
            and query.get("recipient", item.to) == item.to
            and all(key == "delivery_id" and value == item.delivery_id for key, value in metadata.items())]
    page = hits[int(query["offset"]):int(query["offset"]) + int(query["count"])]
    messages = [{"MessageID": str(uuid.uuid4()), "Recipients": [item.to], "Metadata": {"delivery_id": item.delivery_id},
                 "Status": "Sent", "Tag": "weekly-digest",
                 "ReceivedAt": datetime.fromtimestamp(item.at, EASTERN).isoformat()} for item in page]
    return 200, json.dumps({"TotalCount": len(hits), "Messages": messages})


def _mailgun(query: dict[str, str], headers: Mapping[str, str], received: Sequence[Accepted]) -> tuple[int, str]:
    expected = "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()
    if headers.get("Authorization") != expected:
        return 401, "Forbidden"
    if "begin" not in query or ("end" not in query and "ascending" not in query):
        return 400, json.dumps({"message": "a range needs begin and either end or ascending"})
    limit = int(query.get("limit", 100))
    if limit > 300:
        return 400, json.dumps({"message": "limit must be at most 300"})
    begin, end = float(query["begin"]), float(query.get("end", "inf"))
    hits = [item for item in received if item.service == "mailgun" and begin <= item.at <= end
            and query.get("recipient", item.to) == item.to and query.get("event", "accepted") == "accepted"]
    items: list[dict[str, Any]] = [{"event": "accepted", "id": uuid.uuid4().hex, "timestamp": item.at,
                                    "recipient": item.to, "user-variables": {"delivery_id": item.delivery_id}}
                                   for item in hits[:limit]]
    return 200, json.dumps({"items": items, "paging": {"next": "https://api.mailgun.net/v3/events/next-page"}})
