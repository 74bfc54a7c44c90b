"""The welcome email a reader gets once their subscription is confirmed: what arrives when, how to change it,
the latest issue's web version, and their own one-click unsubscribe headers (RFC 2369 and RFC 8058), as every
issue carries them.
"""

from __future__ import annotations

import re

from newsletter import archive
from newsletter.db import session_scope
from newsletter.recipients import RecipientSource
from newsletter.render import compile_mjml
from newsletter.values import Message, Recipient
from newsletter.web.site import Site

DAYS = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
        "sat": "Saturday", "sun": "Sunday", "0": "Sunday", "1": "Monday", "2": "Tuesday", "3": "Wednesday",
        "4": "Thursday", "5": "Friday", "6": "Saturday", "7": "Sunday"}
_WEEKLY = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* ([a-z0-9]+)$")


def when_sent(cron: str, zone: str) -> str:
    """The send time in words (``every Tuesday at 07:00 (Europe/Berlin)``), or ``once a week`` for other crons."""
    match = _WEEKLY.match(cron.strip().lower())
    if match is None or match[3] not in DAYS:
        return "once a week"
    return f"every {DAYS[match[3]]} at {int(match[2]):02d}:{int(match[1]):02d} ({zone})"


def latest_issue(site: Site) -> dict[str, str] | None:
    """The newest sent issue's subject, summary and web address, or None before the first issue went out."""
    with session_scope(site.engine) as session:
        found = archive.sent_previews(session, limit=1)
    if not found:
        return None
    row, summary = found[0]
    return {"subject": row.subject, "summary": summary, "url": f"{site.base}/archive/{row.number}",
            "number": str(row.number)}


def latest_issue_url(site: Site) -> str | None:
    """The newest sent issue's web version, or None before the first issue went out."""
    latest = latest_issue(site)
    return latest["url"] if latest else None


def welcome_message(site: Site, recipient: Recipient) -> Message:
    """The welcome email for ``recipient``, with their own unsubscribe headers and links."""
    settings = site.settings
    subject = f"Welcome to {settings.publication_name}"
    values = {"subject": subject, "publication": settings.publication_name, "address": recipient.address,
              "when": when_sent(settings.send_cron, settings.timezone), "latest": latest_issue_url(site),
              "archive": f"{site.base}/archive", "preferences": recipient.preferences_url,
              "unsubscribe": recipient.unsubscribe_url, "postal_address": settings.postal_address}
    html = compile_mjml(site.emails.get_template("welcome.mjml.j2").render(values))
    text = site.emails.get_template("welcome.txt.j2").render(values)
    headers = (("List-Unsubscribe", f"<{recipient.unsubscribe_url}>, <{recipient.unsubscribe_mailto}>"),
               ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return Message(0, settings.from_address, recipient.address, subject, html, text, headers)


def send_welcome(site: Site, recipients: RecipientSource, subscriber_id: int) -> bool:
    """Send the welcome email to active subscriber ``subscriber_id``; False when they are not active (any more)."""
    found = recipients.by_ids([subscriber_id]).get(subscriber_id)
    if found is None:  # unsubscribed (or erased) in the moment since confirming: no welcome
        return False
    site.send(welcome_message(site, found))
    return True
