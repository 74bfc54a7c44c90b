"""Jinja2 → MJML → HTML once per cohort, the text twin beside it, and the cheap per-recipient fill.

A cohort's email has three stages, one name each: ``RenderedEmail`` (rendered once, slots in place; stored with
the issue), ``PreparedEmail`` (the same, split at its slots once per send) and ``Message`` (one recipient's,
filled by ``dispatch.personalise``).

Templates hold ``%%{name}%%`` slots for per-recipient values; they survive MJML compilation, and
:class:`Fill` (one text of a ``PreparedEmail``) replaces them by splitting the compiled text once and joining
escaped values per recipient.
Catalog text only ever enters as escaped data: it is never rendered as a template, and any ``%%{`` in it
is broken up so it cannot pose as a slot.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from mjml import mjml2html

from newsletter.errors import RenderError
from newsletter.values import SLOT, BodyTemplate, Cohort, Digest, Recap, RenderedEmail

# ``voter`` is the reader's one per-issue token (their vote links, and click links when readers are tracked).
SLOTS = ("unsubscribe_url", "preferences_url", "web_url", "voter")
TEXT_WIDTH = 72  # the text part's longest line; a longer URL stands alone on its line
_LINK = re.compile(r"^\(?(https?://|mailto:|%%\{)")
# The digest's "Your call: Ship · Skip" line under each tool (templates/partials/tool.mjml.j2), found again to leave it
# out of a page that has no reader to vote (``without_votes``).
_YOUR_CALL = re.compile(r'<p class="your-call"[^>]*>.*?</p>', re.DOTALL)


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What the templates need beyond the digest: the publication's name and postal address, an optional note.

    ``vote_url`` is where vote links start (``{NEWSLETTER_PUBLIC_URL}/vote``); empty, the digest has no vote links
    (the web version: nobody to vote as). ``recap`` opens the issue with the previous issue's votes; each cohort
    gets the lines about comparisons it asks for.
    """

    publication: str
    postal_address: str
    note_html: str = ""
    note_text: str = ""
    vote_url: str = ""
    recap: Recap | None = None


