"""Amazon SES v2 body-once: ``SendBulkEmail`` with a stored template, up to 50 destinations a call.

A body only one message of the batch has (a confirmation mail, a cohort's last reader) goes as raw MIME instead
(``ses.SesProvider``): a template for one message costs a request more and one of the account's templates.

Each cohort's body becomes an SES template once (``CreateEmailTemplate``, named by a hash of its content, so a
re-rendered issue gets a new one and workers racing to create it agree); each destination carries its slot
values (``ReplacementTemplateData``), its own one-click headers (``ReplacementHeaders``) and our delivery id
(``ReplacementTags``). SES's templates are Handlebars: our slots become triple-stash ``{{{name}}}`` (inserted
as given: the HTML part gets values we escaped once, the text part raw ones), and any ``{{`` or backslash
already in the body (catalog text) is itself passed as a value, so SES never reads it as a tag.

Every entry's ``Status`` is read: SUCCESS is submitted; TRANSIENT_FAILURE and ACCOUNT_THROTTLED entries are sent
again after a backoff (up to ``max_retries``), then left for a later run with what was settled; a paused or
suspended account pauses the issue; a refused entry (MESSAGE_REJECTED, INVALID_PARAMETER, FAILED) is that
reader's rejection. Beware: SES renders templates after accepting them, and a rendering failure is reported
only as a ``Rendering Failure`` event, never in this answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from email.utils import formataddr, parseaddr
from typing import Any

from newsletter.errors import (
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderError,
    ProviderRequestError,
    ProviderUnavailable,
)
from newsletter.providers.bodies import body_of, by_body, escaped, rewrite
from newsletter.providers.headers import ascii_domain, one_line
from newsletter.providers.ses import SesProvider, error_code, error_message, perhaps_sent
from newsletter.values import Message, SendResult

MAX_DESTINATIONS = 50
RETRY = frozenset({"TRANSIENT_FAILURE", "ACCOUNT_THROTTLED"})
LATER = frozenset({"ACCOUNT_DAILY_QUOTA_EXCEEDED", "TEMPLATE_NOT_FOUND"})
PAUSE = frozenset({"ACCOUNT_SUSPENDED", "ACCOUNT_SENDING_PAUSED", "CONFIGURATION_SET_SENDING_PAUSED",
                   "MAIL_FROM_DOMAIN_NOT_VERIFIED"})
BROKEN = frozenset({"CONFIGURATION_SET_NOT_FOUND", "INVALID_SENDING_POOL_NAME"})
_LITERAL = re.compile(r"\{\{|\\")
_VALUES = {"{{": "ob", "\\": "bs"}


def template_text(text: str, *, for_html: bool) -> str:
    """``text`` as an SES template: literal ``{{`` and backslashes as values, our slots as ``{{{name}}}``."""
    safe = _LITERAL.sub(lambda match: "{{{" + _VALUES[match[0]] + "}}}", text)
    return rewrite(safe, lambda name: "{{{" + name + ("_html" if for_html else "") + "}}}")


def template_data(message: Message) -> str:
    """One destination's values: each slot raw (text part) and escaped (HTML part), and the literals."""
    values = {"ob": "{{", "bs": "\\"}
    for name, value in message.slots:
        values[name] = value
        values[f"{name}_html"] = escaped(value)
    return json.dumps(values, separators=(",", ":"))


def filled(message: Message) -> Message:
    """The message with its HTML and text filled from its template and slots (as dispatch would)."""
    if message.template is None:
        return message
    values = dict(message.slots)
    return dataclasses.replace(message, html=rewrite(message.template.html, lambda n: escaped(values[n])),
                               text=rewrite(message.template.text, lambda n: values[n]))


class SesBulkProvider(SesProvider):
    """Body once per 50 destinations through SES templates; every destination's status read."""

    fills_itself = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._templates: set[str] = set()

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """One SendBulkEmail per 50 messages sharing a body; a failure part-way carries what was settled.

        One-off mails without a shared body (confirmations, review copies, which may share delivery id 0) go
        as raw MIME, one by one.
        """
        if any(message.template is None for message in messages):
            return super().send_messages(messages)
        results: dict[int, SendResult] = {}
        for message in messages:
            if not ascii_domain(message.to).rpartition("@")[0].isascii():
                results[message.delivery_id] = SendResult(
                    message.delivery_id, "rejected", permanent=True,
                    reason="ses: a non-ASCII local part needs SMTPUTF8, which SES does not support")
        for group in by_body([m for m in messages if m.delivery_id not in results], MAX_DESTINATIONS):
            try:
                results.update(self._send_group(group) if len(group) > 1 else self._send_raw(group[0]))
            except ProviderAmbiguous as exc:  # this call's destinations are unknown; later groups never left
                answered = {r.delivery_id for r in exc.settled}
                unknown = [m.delivery_id for m in group if m.delivery_id not in answered]
                raise perhaps_sent(exc, list(results.values()), unknown) from exc
            except ProviderError as exc:
                exc.settled = (*exc.settled, *results.values())
                raise
        return [results[m.delivery_id] for m in messages]

    def _send_raw(self, message: Message) -> dict[int, SendResult]:
        """A body no other message shares (a confirmation mail, a cohort's last reader) goes as raw MIME: a
        template for it would cost a request more and one of the account's templates."""
        return {message.delivery_id: self._send_one(message)}

    def _send_one(self, message: Message) -> SendResult:
        """Raw MIME of one message, its body filled from its template first (dispatch left it empty)."""
        return super()._send_one(filled(message))

    def _send_group(self, group: list[Message]) -> dict[int, SendResult]:
        name = self._template(group[0])
        settled: dict[int, SendResult] = {}
        pending = group
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(self.backoff(attempt))
            try:
                statuses = self._bulk(name, pending)
            except ProviderError as exc:  # what earlier attempts settled stands
                exc.settled = (*exc.settled, *settled.values())
                raise
            try:
                pending = _settle(pending, statuses, settled)
            except ProviderError as exc:
                if "TEMPLATE_NOT_FOUND" in str(exc):
                    self._templates.discard(name)  # deleted meanwhile: the retry creates it again
                exc.settled = (*exc.settled, *settled.values())
                raise
            if not pending:
                return settled
        raise ProviderUnavailable(f"ses kept answering TRANSIENT_FAILURE or ACCOUNT_THROTTLED for {len(pending)} "
                                  f"destinations after {self.max_retries + 1} attempts", settled=settled.values())

    def _template(self, message: Message) -> str:
        """The SES template of this message's body, created the first time it is needed."""
        body = body_of(message)
        content = {"Subject": template_text(one_line(message.subject), for_html=False),
                   "Html": template_text(body.html, for_html=True), "Text": template_text(body.text, for_html=False)}
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:40]
        name = f"newsletter-{digest}"
        if name in self._templates:
            return name
        try:
            response = self.post("/v2/email/templates", json={"TemplateName": name, "TemplateContent": content})
        except ProviderAmbiguous as exc:  # no mail went out; creating it again is safe (AlreadyExists)
            raise ProviderUnavailable(f"ses did not answer the template request: {exc}") from exc
        if response.status_code != 200 and error_code(response) != "AlreadyExistsException":
            raise ProviderRequestError(f"ses refused the template (HTTP {response.status_code} "
                                       f"{error_code(response)}): {error_message(response)}")
        self._templates.add(name)
        return name

    def _bulk(self, name: str, group: list[Message]) -> list[dict[str, Any]]:
        sender_name, sender = parseaddr(group[0].sender)
        request: dict[str, Any] = {
            "FromEmailAddress": formataddr((sender_name, ascii_domain(sender)), charset="utf-8"),
            "DefaultContent": {"Template": {"TemplateName": name, "TemplateData": "{}"}},
            "BulkEmailEntries": [_entry(m) for m in group],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        response = self.post("/v2/email/outbound-bulk-emails", json=request)
        if response.status_code != 200:
            code, words = error_code(response), error_message(response)
            if code in ("SendingPausedException", "AccountSuspendedException", "MailFromDomainNotVerifiedException"):
                raise ProviderAuthError(f"ses will not send for this account or sender ({code}: {words})")
            raise ProviderRequestError(f"ses refused the request (HTTP {response.status_code} {code}): {words}")
        statuses: list[dict[str, Any]] = response.json().get("BulkEmailEntryResults") or []
        if len(statuses) != len(group):
            raise ProviderRequestError(f"ses answered {len(statuses)} statuses for {len(group)} destinations")
        return statuses


def _entry(message: Message) -> dict[str, Any]:
    return {"Destination": {"ToAddresses": [ascii_domain(message.to)]},
            "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": template_data(message)}},
            "ReplacementHeaders": [{"Name": n, "Value": one_line(v)} for n, v in message.headers],
            "ReplacementTags": [{"Name": "delivery_id", "Value": str(message.delivery_id)}]}


