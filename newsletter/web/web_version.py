"""The web version of a sent issue: the email's own content in a page of its own, for anyone to read.

It is rendered from the catalog with the issue's own edits (lineup, note, subject) through the digest template
with two blocks swapped (``templates/web_version.mjml.j2``): no "View in your browser" link, and a call to
subscribe instead of the personal footer (no preferences or unsubscribe link, no "you get this because").
The page adds a canonical URL, Open Graph and Twitter card tags, feed autodiscovery and a ``main`` landmark.
When the catalog no longer yields the comparisons the issue went out with (re-imported, removed), the stored
email is shown instead, its personal links pointed at the sign-up page: what was sent is never misquoted.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime

import jinja2
from sqlmodel import Session

from newsletter import archive
from newsletter import desk as core
from newsletter.clicks.links import targets_of
from newsletter.db import session_scope
from newsletter.desk import Renderer
from newsletter.editing import Edits, note_html, note_text
from newsletter.errors import NewsletterError
from newsletter.render import Fill, render_cohort, without_votes
from newsletter.values import Cohort, Week
from newsletter.votes import PREVIEW_VOTER
from newsletter.web.site import Site

CACHE_SECONDS = 300.0  # a sent issue changes only if the catalog does; a re-import shows within five minutes
_BODY = re.compile(r"(<body[^>]*>)(.*)(</body>)", re.DOTALL | re.IGNORECASE)
_ENVIRONMENTS: weakref.WeakKeyDictionary[Site, jinja2.Environment] = weakref.WeakKeyDictionary()
_CACHE: weakref.WeakKeyDictionary[Site, dict[int, tuple[float, WebVersion]]] = weakref.WeakKeyDictionary()
_LOCKS: weakref.WeakKeyDictionary[Site, threading.Lock] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class WebVersion:
    """One sent issue as the web shows it: the whole page, the content alone (for the feed), its headline."""

    number: int
    subject: str
    preheader: str
    sent_at: datetime | None
    page: str
    content: str


def web_version(site: Site, renderer: Callable[[], Renderer], number: int) -> WebVersion | None:
    """Sent issue ``number`` as a web page (kept for a few minutes), or None when no such issue was sent.

    ``renderer`` is asked for only once there is an issue to render: an app serving no issue needs no postal
    address.
    """
    cache = _CACHE.setdefault(site, {})
    kept = cache.get(number)
    if kept is not None and site.clock.monotonic() - kept[0] < CACHE_SECONDS:
        return kept[1]
    # One render at a time per app: a burst of readers opening a new (or expired) issue would otherwise render it
    # once per request, all at the same time, each the heavy MJML compile, and the last ones time out; those that
    # waited find it made.
    with _LOCKS.setdefault(site, threading.Lock()):
        now = site.clock.monotonic()
        kept = cache.get(number)
        if kept is not None and now - kept[0] < CACHE_SECONDS:
            return kept[1]
        with session_scope(site.engine) as session:
            made = _make(session, site, renderer, number)
        if made is not None:
            cache[number] = (now, made)
    return made


def _make(session: Session, site: Site, renderer: Callable[[], Renderer], number: int) -> WebVersion | None:
    """Render the web version of ``number`` inside ``session``; None when it was not sent."""
    found = archive.sent_issue(session, number)
    if found is None:
        return None
    row, stored = found
    assert row.id is not None
    links = set(targets_of(session, row.id).values())  # the sent email's site links, behind its click redirects
    compiled = rendered(site, renderer, row.week, core.edits_of(row), stored.comparison_count, stored.html, links)
    url = f"{site.base}/archive/{number}"
    head = site.pages.get_template("web_head.html").render(
        publication=site.settings.publication_name, title=stored.subject, description=stored.preheader, url=url,
        feed=f"{site.base}/archive.atom")
    page, content = as_page(compiled, head)
    return WebVersion(number, stored.subject, stored.preheader, row.sent_at, page, content)


def rendered(site: Site, renderer: Callable[[], Renderer], week: str, edits: Edits, count: int,
             sent_html: str, sent_links: Collection[str] = ()) -> str:
    """The issue's HTML through the web template, or the sent HTML with neutral links when the catalog moved on."""
    try:
        parts = renderer()
        digest = edits.digest(core.candidates(site.engine, Week.parse(week), site_url=parts.site_url), count)
    except (NewsletterError, ValueError):  # settings that cannot render, or a catalog without the issue's week
        digest = None
    if digest is not None and all(entry.url in sent_html or entry.url in sent_links for entry in digest.entries):
        # No vote links (nobody to vote as) and no recap ("you sided with the panel" speaks to subscribers).
        context = replace(parts.context, note_html=note_html(edits.note), note_text=note_text(edits.note),
                          vote_url="", recap=None)
        html = render_cohort(digest, Cohort(), env=environment(site, parts.env), context=context).html
    else:
        html = without_votes(sent_html)
    neutral = {"unsubscribe_url": f"{site.base}/subscribe", "preferences_url": f"{site.base}/subscribe",
               "web_url": f"{site.base}/archive", "voter": PREVIEW_VOTER}
    return Fill(html, escape=True).fill(neutral)


def environment(site: Site, emails: jinja2.Environment) -> jinja2.Environment:
    """``emails`` with ``digest.mjml.j2`` replaced by the web version, which extends the email's own digest."""
    found = _ENVIRONMENTS.get(site)
    if found is None:
        base = emails.loader
        assert base is not None

        def web_digest(name: str) -> tuple[str, str | None, None] | None:
            """The web template under the digest's name; the email's digest stays reachable as email/…."""
            if name != "digest.mjml.j2":
                return None
            source, filename, _ = base.get_source(emails, "web_version.mjml.j2")
            return source, filename, None

        loader = jinja2.ChoiceLoader([jinja2.FunctionLoader(web_digest), jinja2.PrefixLoader({"email": base}), base])
        found = emails.overlay(loader=loader, cache_size=50)
        found.globals = {**emails.globals, "subscribe_url": f"{site.base}/subscribe",
                         "archive_url": f"{site.base}/archive"}
        _ENVIRONMENTS[site] = found
    return found


def as_page(compiled: str, head: str) -> tuple[str, str]:
    """The compiled email as a web page (``head`` added, the body in ``main``), and the body's content alone."""
    match = _BODY.search(compiled)
    if match is None:
        return compiled, compiled
    content = match[2]
    page = compiled[:match.start()] + f"{match[1]}<main>{content}</main>{match[3]}" + compiled[match.end():]
    return page.replace("</head>", head + "</head>", 1), content
