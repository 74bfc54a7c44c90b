"""The digest in Debian's Chromium: side by side at 600 px, stacked at 375 px, readable in light and dark mode
(axe-core finds nothing serious), headings and buttons a screen reader can tell apart, targets a thumb can hit,
and score bars that Word-based Outlook draws too."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from newsletter.demo import demo_catalog
from newsletter.digest import build_digest
from newsletter.editing import note_html
from newsletter.render import PreparedEmail, RenderContext, make_environment, render_cohort
from newsletter.values import Cohort, Comparison, Recap, RecapLine, Week
from tests.axe import violations
from tests.catalogs import comparisons

pytestmark = pytest.mark.browser
LINKS = {"unsubscribe_url": "https://app.example.com/unsubscribe/t0k", "preferences_url": "https://app.example.com/p/t",
         "web_url": "https://app.example.com/archive/1"}
DEMO_DAY = date(2026, 11, 25)


def write(path: Path, comparisons: list[Comparison], week: Week, note: str = "") -> Path:
    digest = build_digest(comparisons, week=week, site_url="https://site.example.com/compare/")
    assert digest is not None
    # With vote links and a recap, as readers get it: axe checks their contrast and targets in light and dark.
    recap = Recap(1, (RecapLine("Alpha vs Beta", "Alpha", 75, 31, 212, False),))
    context = RenderContext("Verdicts", "1 Street", note_html=note_html(note), vote_url="https://app.example.com/vote",
                            recap=recap)
    rendered = render_cohort(digest, Cohort(), env=make_environment(), context=context)
    path.write_text(PreparedEmail.of(rendered).html.fill(LINKS | {"voter": "WzEsMV0.token"}), encoding="utf-8")
    return path


@pytest.fixture
def page_file(tmp_path: Path, make_comparison: Callable[..., Comparison]) -> Path:
    return write(tmp_path / "digest.html", [make_comparison(), make_comparison(ships=(1, 4))], Week(2026, 47))


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    """This week's demo issue as a new user first sees it, with an editor's note holding a link."""
    return write(tmp_path / "demo.html", comparisons(demo_catalog(DEMO_DAY)), Week.containing(DEMO_DAY),
                 note="A **short** note with [a link](https://site.example.com/compare/) in it.")


def boxes(browser: Any, page_file: Path, width: int, shot: Path) -> tuple[dict[str, float], dict[str, float], int]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(page_file.as_uri())
    page.screenshot(path=str(shot), full_page=True)
    first = page.locator(".tool-1").first.bounding_box()
    second = page.locator(".tool-2").first.bounding_box()
    overflow = page.evaluate("document.documentElement.scrollWidth")
    page.close()
    return first, second, overflow


def test_desktop_puts_the_tools_side_by_side(browser: Any, page_file: Path, tmp_path: Path) -> None:
    first, second, overflow = boxes(browser, page_file, 600, tmp_path / "desktop.png")
    assert abs(first["y"] - second["y"]) < 2
    assert second["x"] >= first["x"] + first["width"] - 1
    assert first["width"] > 250 and second["width"] > 250
    assert overflow <= 600
    assert (tmp_path / "desktop.png").stat().st_size > 10_000


def test_phone_stacks_the_tools(browser: Any, page_file: Path, tmp_path: Path) -> None:
    first, second, overflow = boxes(browser, page_file, 375, tmp_path / "phone.png")
    assert second["y"] >= first["y"] + first["height"] - 1
    assert abs(first["x"] - second["x"]) < 2
    assert first["width"] > 300
    assert overflow <= 375


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [600, 375])
def test_axe_finds_nothing_serious_in_light_or_dark_mode(browser: Any, axe: Path, demo_file: Path, tmp_path: Path,
                                                         scheme: str, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.goto(demo_file.as_uri())
    shot = tmp_path / f"{scheme}-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    found = violations(page, axe)
    backgrounds = page.evaluate("""() => [document.body, ...document.querySelectorAll('.card')]
        .map(e => getComputedStyle(e).backgroundColor)""")
    page.close()
    assert found == [], "\n".join(found)
    assert shot.stat().st_size > 20_000
    card = "rgb(255, 255, 255)" if scheme == "light" else "rgb(31, 41, 55)"
    assert set(backgrounds[1:]) == {card}  # every card follows the scheme, none left white in the dark
    assert backgrounds[0] == ("rgb(243, 244, 246)" if scheme == "light" else "rgb(3, 7, 18)")


def test_headings_and_buttons_are_told_apart(browser: Any, demo_file: Path) -> None:
    page = browser.new_page(viewport={"width": 600, "height": 900})
    page.goto(demo_file.as_uri())
    titles = page.locator(".entry h2").all_inner_texts()
    assert len(titles) == 3 and page.get_by_role("heading", level=1).all_inner_texts() == ["Verdicts"]
    assert page.get_by_role("heading", level=2, name="In this issue").count() == 1
    assert len(page.get_by_role("heading", level=3).all_inner_texts()) == 6
    names = [page.get_by_role("link", name=f"Read {title}").first for title in titles]
    assert [link.count() for link in names] == [1, 1, 1]  # one button per comparison, each named for it
    for link in names:
        box = link.bounding_box()
        assert box is not None and box["height"] >= 44
    page.close()


def test_phone_draws_a_divider_between_the_stacked_tools(browser: Any, demo_file: Path) -> None:
    for width, shown in ((375, True), (600, False)):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(demo_file.as_uri())
        first = page.locator(".tool-1").first.bounding_box()
        rule = page.locator(".tool-2 .rule").first
        name = page.locator(".tool-2 h3").first.bounding_box()
        assert rule.is_visible() is shown, width
        if shown:
            box = rule.bounding_box()
            assert first["y"] + first["height"] - 1 <= box["y"] < name["y"]
            assert page.evaluate("e => getComputedStyle(e).borderTopWidth", rule.element_handle()) == "1px"
        page.close()


def test_footer_links_are_big_enough_to_tap(browser: Any, demo_file: Path) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 900})
    page.goto(demo_file.as_uri())
    links = page.locator(".foot a")
    assert links.count() == 3
    for index in range(3):
        box = links.nth(index).bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, (links.nth(index).inner_text(), box)
    page.close()


def test_score_bars_survive_without_styles_as_in_word_based_outlook(browser: Any, demo_file: Path,
                                                                   tmp_path: Path) -> None:
    # Word drops what it cannot place: the <style> blocks, and a div's width, height and background.
    html = re.sub(r"<style\b[^>]*>.*?</style>", "", demo_file.read_text(encoding="utf-8"), flags=re.S | re.I)

    def word(match: re.Match[str]) -> str:
        kept = [d for d in match[2].split(";") if not re.match(r"\s*(width|height|background)", d)]
        return f'{match[1]}{";".join(kept)}"'

    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'(<div\b[^>]*?style=")([^"]*)"', word, html), encoding="utf-8")
    page = browser.new_page(viewport={"width": 600, "height": 900})
    page.goto(bare.as_uri())
    bars = page.evaluate("""() => [...document.querySelectorAll('tr')]
        .filter(tr => tr.children.length === 3 && /^\\d+ (ship|skip)$/.test(tr.lastElementChild.textContent.trim()))
        .map(tr => {
            const track = tr.children[1].firstElementChild;
            const fill = [...track.querySelectorAll('*')].find(e => getComputedStyle(e).backgroundColor !== 'rgba(0, 0, 0, 0)');
            const t = track.getBoundingClientRect(), f = fill ? fill.getBoundingClientRect() : {width: 0, height: 0};
            return [parseInt(tr.lastElementChild.textContent), f.width / t.width, f.height];
        })""")
    page.close()
    assert len(bars) == 24  # three comparisons, two tools, four reviewers
    for score, share, height in bars:
        assert abs(share - score / 100) < 0.02 and height >= 6, (score, share, height)
