"""Mailgun: ``POST /v3/{domain}/messages`` as multipart/form-data, up to 1000 recipients, body once per request.

Per-recipient values travel in ``recipient-variables`` (which also keeps recipients from seeing each other) and
are referenced as ``%recipient.name%`` in the body and in ``h:`` headers. The answer carries one id for the
whole call; per-recipient outcomes arrive later as events. The events API (``GET /v3/{domain}/events``,
``event=accepted`` per recipient, within a window) says which deliveries it accepted, by our ``delivery_id``
user variable, once its documented settling time (half an hour) has passed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from newsletter.errors import ProviderRequestError
from newsletter.providers.bodies import body_of, escaped, per_body, rewrite
from newsletter.providers.headers import ascii_domain, one_line
from newsletter.providers.http import HttpProvider
from newsletter.values import Message, SendResult

# Mailgun's event polling guide: events of the last half hour may still be missing from the events API.
SEARCH_DELAY = timedelta(minutes=30)
PAGE = 300  # the events API's largest page


class MailgunProvider(HttpProvider):
    """Body once per request; per-recipient links and unsubscribe headers from recipient-variables."""

    name = "mailgun"
    max_batch = 1000
    fills_itself = True
    default_base_url = "https://api.mailgun.net"

    def __init__(self, *, domain: str, tag: str = "weekly-digest", search_delay: timedelta = SEARCH_DELAY,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.search_delay = search_delay
        self.domain = domain
        self.tag = tag

    def auth(self) -> httpx.Auth:
        """HTTP Basic, user ``api``, the (domain sending) key as password."""
        return httpx.BasicAuth("api", self.api_key)

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """One request per shared body; every message of an accepted request is submitted."""
        return per_body(messages, self.max_batch, self._send_group)

    def accepted(self, sent: Mapping[int, str], *, since: datetime, until: datetime) -> set[int]:
        """One query per reader (``event=accepted``, ``recipient``, epoch window widened by a minute), matched
        by our ``delivery_id`` user variable; later pages are followed while a page comes back full."""
        window = {"begin": int((since - timedelta(minutes=1)).timestamp()),
                  "end": int((until + timedelta(minutes=1)).timestamp())}
        found: set[int] = set()
        for delivery, address in sent.items():
            if str(delivery) in self._accepted_ids(ascii_domain(address), window):
                found.add(delivery)
        return found

    def _accepted_ids(self, address: str, window: dict[str, int]) -> set[str]:
        path: str | None = f"/v3/{self.domain}/events"
        params: dict[str, Any] | None = {"event": "accepted", "recipient": address, "limit": PAGE, **window}
        ids: set[str] = set()
        while path is not None:
            response = self.get(path, params=params)
            if response.status_code != 200:
                raise ProviderRequestError(f"mailgun's events API failed (HTTP {response.status_code}): "
                                           f"{response.text[:300]}")
            answer = response.json()
            items = answer.get("items") or []
            ids |= {str((item.get("user-variables") or {}).get("delivery_id")) for item in items}
            following = (answer.get("paging") or {}).get("next")
            path, params = (_path(following), None) if len(items) >= PAGE and following else (None, None)
        return ids

    def _send_group(self, group: list[Message]) -> str | None:
        data, files = _form(group, self.tag)
        response = self.post(f"/v3/{self.domain}/messages", data=data, files=files)
        if response.status_code != 200:
            raise ProviderRequestError(f"mailgun refused the request (HTTP {response.status_code}): "
                                       f"{response.text[:300]}")
        provider_id = response.json().get("id")
        return str(provider_id) if provider_id is not None else None


def _form(group: Sequence[Message], tag: str) -> tuple[dict[str, Any], list[tuple[str, tuple[None, str]]]]:
    first = group[0]
    body = body_of(first)
    header_names = [name for name, _ in first.headers]
    variables = {ascii_domain(m.to): _variables(m, header_names) for m in group}
    data: dict[str, Any] = {
        "from": first.sender, "to": [ascii_domain(m.to) for m in group], "subject": one_line(first.subject),
        "text": rewrite(body.text, lambda n: f"%recipient.{n}%"),
        "html": rewrite(body.html, lambda n: f"%recipient.{n}_html%"),
        "recipient-variables": json.dumps(variables, separators=(",", ":")),
        "v:delivery_id": "%recipient.delivery_id%",
    }
    for index, name in enumerate(header_names):
        data[f"h:{name}"] = f"%recipient.h{index}%"
    # A file part forces multipart/form-data, which Mailgun requires.
    return data, [("o:tag", (None, tag))]


def _variables(message: Message, header_names: list[str]) -> dict[str, str]:
    values: dict[str, str] = {"delivery_id": str(message.delivery_id)}
    for name, value in message.slots:
        values[name] = value
        values[f"{name}_html"] = escaped(value)
    headers = dict(message.headers)
    for index, name in enumerate(header_names):
        values[f"h{index}"] = one_line(headers.get(name, ""))
    return values


def _path(url: str) -> str:
    """The path and query of a paging URL, sent to our own base URL (the same host in production)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
