"""How guessable a secret key is: the checks behind NEWSLETTER_SECRET_KEY, and a generator that passes them.

Every link this app mails is an HMAC under the secret key, so one link is enough to test guesses offline at
billions a second: a key must be random, not remembered. The checks refuse what people type when asked for a
secret (words, digits, keyboard runs, placeholders, repetition) and accept the output of ``newsletter secret``,
``openssl rand -base64 32`` or ``openssl rand -hex 32``.
"""

from __future__ import annotations

import math
import re
import secrets
from collections import Counter
from itertools import pairwise

MIN_LENGTH = 32
MIN_DISTINCT = 10
# Estimated from the key's own character frequencies, which undercounts short random keys (32 hex digits, 128
# real bits, score 90-120): a floor that catches lopsided keys, not a measure of randomness.
MIN_BITS = 80
# Five letters or more: a random key contains a given four-letter word about once in 20,000 draws.
PLACEHOLDERS = ("password", "passwd", "secret", "changeme", "example", "default", "letmein", "qwerty", "admin",
                "dummy", "sample", "placeholder", "insecure", "fixme")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+")


def weakness(key: str) -> str | None:
    """Why ``key`` is too easy to guess, or None when it looks random enough to sign links with."""
    if len(key) < MIN_LENGTH:
        return f"it has {len(key)} characters; use at least {MIN_LENGTH}"
    checks = (_few_distinct, _placeholder, _mostly_words, _repeats, _runs, _low_entropy)
    return next((reason for check in checks if (reason := check(key))), None)


def new_secret() -> str:
    """A fresh random key that passes :func:`weakness` (43 URL-safe characters, 256 bits)."""
    while True:  # a random draw that happens to look like a pattern is redrawn, so every printed key is accepted
        key = secrets.token_urlsafe(32)
        if weakness(key) is None:
            return key


def _few_distinct(key: str) -> str | None:
    distinct = len(set(key))
    return f"it uses only {distinct} different characters" if distinct < MIN_DISTINCT else None


def _placeholder(key: str) -> str | None:
    folded = re.sub(r"[\W_]", "", key.lower())
    found = any(word in folded for word in PLACEHOLDERS)  # which one stays unsaid: errors end up in logs
    return "it contains a placeholder word such as secret, password or changeme" if found else None


def _mostly_words(key: str) -> str | None:
    """Mostly letters, in runs as long as words (random keys switch case every two or three letters)."""
    runs = _WORD.findall(key)
    letters = sum(len(run) for run in runs)
    if runs and letters >= 0.6 * len(key) and letters >= 4 * len(runs):
        return "it reads like words and numbers"
    return None


def _repeats(key: str) -> str | None:
    seen: set[str] = set()
    for start in range(len(key) - 5):
        chunk = key[start:start + 6]
        if chunk in seen:
            return "it repeats a sequence of characters"
        seen.add(chunk)
    return None


def _runs(key: str) -> str | None:
    """Six or more characters in a row going up or down by one, like 123456, abcdef or 987654."""
    length, previous = 1, 0
    for a, b in pairwise(key):
        step = ord(b) - ord(a)
        length = (length + 1 if step == previous else 2) if step in (1, -1) else 1
        previous = step
        if length >= 6:
            return "it contains a run such as 123456 or abcdef"
    return None


def _low_entropy(key: str) -> str | None:
    counts = Counter(key)
    bits = -sum(n * math.log2(n / len(key)) for n in counts.values())
    return f"its characters carry about {bits:.0f} bits; at least {MIN_BITS} are needed" if bits < MIN_BITS else None
