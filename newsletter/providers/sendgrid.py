"""SendGrid: ``POST /v3/mail/send`` with up to 1000 personalizations; the body travels once per request.

Our slots become substitution tags (``%%{name}%%`` in the text part, ``%%{name|html}%%`` in the HTML part, so
each gets a correctly escaped value). The answer is 202 for the whole request, with ``X-Message-ID``;
per-recipient outcomes arrive later as events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from email.utils import parseaddr

from newsletter.errors import ProviderRequestError
from newsletter.providers.bodies import Pieces, body_of, escaped, per_body, rewrite
from newsletter.providers.bodies import json_string as _s
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
        payload = _request(group)
        response = self.post("/v3/mail/send", content=payload,
                             headers={"Content-Type": "application/json", "Content-Length": str(payload.size)})
        if response.status_code != 202:
            raise ProviderRequestError(f"sendgrid refused the request (HTTP {response.status_code}): "
                                       f"{response.text[:300]}")
        message_id: str | None = response.headers.get("x-message-id")
        return message_id


def _request(group: Sequence[Message]) -> Pieces:
    """The request's JSON in pieces: the shared parts encoded once, each personalization written by hand with the
    C string escaper (a thousand of them per request; json.dumps of the same dicts costs several times as much)."""
    first = group[0]
    body = body_of(first)
    name, address = parseaddr(first.sender)
    shared = {
        "from": {"email": address, "name": name} if name else {"email": address},
        "subject": one_line(first.subject),
        "content": [{"type": "text/plain", "value": rewrite(body.text, lambda n: f"%%{{{n}}}%%")},
                    {"type": "text/html", "value": rewrite(body.html, lambda n: f"%%{{{n}|html}}%%")}],
        "categories": ["weekly-digest"],
    }
    pieces = [b'{"personalizations":[']
    for index, message in enumerate(group):
        pieces.append((f",{_personalization(message)}" if index else _personalization(message)).encode())
    pieces.append(b"]," + json.dumps(shared, ensure_ascii=False)[1:].encode())
    return Pieces(pieces)


def _personalization(message: Message) -> str:
    """One recipient's personalization as JSON: address, substitutions (plain and HTML-escaped), headers, and the
    delivery id as a custom arg."""
    substitutions = ",".join(f'{_s(f"%%{{{name}}}%%")}:{_s(value)},{_s(f"%%{{{name}|html}}%%")}:{_s(escaped(value))}'
                             for name, value in message.slots)
    headers = ",".join(f"{_s(k)}:{_s(one_line(v))}" for k, v in message.headers if k.lower() not in RESERVED)
    return (f'{{"to":[{{"email":{_s(ascii_domain(message.to))}}}],"substitutions":{{{substitutions}}},'
            f'"headers":{{{headers}}},"custom_args":{{"delivery_id":"{int(message.delivery_id)}"}}}}')
