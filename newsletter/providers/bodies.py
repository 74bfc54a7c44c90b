"""Helpers for body-once providers: group a batch by shared body, and rewrite our slots into the service's own."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from newsletter.errors import ProviderError
from newsletter.values import SLOT, BodyTemplate, Message, SendResult

# One encoder for every message: json.dumps with any option builds a new JSONEncoder per call.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def by_body(messages: Sequence[Message], limit: int) -> list[list[Message]]:
    """Messages grouped by (body, subject, sender), in order, each group at most ``limit`` long."""
    groups: dict[tuple[str, str, str], list[list[Message]]] = {}
    for message in messages:
        key = (message.template.key if message.template else f"#{message.delivery_id}", message.subject,
               message.sender)
        chunks = groups.setdefault(key, [[]])
        if len(chunks[-1]) >= limit:
            chunks.append([])
        chunks[-1].append(message)
    return [chunk for chunks in groups.values() for chunk in chunks]


def per_body(messages: Sequence[Message], limit: int,
             send_group: Callable[[list[Message]], str | None]) -> list[SendResult]:
    """One request per shared body: ``send_group`` sends a group and returns the request's id, or raises.

    Every message of an accepted request is submitted under that id; results come back in input order. When a
    request fails, the error carries the results of the requests accepted before it (``ProviderError.settled``),
    so that a retry sends only what the service has not taken.
    """
    results: dict[int, SendResult] = {}
    for group in by_body(messages, limit):
        try:
            provider_id = send_group(group)
        except ProviderError as exc:
            exc.settled = (*exc.settled, *results.values())
            raise
        for message in group:
            results[message.delivery_id] = SendResult(message.delivery_id, "submitted", provider_id=provider_id)
    return [results[m.delivery_id] for m in messages]


def rewrite(text: str, token: Callable[[str], str]) -> str:
    """``text`` with every ``%%{name}%%`` replaced by ``token(name)``."""
    return SLOT.sub(lambda match: token(match[1]), text)


def body_of(message: Message) -> BodyTemplate:
    """The shared body of a message; a message built without one is its own body (no slots)."""
    return message.template or BodyTemplate(f"#{message.delivery_id}", message.html, message.text)


def escaped(value: str) -> str:
    """A slot value as it must appear inside HTML."""
    return html.escape(value, quote=True)


class JsonBodies:
    """Cohort bodies JSON-escaped and UTF-8-encoded once, then filled per recipient as a list of byte pieces.

    A 35 KB body costs ~160 µs to JSON-encode and ~200 µs more to copy and UTF-8-encode inside a request;
    doing both once per cohort and splicing in the few escaped slot values makes a full-body message cost
    a few small encodings. The pieces share the cohort's cached parts: nothing of the body is copied until the
    request is written (see :class:`JsonArray`).
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bool], tuple[list[bytes], list[str]]] = {}

    def html(self, message: Message) -> bytes:
        """The message's HTML as the UTF-8 inside of a JSON string."""
        return b"".join(self.pieces(message, for_html=True))

    def text(self, message: Message) -> bytes:
        """The message's text part as the UTF-8 inside of a JSON string."""
        return b"".join(self.pieces(message, for_html=False))

    def pieces(self, message: Message, *, for_html: bool) -> list[bytes]:
        """The HTML (or text) part as the UTF-8 inside of a JSON string, in pieces: cached parts and slot values."""
        if message.template is None:
            return [json_text(message.html if for_html else message.text)]
        template = message.template
        cached = self._cache.get((template.key, for_html))
        if cached is None:
            split = SLOT.split(template.html if for_html else template.text)
            cached = ([json_text(p) for p in split[0::2]], split[1::2])
            self._cache[(template.key, for_html)] = cached
        parts, names = cached
        values = dict(message.slots)
        out = [parts[0]]
        for name, part in zip(names, parts[1:], strict=True):
            out.append(json_text(escaped(values[name]) if for_html else values[name]))
            out.append(part)
        return out


class JsonArray:
    """A JSON array of items each given as byte pieces, written to the socket one item at a time.

    The request's bytes are never joined into one buffer: a batch of 500 full bodies (17 MB) would otherwise
    be copied whole three or four times (the join, its brackets, the HTTP writer), and its peak held in memory.
    Iterable any number of times, so a retried request sends the very same bytes; ``size`` is its length in
    bytes, to be sent as ``Content-Length``.
    """

    def __init__(self, items: Sequence[Sequence[bytes]]) -> None:
        self._items = items
        self.size = 2 + max(0, len(items) - 1) + sum(len(piece) for item in items for piece in item)

    def __iter__(self) -> Iterator[bytes]:
        for index, item in enumerate(self._items):
            yield b"".join((b"," if index else b"[", *item))
        yield b"]" if self._items else b"[]"

    def __bytes__(self) -> bytes:
        return b"".join(self)


class Pieces:
    """A request body given as byte pieces, written to the socket in chunks of about 64 KB: a body-once request
    of 1,000 personalizations is never joined into one megabyte string (nor encoded from one). Buffers that
    large outlive their request in the allocator's per-thread arenas; pieces of a kilobyte are reused.
    Iterable any number of times (a retry sends the same bytes); ``size`` is its length in bytes."""

    CHUNK = 1 << 16

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces = pieces
        self.size = sum(len(piece) for piece in pieces)

    def __iter__(self) -> Iterator[bytes]:
        run: list[bytes] = []
        length = 0
        for piece in self._pieces:
            run.append(piece)
            length += len(piece)
            if length >= self.CHUNK:
                yield b"".join(run)
                run, length = [], 0
        if run:
            yield b"".join(run)

    def __bytes__(self) -> bytes:
        return b"".join(self._pieces)


def json_string(text: str) -> str:
    """``text`` as a JSON string, quotes included, non-ASCII kept (the C escaper json.dumps uses)."""
    escaped: str = encode_basestring(text)
    return escaped


def json_text(text: str) -> bytes:
    """``text`` as the UTF-8 inside of a JSON string (the C escaper json.dumps uses, without building an encoder
    per call: this runs a few times per message)."""
    return encode_basestring(text)[1:-1].encode()


def json_object(fields: Mapping[str, Any], raw: Mapping[str, bytes]) -> bytes:
    """A JSON object of ``fields`` plus ``raw`` string fields whose values are already JSON-escaped UTF-8."""
    head = _COMPACT.encode(fields).encode()
    tail = b",".join(b'"' + name.encode() + b'":"' + value + b'"' for name, value in raw.items())
    return head[:-1] + (b"," if fields and tail else b"") + tail + b"}"


def json_array(items: Sequence[bytes]) -> bytes:
    """A JSON array of already-encoded JSON values."""
    return b"[" + b",".join(items) + b"]"