def _settle(group: list[Message], statuses: list[dict[str, Any]], settled: dict[int, SendResult]) -> list[Message]:
    """Record each entry's outcome in ``settled``; returns the messages to send again (transient failures).

    Every entry is read before anything is raised: an entry after a paused one may still have been sent.
    """
    again: list[Message] = []
    stop: ProviderError | None = None
    for message, answer in zip(group, statuses, strict=True):
        status, error = str(answer.get("Status")), str(answer.get("Error") or "")
        if status == "SUCCESS":
            settled[message.delivery_id] = SendResult(message.delivery_id, "submitted",
                                                      provider_id=answer.get("MessageId"))
        elif status in RETRY:
            again.append(message)
        elif status in PAUSE | LATER | BROKEN:
            stop = stop or _stop(status)
        else:
            reason = f"ses {status}: {error.replace(ascii_domain(message.to), 'the recipient')}"[:300]
            settled[message.delivery_id] = SendResult(message.delivery_id, "rejected", reason=reason)
    if stop is not None:
        raise stop
    return again


def _stop(status: str) -> ProviderError:
    """What an entry status that stops the whole send means for it."""
    if status in PAUSE:
        return ProviderAuthError(f"ses will not send: {status}; check the account and sender in the SES console")
    if status in LATER:
        return ProviderUnavailable(f"ses cannot send now: {status}")
    return ProviderRequestError(f"ses refused the settings: {status}; check NEWSLETTER_SES_CONFIGURATION_SET")
