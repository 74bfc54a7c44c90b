"""Templates render with sample data: valid HTML, under Gmail's clip size, escaped catalog text, a text twin."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from newsletter.digest import build_digest, narrow
from newsletter.errors import RenderError
from newsletter.render import Fill, PreparedEmail, RenderContext, compile_mjml, make_environment, render_cohort
from newsletter.values import Cohort, Comparison, Digest, Review, Side, Tool, Week

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
