"""Helpers for body-once providers: group a batch by shared body, and rewrite our slots into the service's own."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from newsletter.values import SLOT, BodyTemplate, Message


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


def rewrite(text: str, token: Callable[[str], str]) -> str:
    """``text`` with every ``%%{name}%%`` replaced by ``token(name)``."""
    return SLOT.sub(lambda match: token(match[1]), text)


def body_of(message: Message) -> BodyTemplate:
    """The shared body of a message; a message built without one is its own body (no slots)."""
    return message.template or BodyTemplate(f"#{message.delivery_id}", message.html, message.text)


def escaped(value: str) -> str:
    """A slot value as it must appear inside HTML."""
    return html.escape(value, quote=True)
