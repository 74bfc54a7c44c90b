"""The digest in Debian's Chromium: two tools side by side at 600 px, stacked at 375 px."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from newsletter.digest import build_digest
from newsletter.render import PreparedEmail, RenderContext, make_environment, render_cohort
from newsletter.values import Cohort, Comparison, Week

pytestmark = pytest.mark.browser
@pytest.fixture
def page_file(tmp_path: Path, make_comparison: Callable[..., Comparison]) -> Path:
    digest = build_digest([make_comparison(), make_comparison(ships=(1, 4))], week=Week(2026, 47),
                          site_url="https://site.example.com/compare/")
    assert digest is not None
    rendered = render_cohort(digest, Cohort(), env=make_environment(), context=RenderContext("Verdicts", "1 Street"))
    html = PreparedEmail.of(rendered).html.fill({"unsubscribe_url": "https://u", "preferences_url": "https://p",
                                                 "web_url": "https://w"})
    path = tmp_path / "digest.html"
    path.write_text(html, encoding="utf-8")
    return path


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
