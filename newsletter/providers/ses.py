"""Amazon SES v2: ``POST /v2/email/outbound-emails`` with raw MIME, one request per message, signed with SigV4.

Each message is the MIME the core builds (``mime.build_mime``), so the per-recipient one-click
``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers go out exactly as written, and our delivery id
travels as the EmailTag ``delivery_id`` (SES publishes it back in its events when a configuration set is used).

SES answers errors with a code in ``x-amzn-ErrorType`` (or ``__type`` / ``code`` in the body). The failure
policy is the other HTTP providers' (``http``), with SES's own words for it: ``TooManyRequestsException`` (429),
``LimitExceededException`` and ``Throttling`` are waited out and retried; signature and key errors are
``ProviderAuthError``; so are a paused or suspended account and an unverified sender, which pause the issue
until the operator acts. ``MessageRejected`` of one recipient is that message's rejection.

A failure part-way through a batch carries what was settled before it (``ProviderError.settled``). A timeout
after a message went out marks that one message ``unknown`` (SES has no idempotency key, so it is never sent
again blindly) and raises ``ProviderUnavailable``: the rest of the batch never left, so it is released for a
later run rather than failed. SES does not support SMTPUTF8: a non-ASCII local part is rejected as data, with
the reason; domains travel in IDNA form.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import httpx

from newsletter.errors import (
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderError,
    ProviderRequestError,
    ProviderUnavailable,
)
from newsletter.providers.headers import ascii_domain
from newsletter.providers.http import HttpProvider
from newsletter.providers.mime import build_mime
from newsletter.providers.sigv4 import SigV4
from newsletter.values import Message, SendResult

AUTH_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch",
    "IncompleteSignatureException", "InvalidClientTokenId", "MissingAuthenticationTokenException",
    "MissingAuthenticationToken", "ExpiredTokenException", "ExpiredToken", "AccessDeniedException",
    "AccessDenied", "AuthFailure",
})
THROTTLE_CODES = frozenset({"TooManyRequestsException", "LimitExceededException", "Throttling",
                            "ThrottlingException"})
# The account or its sending is stopped, or the sender is not ours to use: nothing will go until someone acts.
PAUSE_CODES = frozenset({"SendingPausedException", "AccountSuspendedException",
                         "MailFromDomainNotVerifiedException"})
# One message refused; the rest of the batch goes on.
MESSAGE_CODES = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})


def perhaps_sent(exc: ProviderAmbiguous, settled: Sequence[SendResult], unknown: Sequence[int]) -> ProviderUnavailable:
    """A timeout after one call went out: that call's deliveries are unknown (never sent again blindly), what
    was answered before stands, and the rest of the batch never left, so it is safe to send later."""
    return ProviderUnavailable(f"{exc} (after {len(settled)} settled)", settled=(*exc.settled, *settled),
                               unknown=(*exc.unknown, *unknown))


def error_code(response: httpx.Response) -> str:
    """The AWS error code of an answer: ``x-amzn-ErrorType``, else ``__type`` or ``code`` in the JSON body."""
    header = response.headers.get("x-amzn-errortype", "")
    if header:
        return str(header.split(":", 1)[0])
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    code = str(body.get("__type") or body.get("code") or body.get("Code") or "")
    return code.rsplit("#", 1)[-1]


def error_message(response: httpx.Response) -> str:
    """The service's own words about an error, short; never the request."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    text = (body.get("message") or body.get("Message")) if isinstance(body, dict) else body
    return " ".join(str(text).split())[:300]


class SesProvider(HttpProvider):
    """Raw MIME per message through SES v2 SendEmail, tagged with the delivery id, in an optional configuration set."""

    name = "ses"
    max_batch = 100
    key_setting = "NEWSLETTER_SES_ACCESS_KEY_ID and NEWSLETTER_SES_SECRET_ACCESS_KEY"

    def __init__(self, *, region: str, secret_access_key: str, session_token: str | None = None,
                 configuration_set: str | None = None, domain: str, **kwargs: Any) -> None:
        kwargs.setdefault("base_url", None)
        if kwargs["base_url"] is None:
            kwargs["base_url"] = f"https://email.{region}.amazonaws.com"
        super().__init__(**kwargs)
        self.region = region
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.configuration_set = configuration_set
        self.domain = domain

    def auth(self) -> httpx.Auth:
        """SigV4 for the ``ses`` signing name in the configured region."""
        return SigV4(access_key_id=self.api_key, secret_access_key=self.secret_access_key, region=self.region,
                     session_token=self.session_token)

    def refuses_credentials(self, response: httpx.Response) -> bool:
        """401 or 403, or a 400 whose AWS error code is about the key, the signature or the session token."""
        return response.status_code in (401, 403) or (response.status_code == 400
                                                       and error_code(response) in AUTH_CODES)

    def throttles(self, response: httpx.Response) -> bool:
        """429, or a 400 saying a sending rate or quota limit was hit."""
        return response.status_code == 429 or (response.status_code == 400
                                               and error_code(response) in THROTTLE_CODES)

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """One SendEmail per message; a failure part-way carries what was settled (and the one perhaps sent)."""
        results: list[SendResult] = []
        for message in messages:
            try:
                results.append(self._send_one(message))
            except ProviderAmbiguous as exc:
                raise perhaps_sent(exc, results, [message.delivery_id]) from exc
            except ProviderError as exc:
                exc.settled = (*exc.settled, *results)
                raise
        return results

    def _send_one(self, message: Message) -> SendResult:
        to = ascii_domain(message.to)
        if not to.rpartition("@")[0].isascii():
            # The reason names no address: reasons are counted per kind in a send's summary.
            return SendResult(message.delivery_id, "rejected", reason="ses: a non-ASCII local part needs SMTPUTF8, "
                              "which SES does not support", permanent=True)
        response = self.post("/v2/email/outbound-emails", content=self._request(message, to),
                             headers={"Content-Type": "application/json"})
        if response.status_code == 200:
            return SendResult(message.delivery_id, "submitted", provider_id=str(response.json().get("MessageId")))
        return self._refused(message, response)

    def _request(self, message: Message, to: str) -> bytes:
        mime = build_mime(message, domain=self.domain)
        fields: dict[str, Any] = {
            "FromEmailAddress": ascii_domain(parseaddr(message.sender)[1]),
            "Destination": {"ToAddresses": [to]},
            "Content": {"Raw": {"Data": base64.b64encode(mime.as_bytes()).decode("ascii")}},
            "EmailTags": [{"Name": "delivery_id", "Value": str(message.delivery_id)}],
        }
        if self.configuration_set:
            fields["ConfigurationSetName"] = self.configuration_set
        return json.dumps(fields, separators=(",", ":")).encode()

    def _refused(self, message: Message, response: httpx.Response) -> SendResult:
        """A refusal of this one message as data; a refusal of the sender or the account raises."""
        code, words = error_code(response), error_message(response)
        sender = parseaddr(message.sender)[1].lower()
        if code in PAUSE_CODES or (code == "MessageRejected" and sender and sender in words.lower()):
            raise ProviderAuthError(f"ses will not send for this account or sender ({code}: {words}); check the "
                                    "sender identity and the account's sending status in the SES console")
        if code in MESSAGE_CODES:  # SES may quote the address: the reason must not (summaries count reasons)
            words = words.replace(ascii_domain(message.to), "the recipient")
            return SendResult(message.delivery_id, "rejected", reason=f"ses {code}: {words}")
        raise ProviderRequestError(f"ses refused the request (HTTP {response.status_code} {code}): {words}")
