"""SendGrid: ``POST /v3/mail/send`` with up to 1000 personalizations; the body travels once per request.

Our slots become substitution tags (``%%{name}%%`` in the text part, ``%%{name|html}%%`` in the HTML part, so
each gets a correctly escaped value). The answer is 202 for the whole request, with ``X-Message-ID``;
per-recipient outcomes arrive later as events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from email.utils import parseaddr
from typing import Any

from newsletter.errors import ProviderRequestError
from newsletter.providers.bodies import body_of, escaped, per_body, rewrite
from newsletter.providers.headers import ascii_domain, one_line
from newsletter.providers.http import HttpProvider
from newsletter.values import Message, SendResult

# Headers SendGrid sets itself and refuses to take from us.
RESERVED = frozenset({"to", "from", "subject", "reply-to", "cc", "bcc", "content-type",
                      "content-transfer-encoding", "received", "dkim-signature", "x-sg-id", "x-sg-eid"})


class SendGridProvider(HttpProvider):
    """Body once per request, per-recipient substitutions and headers, the delivery id as a custom arg."""

    name = "sendgrid"
    max_batch = 1000
    fills_itself = True
    default_base_url = "https://api.sendgrid.com"

    def auth(self) -> Mapping[str, str]:
        """Bearer API key."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """One request per shared body; every message of an accepted request is submitted."""
        return per_body(messages, self.max_batch, self._send_group)

    def _send_group(self, group: list[Message]) -> str | None:
        response = self.post("/v3/mail/send", json=_request(group))
        if response.status_code != 202:
            raise ProviderRequestError(f"sendgrid refused the request (HTTP {response.status_code}): "
                                       f"{response.text[:300]}")
        message_id: str | None = response.headers.get("x-message-id")
        return message_id


def _request(group: Sequence[Message]) -> dict[str, Any]:
    first = group[0]
    body = body_of(first)
    name, address = parseaddr(first.sender)
    return {
        "personalizations": [_personalization(m) for m in group],
        "from": {"email": address, "name": name} if name else {"email": address},
        "subject": one_line(first.subject),
        "content": [{"type": "text/plain", "value": rewrite(body.text, lambda n: f"%%{{{n}}}%%")},
                    {"type": "text/html", "value": rewrite(body.html, lambda n: f"%%{{{n}|html}}%%")}],
        "categories": ["weekly-digest"],
    }


def _personalization(message: Message) -> dict[str, Any]:
    substitutions = {}
    for name, value in message.slots:
        substitutions[f"%%{{{name}}}%%"] = value
        substitutions[f"%%{{{name}|html}}%%"] = escaped(value)
    headers = {k: one_line(v) for k, v in message.headers if k.lower() not in RESERVED}
    return {"to": [{"email": ascii_domain(message.to)}], "substitutions": substitutions, "headers": headers,
            "custom_args": {"delivery_id": str(message.delivery_id)}}