def templates_dir() -> Path:
    """Where the email templates live: packaged beside the code, or the repository's ``templates/``."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "templates"


def make_environment(directory: Path | None = None) -> jinja2.Environment:
    """A Jinja2 environment: autoescape for MJML, none for text twins, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory or templates_dir()),
        autoescape=jinja2.select_autoescape(enabled_extensions=("mjml.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        finalize=_defuse,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["slot"] = slot
    env.globals["text_bar"] = text_bar
    env.filters["wrap"] = wrap
    return env


def slot(name: str) -> Markup:
    """The placeholder for a per-recipient value."""
    if name not in SLOTS:
        raise RenderError(f"unknown slot {name!r}; templates may use {', '.join(SLOTS)}")
    return Markup(f"%%{{{name}}}%%")


def text_bar(score: int, width: int = 20) -> str:
    """A score drawn in text: ``##########----------`` for 50 over 20 cells."""
    filled = round(score * width / 100)
    return "#" * filled + "-" * (width - filled)


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", hang: str | None = None) -> str:
    """``text`` in lines of at most ``width`` characters, each line of it wrapped on its own.

    ``indent`` starts every line, ``hang`` (default: ``indent``) the lines after a paragraph's first. A URL
    is never broken: one too long for a line stands alone on it. Any other word too long is cut.
    """
    rest = indent if hang is None else hang
    room = width - max(len(indent), len(rest))
    lines = []
    for line in str(text).splitlines() or [""]:
        words = [piece for word in line.split() for piece in _pieces(word, room)]
        lines.append(textwrap.fill(" ".join(words), width, initial_indent=indent, subsequent_indent=rest,
                                   break_long_words=False, break_on_hyphens=False) if words else "")
    return "\n".join(lines)


def _pieces(word: str, room: int) -> list[str]:
    if len(word) <= room or _LINK.match(word):
        return [word]
    return [word[i:i + room] for i in range(0, len(word), room)]


def _defuse(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup) and "%%{" in value:
        return value.replace("%%{", "%%\u200b{")
    return value


def render_cohort(digest: Digest, cohort: Cohort, *, env: jinja2.Environment, context: RenderContext) -> RenderedEmail:
    """Render ``digest`` for ``cohort`` once: subject, compiled HTML and text, slots left in place."""
    values = {
        "digest": digest, "cohort": cohort, "publication": context.publication,
        "postal_address": context.postal_address,
        "note_html": Markup(context.note_html), "note_text": context.note_text,
        "vote_url": context.vote_url.rstrip("/"),
        "recap": context.recap.for_cohort(cohort) if context.recap else None,
    }
    source = _render(env, "digest.mjml.j2", values)
    text = _render(env, "digest.txt.j2", values)
    return RenderedEmail(cohort.key, digest.subject, digest.preheader, compile_mjml(source), _tidy(text))


def without_votes(html: str) -> str:
    """A compiled digest with its "Your call" lines taken out: for pages that show a sent email to no one reader."""
    return _YOUR_CALL.sub("", html)


def _render(env: jinja2.Environment, name: str, values: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(values)
    except jinja2.TemplateError as exc:
        raise RenderError(f"template {name} failed: {exc}") from exc


def compile_mjml(source: str) -> str:
    """MJML → HTML with no web fonts and no comments; an unconverted ``<mj-`` tag is an error."""
    try:
        compiled: str = mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise RenderError(f"MJML did not compile: {exc}") from exc
    leftover = re.search(r"<mj-[a-z-]+", compiled)
    if leftover:
        raise RenderError(f"MJML left {leftover[0]}> unconverted; it is misplaced or unknown")
    return compiled


def _tidy(text: str) -> str:
    """Collapse runs of blank lines that conditional blocks leave behind."""
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


class Fill:
    """A compiled text split once at its slots; :meth:`fill` joins it with one recipient's values."""

    __slots__ = ("_escape", "_names", "_parts")

    def __init__(self, text: str, *, escape: bool) -> None:
        pieces = SLOT.split(text)
        self._parts = pieces[0::2]
        self._names = pieces[1::2]
        self._escape = escape
        unknown = set(self._names) - set(SLOTS)
        if unknown:
            raise RenderError(f"unknown slots {sorted(unknown)} in rendered text")

    @property
    def names(self) -> tuple[str, ...]:
        """The slots this text holds, in order of appearance (a name once per appearance)."""
        return tuple(self._names)

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with every slot replaced (HTML-escaped when built with ``escape=True``)."""
        if self._escape:
            values = {name: html.escape(value, quote=True) for name, value in values.items()}
        out = [self._parts[0]]
        for name, part in zip(self._names, self._parts[1:], strict=True):
            out.append(values[name])
            out.append(part)
        return "".join(out)


@dataclass(frozen=True, slots=True)
class PreparedEmail:
    """A rendered email with its HTML and text split at the slots, ready to personalise cheaply."""

    rendered: RenderedEmail
    html: Fill
    text: Fill
    template: BodyTemplate
    # The slots the HTML or text holds, in SLOTS order: a message carries values for these only, so a body-once
    # provider sends no substitution for a slot the body does not use (an issue without vote links, no voter).
    used: tuple[str, ...] = SLOTS

    @classmethod
    def of(cls, rendered: RenderedEmail, key: str = "") -> PreparedEmail:
        """Split once; fill many times. ``key`` names the body for providers that send it once per request."""
        template = BodyTemplate(key or rendered.cohort_key, rendered.html, rendered.text)
        html, text = Fill(rendered.html, escape=True), Fill(rendered.text, escape=False)
        present = set(html.names) | set(text.names)
        return cls(rendered, html, text, template, tuple(name for name in SLOTS if name in present))
