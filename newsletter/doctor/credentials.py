"""Provider credentials: one read-only call per service that proves the key works and names what it reaches.

Endpoints, each checked against the provider's API reference through the ``search`` tool (2026-12-04):

* Postmark ``GET /server`` with ``X-Postmark-Server-Token`` → ``{"ID", "Name", …}`` [V: Postmark API explorer and
  its authentication page list "Current server configuration (GET/PUT /server)" under the server token]; then
  ``GET /message-streams/{stream}`` → ``{"ID", "MessageStreamType", …}`` [2nd: official SDKs' message-stream models].
  Domains need the *account* token, so a server token cannot tell whether the domain is verified: said, not checked.
* SendGrid ``GET /v3/scopes`` → ``{"scopes": [...]}``, "all the scopes assigned to the key you use" [V: Twilio's API
  reference]; ``mail.send`` must be among them. ``GET /v3/whitelabel/domains?domain=…`` → ``[{"domain", "valid", …}]``
  [V path and filter: sendgrid-oai; ``valid``: its AuthenticatedDomain schema, 2nd].
* Mailgun ``GET /v4/domains/{name}`` → ``{"domain": {"name", "state": "active" | "unverified" | …}}`` [V path: Mailgun
  "Domain Verification" links it; the ``state`` values are 2nd]. A Domain Sending Key may only send, so it gets 401
  here too: the finding says so.
* Resend ``GET /domains`` → ``{"data": [{"name", "status", "region"}]}`` [V: Resend "List Domains"; status values
  from their domain schema, 2nd]; a sending-only key gets 401 ``restricted_api_key`` [V: Resend's error list], which
  still proves the key is real.
* SES: ``GetAccount`` and ``GetEmailIdentity``, signed with SigV4 — ``ses.py``.

The key never appears in a finding: answers are quoted only after the key is cut out of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from newsletter.doctor.context import Context
from newsletter.doctor.facts import LOCAL_PROVIDERS, named
from newsletter.doctor.findings import Finding, failed, passed, skipped, warned
from newsletter.doctor.ses import check_ses
from newsletter.errors import ProviderError
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendProvider
from newsletter.providers.sendgrid import SendGridProvider
from newsletter.providers.smtp import SmtpProvider

KEY = "Provider key"
DOMAIN = "Domain at provider"
BASES = {"postmark": PostmarkProvider.default_base_url, "sendgrid": SendGridProvider.default_base_url,
         "mailgun": MailgunProvider.default_base_url, "resend": ResendProvider.default_base_url}


def check_credentials(ctx: Context) -> list[Finding]:
    """The key works (and names what it reaches); the sending domain is verified where the API tells."""
    provider = ctx.settings.provider
    if provider in LOCAL_PROVIDERS:
        return [skipped(KEY, f"not applicable: the {provider} provider needs no account")]
    if provider == "smtp":
        return [_smtp(ctx)]
    if provider == "ses":
        return check_ses(ctx)
    key = ctx.settings.provider_api_key.get_secret_value() if ctx.settings.provider_api_key else ""
    if not key:
        return [failed(KEY, "NEWSLETTER_PROVIDER_API_KEY is not set", f"set it to your {named(provider)} API key")]
    base = str(ctx.settings.provider_base_url or BASES[provider]).rstrip("/")
    auth, calls = _SERVICES[provider](key)
    headers, basic = (auth, None) if isinstance(auth, dict) else ({}, auth)
    with httpx.Client(base_url=base, transport=ctx.provider_transport, timeout=ctx.timeout, auth=basic,
                      headers={"Accept": "application/json", **headers}) as client:
        try:
            return calls(client, ctx)
        except httpx.HTTPError as exc:
            return [failed(KEY, f"{base} did not answer: {type(exc).__name__}", "check the network and "
                           "NEWSLETTER_PROVIDER_BASE_URL (EU accounts have their own API host)")]


def _smtp(ctx: Context) -> Finding:
    settings = ctx.settings
    provider = ctx.wiring.provider()
    assert isinstance(provider, SmtpProvider)
    try:
        provider.verify()
    except ProviderError as exc:
        return failed(KEY, str(exc), "check NEWSLETTER_SMTP_HOST, _PORT, _SECURITY, _USERNAME and _PASSWORD")
    who = f" as {settings.smtp_username}" if settings.smtp_username else " (no login configured)"
    return passed(KEY, f"{settings.smtp_host}:{settings.smtp_port} accepted the connection{who}")


def _said(response: httpx.Response, key: str) -> str:
    """What the service said, short, with the key cut out should it echo it."""
    return " ".join(response.text.split())[:200].replace(key, "…") or response.reason_phrase


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _refused(response: httpx.Response, key: str, what: str) -> Finding:
    return failed(KEY, f"the service refused the key (HTTP {response.status_code}: {_said(response, key)})",
                  f"put a valid {what} in NEWSLETTER_PROVIDER_API_KEY")


def _postmark(key: str) -> tuple[dict[str, str], Callable[[httpx.Client, Context], list[Finding]]]:
    def calls(client: httpx.Client, ctx: Context) -> list[Finding]:
        server = client.get("/server")
        if server.status_code != 200:
            return [_refused(server, key, "Postmark server token")]
        info = _json(server) or {}
        found = [passed(KEY, f"Postmark server {info.get('Name')!r} (ID {info.get('ID')})")]
        stream = ctx.settings.postmark_message_stream
        answer = client.get(f"/message-streams/{stream}")
        kind = (_json(answer) or {}).get("MessageStreamType") if answer.status_code == 200 else None
        if kind is None:
            found.append(failed("Message stream", f"stream {stream!r} not found on this server "
                                f"(HTTP {answer.status_code})", "create a Broadcasts stream and set "
                                "NEWSLETTER_POSTMARK_MESSAGE_STREAM to its ID"))
        elif kind != "Broadcasts":
            found.append(warned("Message stream", f"stream {stream!r} is {kind}, not Broadcasts",
                                "newsletters belong on a Broadcasts stream (Postmark's rules)"))
        else:
            found.append(passed("Message stream", f"{stream!r} is a Broadcasts stream"))
        found.append(skipped(DOMAIN, "Postmark shows domain verification to the account token only; "
                                     "the DNS checks above stand in for it"))
        return found
    return {"X-Postmark-Server-Token": key}, calls


def _sendgrid(key: str) -> tuple[dict[str, str], Callable[[httpx.Client, Context], list[Finding]]]:
    def calls(client: httpx.Client, ctx: Context) -> list[Finding]:
        scopes = client.get("/v3/scopes")
        if scopes.status_code != 200:
            return [_refused(scopes, key, "SendGrid API key")]
        granted = set((_json(scopes) or {}).get("scopes", []))
        if "mail.send" not in granted:
            return [failed(KEY, f"the key works but may not send ({len(granted)} scopes, no mail.send)",
                           "give the API key the Mail Send permission")]
        found = [passed(KEY, f"SendGrid key with mail.send ({len(granted)} scopes)")]
        domain = ctx.settings.sender_domain
        answer = client.get("/v3/whitelabel/domains", params={"domain": domain})
        if answer.status_code in (401, 403):
            found.append(warned(DOMAIN, "the key may not read domain authentication",
                                "add the read-only Sender Authentication scope to check it"))
            return found
        entries = [e for e in (_json(answer) or []) if isinstance(e, dict) and e.get("domain") == domain]
        if not entries:
            found.append(failed(DOMAIN, f"{domain} is not authenticated at SendGrid",
                                "authenticate it under Settings → Sender Authentication"))
        elif not any(e.get("valid") for e in entries):
            found.append(failed(DOMAIN, f"{domain} is authenticated but not valid yet (its DNS records are missing)",
                                "publish the CNAMEs SendGrid shows, then press Verify"))
        else:
            found.append(passed(DOMAIN, f"{domain} is authenticated and valid at SendGrid"))
        return found
    return {"Authorization": f"Bearer {key}"}, calls


def _mailgun(key: str) -> tuple[httpx.BasicAuth, Callable[[httpx.Client, Context], list[Finding]]]:
    def calls(client: httpx.Client, ctx: Context) -> list[Finding]:
        domain = ctx.settings.mailgun_domain
        if not domain:
            return [failed(KEY, "NEWSLETTER_MAILGUN_DOMAIN is not set", "set it to your Mailgun sending domain")]
        answer = client.get(f"/v4/domains/{domain}")
        if answer.status_code in (401, 403):
            refused = _refused(answer, key, "Mailgun API key")
            return [failed(KEY, refused.detail + "; a Domain Sending Key is also refused here",
                           "use a key that may read the domain (a read-only account key) for the check")]
        if answer.status_code == 404:
            return [failed(DOMAIN, f"Mailgun has no domain {domain} in this region",
                           "check NEWSLETTER_MAILGUN_DOMAIN, or point NEWSLETTER_PROVIDER_BASE_URL at "
                           "https://api.eu.mailgun.net for an EU domain")]
        state = ((_json(answer) or {}).get("domain") or {}).get("state")
        found = [passed(KEY, f"Mailgun key reaches domain {domain}")]
        if state == "active":
            found.append(passed(DOMAIN, f"{domain} is active at Mailgun"))
        else:
            found.append(failed(DOMAIN, f"{domain} is {state or 'in an unknown state'} at Mailgun",
                                "publish its DNS records and verify it in Domain Settings"))
        return found
    return httpx.BasicAuth("api", key), calls


def _resend(key: str) -> tuple[dict[str, str], Callable[[httpx.Client, Context], list[Finding]]]:
    def calls(client: httpx.Client, ctx: Context) -> list[Finding]:
        answer = client.get("/domains")
        body = _json(answer) or {}
        if answer.status_code == 401 and body.get("name") == "restricted_api_key":
            return [passed(KEY, "Resend accepted the key (a sending-only key)"),
                    warned(DOMAIN, "a sending-only key cannot read domains", "run the doctor with a full-access "
                           "key once to check the domain, or check it at resend.com/domains")]
        if answer.status_code != 200:
            return [_refused(answer, key, "Resend API key")]
        domain = ctx.settings.sender_domain
        entries = [d for d in body.get("data", []) if isinstance(d, dict) and d.get("name") == domain]
        found = [passed(KEY, f"Resend key with {len(body.get('data', []))} domain(s)")]
        if not entries:
            found.append(failed(DOMAIN, f"{domain} is not a Resend domain", "add it at resend.com/domains"))
        elif entries[0].get("status") != "verified":
            found.append(failed(DOMAIN, f"{domain} is {entries[0].get('status')} at Resend",
                                "publish the records Resend shows and press Verify"))
        else:
            found.append(passed(DOMAIN, f"{domain} is verified at Resend ({entries[0].get('region')})"))
        return found
    return {"Authorization": f"Bearer {key}"}, calls


_SERVICES: dict[str, Callable[[str], tuple[Any, Callable[[httpx.Client, Context], list[Finding]]]]] = {
    "postmark": _postmark, "sendgrid": _sendgrid, "mailgun": _mailgun, "resend": _resend}
