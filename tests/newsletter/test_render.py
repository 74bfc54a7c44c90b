"""Templates render with sample data: valid HTML, under Gmail's clip size, escaped catalog text, a text twin."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest

from newsletter.demo import demo_catalog
from newsletter.digest import build_digest, narrow
from newsletter.editing import note_text
from newsletter.errors import RenderError
from newsletter.render import Fill, PreparedEmail, RenderContext, compile_mjml, make_environment, render_cohort, wrap
from newsletter.values import Cohort, Comparison, Digest, Review, Side, Tool, Week
from tests.catalogs import comparisons, many

WEEK = Week(2026, 47)
CONTEXT = RenderContext("Weekly AI Tool Verdicts", "1 Test Street, Testville")
LONG = ("The primitive is clean: a best-in-class endpoint with tool use and structured outputs. " * 3
        + "The moment of truth is the first payload. " * 4)


@pytest.fixture
def eight(make_comparison: Callable[..., Comparison], make_tool: Callable[..., Tool]) -> Digest:
    """A full week: eight comparisons with long, scored reviews."""
    comparisons = []
    for i in range(8):
        c = make_comparison(make_tool(name=f"Tool {i}A", category=["Writing", "Design"][i % 2]),
                            make_tool(name=f"Tool {i}B", pricing_tier="Free"), ships=(3, i % 5))
        sides = tuple(Side(s.tool, s.verdict, s.community, tuple(replace(r, text=LONG) for r in s.reviews))
                      for s in c.sides)
        comparisons.append(replace(c, sides=sides))  # type: ignore[arg-type]
    digest = build_digest(comparisons, week=WEEK, site_url="https://site.example.com/compare/")
    assert digest is not None and len(digest.entries) == 8
    return digest


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))


def test_digest_renders_to_html_under_gmails_clip_size(eight: Digest) -> None:
    rendered = render_cohort(eight, Cohort(), env=make_environment(), context=CONTEXT)
    assert "<mj-" not in rendered.html
    assert len(rendered.html.encode()) < 102_000, len(rendered.html.encode())
    assert len(rendered.html.encode()) < 76_000, "73 KB before dark mode and contents; keep it there"
    assert rendered.html.count('class="entry-title"') == 8
    assert all(f"Tool {i}A vs Tool {i}B" in rendered.html for i in range(8))
    assert "%%{unsubscribe_url}%%" in rendered.html and "%%{preferences_url}%%" in rendered.html
    assert "1 Test Street, Testville" in rendered.html
    assert "fonts.googleapis" not in rendered.html
    assert f"<title>{eight.subject}</title>" in rendered.html
    assert eight.preheader.split(".")[0] in rendered.html
    parser = Images()
    parser.feed(rendered.html)
    assert all(image.get("alt") is not None for image in parser.images)


def test_text_twin_reads_on_its_own(eight: Digest) -> None:
    cohort = Cohort(frozenset({"Writing"}), free_only=True)
    narrowed = narrow(eight, cohort)
    assert narrowed is not None and len(narrowed.entries) == 4
    text = render_cohort(narrowed, cohort, env=make_environment(), context=CONTEXT).text
    assert "<" not in text and "&amp;" not in text
    assert text.startswith("WEEKLY AI TOOL VERDICTS\nWeek 47, 2026: 4 comparisons, 8 new tools")
    for number, entry in enumerate(narrowed.entries, start=1):
        assert f"\n{number}. {entry.title}\n{entry.decision}" in text
    assert "Panel: Ship, 75% ship (3 ship / 1 skip)" in text
    assert re.search(r"Builder +#{14}-{6} 70 ship", text)
    assert f"Read the full comparison:\n{narrowed.entries[0].url}\n" in text
    assert "subscribed to verdicts on Writing (free tools only)" in text
    assert "Unsubscribe:\n%%{unsubscribe_url}%%" in text  # a signed link stands alone: it is long
    assert max(len(line) for line in text.splitlines()) <= 72
    assert "\n\n\n" not in text


def test_catalog_text_is_escaped_and_never_evaluated(make_comparison: Callable[..., Comparison],
                                                     make_tool: Callable[..., Tool]) -> None:
    evil = make_tool(name="<script>alert(1)</script> {{ 7*7 }}", slug="evil",
                     tagline="Steals %%{unsubscribe_url}%% & more")
    comparison = make_comparison(evil)
    sides = (replace(comparison.sides[0], reviews=(Review("Builder", "{% if true %}x{% endif %} {{ 7*7 }}.", 99, True),)),
             comparison.sides[1])
    digest = build_digest([replace(comparison, sides=sides)], week=WEEK, site_url="https://s.example.com/")
    assert digest is not None
    rendered = render_cohort(digest, Cohort(), env=make_environment(), context=CONTEXT)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "{{ 7*7 }}" in rendered.html and "49" not in rendered.html.replace("0.49", "")
    assert "{% if true %}" in rendered.text
    filled = PreparedEmail.of(rendered).html.fill(
        {"unsubscribe_url": "https://u/1", "preferences_url": "https://p/1", "web_url": "https://w/1"})
    assert "Steals https://u/1" not in filled  # a slot lookalike in catalog text stays text


def test_fill_escapes_values_once_per_recipient() -> None:
    fill = Fill('<a href="%%{web_url}%%">x</a> %%{web_url}%%', escape=True)
    assert fill.fill({"web_url": "https://w/?a=1&b=2"}) == '<a href="https://w/?a=1&amp;b=2">x</a> https://w/?a=1&amp;b=2'
    assert Fill("%%{web_url}%%", escape=False).fill({"web_url": "a&b"}) == "a&b"
    with pytest.raises(RenderError, match="unknown slots"):
        Fill("%%{password}%%", escape=False)


def test_mjml_errors_are_render_errors() -> None:
    with pytest.raises(RenderError, match="unconverted"):
        compile_mjml("<mjml><mj-body><mj-section><mj-column><mj-bogus>x</mj-bogus></mj-column></mj-section></mj-body></mjml>")


@pytest.mark.parametrize("change", [False, True])
def test_confirmation_email_renders_with_its_text_twin(change: bool) -> None:
    env = make_environment()
    values = {"subject": "Confirm", "address": "ann@example.org", "link": "https://app.example.com/confirm/t0k&x",
              "change": change, "days": 7, "publication": "Weekly AI Tool Verdicts", "postal_address": "1 Test St"}
    html = compile_mjml(env.get_template("confirmation.mjml.j2").render(values))
    text = env.get_template("confirmation.txt.j2").render(values)
    assert "<mj-" not in html and 'href="https://app.example.com/confirm/t0k&amp;x"' in html
    assert "Confirm: https://app.example.com/confirm/t0k&x" in text and "1 Test St" in text and "<" not in text
    assert ("from now on" in text) is change


LINKS = {"unsubscribe_url": "https://newsletter.verdicts-publisher.example.com/unsubscribe/" + "T" * 64,
         "preferences_url": "https://newsletter.verdicts-publisher.example.com/preferences/" + "P" * 64,
         "web_url": "https://newsletter.verdicts-publisher.example.com/archive/123"}


def too_long(text: str) -> list[str]:
    """Lines over 72 characters, except a URL standing alone on its line."""
    return [line for line in text.splitlines()
            if len(line) > 72 and not re.fullmatch(r"\s*\(?(https?://|mailto:)\S+\)?[.,]?", line)]


def week_digests(document: dict[str, Any]) -> list[Digest]:
    found = comparisons(document)
    weeks = sorted({Week.containing(c.published) for c in found})
    digests = [build_digest(found, week=week, site_url="https://verdicts.example.com/compare/", limit=20)
               for week in weeks]
    return [d for d in digests if d is not None]


@pytest.mark.parametrize("catalog", ["demo", "long"])
def test_every_line_of_the_text_part_fits_72_characters(catalog: str) -> None:
    document = demo_catalog(date(2026, 11, 25)) if catalog == "demo" else many(3, date(2026, 11, 18), long=True)
    note = "Read [the methodology](https://verdicts.example.com/about/how-we-review-" + "x" * 60 + ") first. " * 8
    context = replace(CONTEXT, note_text=note_text(note))
    digests = week_digests(document)
    assert len(digests) == (3 if catalog == "demo" else 1)
    for digest in digests:
        for cohort in (Cohort(), Cohort(frozenset({"Writing", "Design", "Developer Tools and Continuous Integration "
                                                   "Pipelines"}), free_only=True)):
            narrowed = narrow(digest, cohort)
            if narrowed is None:
                continue
            text = PreparedEmail.of(render_cohort(narrowed, cohort, env=make_environment(), context=context)).text
            filled = text.fill(LINKS)
            assert too_long(filled) == [], "\n".join(too_long(filled))
            assert LINKS["unsubscribe_url"] in filled.splitlines()


def test_wrap_keeps_urls_whole_and_cuts_other_long_words() -> None:
    url = "https://verdicts.example.com/compare/" + "a" * 80
    assert wrap(f"Read the full comparison: {url}") == f"Read the full comparison:\n{url}"
    assert wrap("x" * 100, indent="  ") == "  " + "x" * 70 + "\n  " + "x" * 30
    assert wrap("one two three", width=8, indent="- ", hang="  ") == "- one\n  two\n  three"
    assert wrap("first line\n\nthird") == "first line\n\nthird"


def test_html_has_real_headings_contents_buttons_and_colour_scheme(eight: Digest) -> None:
    html = render_cohort(eight, Cohort(), env=make_environment(), context=CONTEXT).html
    head = html[:html.index("<body")]
    assert re.search(r'<meta name="color-scheme" content="light dark" ?/?>', head)
    assert re.search(r'<meta name="supported-color-schemes" content="light dark" ?/?>', head)
    assert "@media (prefers-color-scheme: dark)" in head
    assert len(re.findall(r"<h1\b", html)) == 1 and len(re.findall(r"<h2\b", html)) == 1 + 8
    assert len(re.findall(r"<h3\b", html)) == 16
    contents = html[html.index(">In this issue</h2>"):html.index("</ol>")]
    assert [title for title in re.findall(r"<li\b[^>]*><strong>([^<]+)</strong>", contents)] == [
        e.title for e in eight.entries]
    assert all(e.call in contents for e in eight.entries)
    buttons = re.findall(r'<td class="btn"[^>]*><a href="([^"]+)"[^>]*>Read ([^<]+?)&nbsp;→</a>', html)
    assert buttons == [(e.url, e.title) for e in eight.entries]
    assert "Read the full comparison" not in html  # the same words eight times named no link


def test_pricing_says_the_tier_once(make_comparison: Callable[..., Comparison], make_tool: Callable[..., Tool]) -> None:
    free = make_tool(name="Gratis", pricing_tier="Free", pricing_note="Free for public repositories; $9 / month")
    paid = make_tool(name="Costly", pricing_note="$19 per seat / month")
    digest = build_digest([make_comparison(free, paid)], week=WEEK, site_url="https://s.example.com/")
    assert digest is not None
    assert [t.pricing for t in digest.entries[0].tools] == ["Free for public repositories; $9 / month",
                                                             "Paid: $19 per seat / month"]
    rendered = render_cohort(digest, Cohort(), env=make_environment(), context=CONTEXT)
    assert "Free: Free" not in rendered.html and "Free: Free" not in rendered.text
    assert replace(digest.entries[0].tools[1], pricing_note="Paid").pricing == "Paid"
    assert replace(digest.entries[0].tools[0], pricing_note="Freemium, $5 for teams").pricing == (
        "Free: Freemium, $5 for teams")
