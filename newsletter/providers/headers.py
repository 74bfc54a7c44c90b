"""Header values as every provider must hand them on: one line each, and addresses with an ASCII domain.

Catalog text reaches subjects (a comparison's title), and a raw CR or LF there would split a header, or make
an HTTP service refuse or mangle the message. An internationalised domain must travel in its IDNA form
(``xn--…``): Python's email package would RFC 2047-encode a Unicode domain (``user@=?utf-8?q?…?=``), which no
mail server can route, and most HTTP services refuse it.
"""

from __future__ import annotations

import re

import idna

# Every boundary str.splitlines() knows: CR, LF, VT, FF, FS, GS, RS, NEL, LINE and PARAGRAPH SEPARATOR.
_LINE_BREAKS = re.compile(r"[ \t]*[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]+[ \t]*")


def one_line(value: str) -> str:
    """``value`` with every run of line breaks (and the blanks around it) turned into one space, trimmed."""
    if value.isprintable():  # the common case costs one scan; line breaks are never printable
        return value.strip()
    return _LINE_BREAKS.sub(" ", value).strip()


def ascii_domain(address: str) -> str:
    """``address`` with its domain in IDNA form (``user@xn--bcher-kva.example``); the local part is kept.

    An address that is ASCII already is returned as it is; a domain IDNA cannot encode is left alone, for the
    service to refuse with its own words.
    """
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return address
