"""The wire server's read-only account endpoints, which ``newsletter doctor`` calls to prove a key works.

Each answers as the service's API reference says (see ``newsletter/doctor/credentials.py``), auth failures included:
Postmark ``GET /server`` and ``GET /message-streams/{id}``; SendGrid ``GET /v3/scopes`` and
``GET /v3/whitelabel/domains``; Mailgun ``GET /v4/domains/{name}``; Resend ``GET /domains``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

KEY = "test-api-key"
RESTRICTED_KEY = "re_sending_only"  # Resend: a key that may send and nothing else


@dataclass
class Accounts:
    """What the accounts hold: each domain's verification, Postmark's streams, the SendGrid key's scopes."""

    domains: dict[str, bool] = field(default_factory=lambda: {"news.example.com": True})
    streams: dict[str, str] = field(default_factory=lambda: {"broadcast": "Broadcasts", "outbound": "Transactional"})
    scopes: list[str] = field(default_factory=lambda: ["mail.send", "whitelabel.read"])
    ses_sending: bool = True  # SES GetAccount: SendingEnabled
    ses_production: bool = True  # ProductionAccessEnabled (False: the sandbox)
    ses_enforcement: str = "HEALTHY"
    ses_dkim: str = "SUCCESS"  # GetEmailIdentity: DkimAttributes.Status
    ses_mail_from: str | None = None  # MailFromAttributes.MailFromDomain, when a custom MAIL FROM is set
    ses_send_only: bool = False  # the IAM key may send but not read: GetAccount and GetEmailIdentity are denied


def answer(path: str, headers: Mapping[str, str], accounts: Accounts) -> tuple[int, str] | None:
    """The answer to ``GET path``, or None when no account endpoint has that path."""
    parts = urlsplit(path)
    route, query = parts.path, parse_qs(parts.query)
    if route == "/server" or route.startswith("/message-streams/"):
        return _postmark(route, headers, accounts)
    if route in ("/v3/scopes", "/v3/whitelabel/domains"):
        return _sendgrid(route, query, headers, accounts)
    if re.fullmatch(r"/v4/domains/[^/]+", route):
        return _mailgun(route.rsplit("/", 1)[1], headers, accounts)
    if route == "/domains":
        return _resend(headers, accounts)
    return None


def _postmark(route: str, headers: Mapping[str, str], accounts: Accounts) -> tuple[int, str]:
    if headers.get("X-Postmark-Server-Token") != KEY:
        return 401, json.dumps({"ErrorCode": 10, "Message": "Bad or missing Server API token."})
    if route == "/server":
        return 200, json.dumps({"ID": 4242, "Name": "Weekly AI Tool Verdicts", "Color": "blue"})
    stream = route.rsplit("/", 1)[1]
    if stream not in accounts.streams:
        return 404, json.dumps({"ErrorCode": 1226, "Message": "The message stream for the provided 'ID' was not "
                                                             "found."})
    return 200, json.dumps({"ID": stream, "ServerID": 4242, "Name": stream, "MessageStreamType": accounts.streams[stream]})


def _sendgrid(route: str, query: dict[str, list[str]], headers: Mapping[str, str],
              accounts: Accounts) -> tuple[int, str]:
    if headers.get("Authorization") != f"Bearer {KEY}":
        return 401, json.dumps({"errors": [{"field": None, "message": "authorization required"}]})
    if route == "/v3/scopes":
        return 200, json.dumps({"scopes": accounts.scopes})
    if "whitelabel.read" not in accounts.scopes:
        return 403, json.dumps({"errors": [{"field": None, "message": "access forbidden"}]})
    wanted = query.get("domain", [None])[0]
    entries = [{"id": n, "domain": d, "subdomain": "em1234", "valid": ok, "default": True}
               for n, (d, ok) in enumerate(accounts.domains.items(), 1) if wanted in (None, d)]
    return 200, json.dumps(entries)


def _mailgun(domain: str, headers: Mapping[str, str], accounts: Accounts) -> tuple[int, str]:
    if headers.get("Authorization") != "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode():
        return 401, "Forbidden"
    if domain not in accounts.domains:
        return 404, json.dumps({"message": "Domain not found"})
    state = "active" if accounts.domains[domain] else "unverified"
    return 200, json.dumps({"domain": {"name": domain, "state": state, "type": "custom"},
                            "receiving_dns_records": [], "sending_dns_records": []})


def _resend(headers: Mapping[str, str], accounts: Accounts) -> tuple[int, str]:
    given = headers.get("Authorization", "")
    if not given:
        return 401, json.dumps({"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"})
    if given == f"Bearer {RESTRICTED_KEY}":
        return 401, json.dumps({"statusCode": 401, "name": "restricted_api_key",
                                "message": "This API key is restricted to only send emails"})
    if given != f"Bearer {KEY}":
        return 403, json.dumps({"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"})
    data = [{"id": f"d{n}", "name": d, "status": "verified" if ok else "pending", "region": "us-east-1"}
            for n, (d, ok) in enumerate(accounts.domains.items(), 1)]
    return 200, json.dumps({"data": data})
