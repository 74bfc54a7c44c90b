"""Build RFC 5322 MIME for a Message: multipart/alternative (text, then HTML), Date, Message-ID.

``List-Unsubscribe`` and ``List-Unsubscribe-Post`` are stored raw: Python's folding would RFC 2047-encode
a header holding a long URL (``=?utf-8?q?…``), which mail clients then fail to offer as one-click
unsubscribe. Everything else is folded and encoded by ``policy.SMTP`` as usual; bodies travel as
quoted-printable so minified HTML never exceeds the 78-character line recommendation.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from newsletter.providers.headers import ascii_domain, one_line
from newsletter.values import Message

RAW_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
_POLICY = policy.SMTP.clone(refold_source="none")


def build_mime(message: Message, *, domain: str) -> EmailMessage:
    """The message as MIME, with a fresh Message-ID on ``domain`` (never the host name)."""
    mime = EmailMessage(policy=_POLICY)
    mime["From"] = message.sender
    mime["To"] = ascii_domain(message.to)  # a Unicode domain would come out RFC 2047-encoded, unroutable
    mime["Subject"] = one_line(message.subject)
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = make_msgid(domain=domain)
    for name, value in message.headers:
        if name.lower() in RAW_HEADERS:
            mime.set_raw(name, one_line(value).replace(", <", ",\n <"))
        else:
            mime[name] = one_line(value)
    mime.set_content(message.text, cte="quoted-printable")
    mime.add_alternative(message.html, subtype="html", cte="quoted-printable")
    return mime

