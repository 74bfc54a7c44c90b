"""Resend: ``POST /emails/batch``, up to 100 messages, with an Idempotency-Key and permissive validation.

The key is derived from the batch's delivery ids; dispatch keeps a claimed batch together across crashes,
so a retried batch carries the same key and Resend sends it once. Permissive validation lets one bad
address fail alone (``errors[{index, message}]``) instead of sinking the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from newsletter.delivery.bodies import JsonBodies, json_array, json_object
from newsletter.delivery.headers import ascii_domain, one_line
from newsletter.delivery.http import HttpProvider
from newsletter.errors import ProviderRequestError, ProviderUnavailable
from newsletter.values import Message, SendResult


def idempotency_key(messages: Sequence[Message]) -> str:
    """Stable for the same set of deliveries, whatever their order; at most 256 characters."""
    ids = ",".join(str(i) for i in sorted(m.delivery_id for m in messages))
    return "newsletter-" + hashlib.sha256(ids.encode()).hexdigest()


class ResendProvider(HttpProvider):
    """Full bodies in batches of 100, idempotent, one bad address rejected alone."""

    name = "resend"
    max_batch = 100
    idempotent = True
    fills_itself = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bodies = JsonBodies()
    default_base_url = "https://api.resend.com"

    def auth(self) -> Mapping[str, str]:
        """Bearer API key."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """One idempotent request; per-index errors become rejections."""
        if not messages:
            return []
        headers = {"Idempotency-Key": idempotency_key(messages), "x-batch-validation": "permissive"}
        payload = json_array([self._body(m) for m in messages])
        headers["Content-Type"] = "application/json"
        response = self.post("/emails/batch", content=payload, headers=headers)
        answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code == 409 and answer.get("name") == "concurrent_idempotent_requests":
            raise ProviderUnavailable("resend is still processing this batch; it will be retried")
        if response.status_code != 200:
            raise ProviderRequestError(f"resend refused the batch (HTTP {response.status_code}): "
                                       f"{answer.get('name')}: {answer.get('message')}")
        return _results(messages, answer)

    def _body(self, message: Message) -> bytes:
        fields = {"from": message.sender, "to": [ascii_domain(message.to)], "subject": one_line(message.subject),
                  "headers": {name: one_line(value) for name, value in message.headers},
                  "tags": [{"name": "delivery_id", "value": str(message.delivery_id)}]}
        return json_object(fields, {"html": self.bodies.html(message), "text": self.bodies.text(message)})




def _results(messages: Sequence[Message], answer: dict[str, Any]) -> list[SendResult]:
    errors = {int(e["index"]): str(e.get("message")) for e in answer.get("errors") or []}
    ids = iter(item.get("id") for item in answer.get("data") or [])
    results = []
    for index, message in enumerate(messages):
        if index in errors:
            results.append(SendResult(message.delivery_id, "rejected", reason=f"resend: {errors[index]}",
                                      permanent=True))
        else:
            results.append(SendResult(message.delivery_id, "submitted", provider_id=next(ids, None)))
    return results
