"""Postmark: ``POST /email/batch``, up to 500 full messages a request, one answer per message.

The answer is HTTP 200 even when some messages failed: every element's ``ErrorCode`` is read. Postmark has no
idempotency key, so an ambiguous timeout is not retried (see ``http``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from newsletter.errors import ProviderRequestError
from newsletter.providers.bodies import JsonBodies, json_array, json_object
from newsletter.providers.headers import ascii_domain, one_line
from newsletter.providers.http import HttpProvider
from newsletter.values import Message, SendResult

# ErrorCodes that mean this address will never take mail: 300 invalid email request, 406 inactive recipient.
PERMANENT = frozenset({300, 406})


class PostmarkProvider(HttpProvider):
    """Sends full bodies in batches on a message stream, tagged, with the delivery id as metadata."""

    name = "postmark"
    max_batch = 500
    fills_itself = True
    default_base_url = "https://api.postmarkapp.com"

    def __init__(self, *, message_stream: str = "broadcast", tag: str = "weekly-digest", **kwargs: Any) -> None:
        super().__init__(**kwargs)
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
        payload = json_array([self._body(m) for m in messages])
        response = self.post("/email/batch", content=payload, headers={"Content-Type": "application/json"})
        answer = _json(response)
        if response.status_code != 200 or not isinstance(answer, list) or len(answer) != len(messages):
            raise ProviderRequestError(f"postmark refused the batch (HTTP {response.status_code}): "
                                       f"{_error(answer)}")
        return [_result(m, item) for m, item in zip(messages, answer, strict=True)]

    def _body(self, message: Message) -> bytes:
        fields = {
            "From": message.sender, "To": ascii_domain(message.to), "Subject": one_line(message.subject),
            "Headers": [{"Name": name, "Value": one_line(value)} for name, value in message.headers],
            "MessageStream": self.message_stream, "Tag": self.tag,
            "Metadata": {"delivery_id": str(message.delivery_id)},
            "TrackOpens": False, "TrackLinks": "None",
        }
        return json_object(fields, {"HtmlBody": self.bodies.html(message), "TextBody": self.bodies.text(message)})


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
