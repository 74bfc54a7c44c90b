"""Resend: ``POST /emails/batch``, up to 100 messages, with an Idempotency-Key and permissive validation.

The key names what was first sent, never what is left to send: dispatch passes the claimed batch's key,
which stays the same every time the batch is taken back, and sends a batch that may have reached Resend
again whole and byte-identical (a reader who left meanwhile included), so Resend sends it once. Permissive
validation lets one bad address fail alone (``errors[{index, message}]``) instead of sinking the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from newsletter.errors import ProviderAmbiguous, ProviderRequestError, ProviderUnavailable
from newsletter.providers.bodies import JsonBodies, json_array, json_object
from newsletter.providers.headers import ascii_domain, one_line
from newsletter.providers.http import HttpProvider
from newsletter.values import Message, SendResult


def idempotency_key(messages: Sequence[Message]) -> str:
    """For a request that is no claimed batch: stable for the same set of deliveries, whatever their order."""
    ids = ",".join(str(i) for i in sorted(m.delivery_id for m in messages))
    return "newsletter-" + hashlib.sha256(ids.encode()).hexdigest()


def batch_idempotency_key(key: str) -> str:
    """The Idempotency-Key of a claimed batch (at most 256 characters): the batch key, whatever is left of it."""
    return "newsletter-batch-" + hashlib.sha256(key.encode()).hexdigest()


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
        """One idempotent request keyed by its delivery ids; per-index errors become rejections."""
        return self._send(messages, idempotency_key(messages))

    def send_batch(self, messages: Sequence[Message], *, key: str) -> list[SendResult]:
        """One idempotent request keyed by the claimed batch, so a retry of it is deduplicated by Resend."""
        return self._send(messages, batch_idempotency_key(key))

    def _send(self, messages: Sequence[Message], key: str) -> list[SendResult]:
        if not messages:
            return []
        headers = {"Idempotency-Key": key, "x-batch-validation": "permissive"}
        payload = json_array([self._body(m) for m in messages])
        headers["Content-Type"] = "application/json"
        response = self.post("/emails/batch", content=payload, headers=headers)
        answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code == 409 and answer.get("name") == "concurrent_idempotent_requests":
            raise ProviderUnavailable("resend is still processing this batch; it will be retried")
        if response.status_code == 409 and answer.get("name") == "invalid_idempotent_request":
            # The first request under this key was different, and Resend may have sent it: never a second one.
            raise ProviderAmbiguous("resend already took a different request under this batch's key; "
                                    "the service may have sent that one")
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
