"""Which characters catalog text may hold: one rule for both importers.

Catalog text ends up in MJML (read as XML), in email headers and on the operator's terminal. So every text
field refuses C0 and C1 control characters (DEL included), lone surrogates, the Unicode non-characters
(U+FDD0–U+FDEF and the last two code points of every plane) and the separators U+2028 / U+2029. Tab and
newline are the exception, and only where text may span lines: descriptions and review texts. A refusal names
the code point; the importers add the file and the field (JSON path) or the line (comparison pages).
"""

from __future__ import annotations

import re

_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}"
                                           for plane in range(17))
_ALWAYS = "\x00-\x08\x0b-\x1f\x7f-\x9f\r\u2028\u2029\ud800-\udfff" + _NONCHARACTERS
_IN_MULTILINE = re.compile(f"[{_ALWAYS}]")
_IN_LINE = re.compile(f"[\t\n{_ALWAYS}]")


def refused_character(text: str, *, multiline: bool) -> str | None:
    """What is wrong with the first character ``text`` may not hold (``U+000B, a control character``), or None."""
    found = (_IN_MULTILINE if multiline else _IN_LINE).search(text)
    if found is None:
        return None
    char = found.group()
    return f"U+{ord(char):04X}, {_kind(char)}, at character {found.start() + 1}"


def _kind(char: str) -> str:
    code = ord(char)
    if char in "\t\n":
        return "a tab or line break, which only descriptions and review texts may hold"
    if 0xD800 <= code <= 0xDFFF:
        return "a lone surrogate (half of a UTF-16 pair)"
    if char in "\u2028\u2029":
        return "a line or paragraph separator"
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return "a control character"
    return "a Unicode non-character"
