"""Checks before sending: each finding a user would act on."""

from __future__ import annotations

import pytest

from newsletter.checks import GMAIL_CLIP, check_issue, refuse_oversized
from newsletter.errors import IssueTooLarge
from newsletter.values import RenderedEmail

HOSTS = ["site.example.com", "app.example.com"]


def email(subject: str = "Iconsmith vs Huewise, and 1 more verdict") -> RenderedEmail:
    return RenderedEmail("all", subject, "pre", "<html></html>", "text")


def levels(html: str, *, subject: str = "Short subject", empty: list[tuple[str, int]] | None = None) -> dict[str, str]:
    findings = check_issue({"all": email(subject)}, filled_html={"all": html}, allowed_hosts=HOSTS,
                           empty_cohorts=empty or [])
    return {f.check: f"{f.level}: {f.detail}" for f in findings}


def test_a_clean_issue_passes_every_check() -> None:
    html = '<a href="https://site.example.com/compare/x">x</a><img src="https://site.example.com/i.png" alt="Chart">'
    assert all(v.startswith("ok") for v in levels(html).values())


def test_size_against_gmail_clipping() -> None:
    assert levels("x" * (GMAIL_CLIP + 2048))["Size"].startswith("error: 104 KB of HTML (cohort all): Gmail clips")
    assert levels("x" * int(GMAIL_CLIP * 0.9))["Size"].startswith("warning")


def test_an_issue_is_refused_when_its_links_would_push_it_past_the_clip() -> None:
    def cohort(key: str, html: str) -> RenderedEmail:
        return RenderedEmail(key, "s", "p", html, "t")

    slots = '<a href="%%{unsubscribe_url}%%">u</a>' * 200  # 200 links of 120 characters once filled
    near = "x" * (GMAIL_CLIP - 10_000)
    refuse_oversized({"all": cohort("all", near), "Design": cohort("Design", "small")})
    with pytest.raises(IssueTooLarge, match=r"\(cohort Design\): Gmail clips anything over 102 KB; drop comparisons "
                                            r"on the desk or lower NEWSLETTER_DIGEST_LIMIT"):
        refuse_oversized({"all": cohort("all", "small"), "Design": cohort("Design", near + slots)})


def test_images_without_alt_and_foreign_links_are_named() -> None:
    found = levels('<img src="a.png"><IMG alt="" src="b.png"><a href="https://evil.example.net/x">x</a>'
                   '<a href="mailto:unsubscribe@news.example.com">u</a>')
    assert found["Images"] == "warning: 1 image(s) without alt text"
    assert found["Links"] == ("warning: 1 link(s) outside app.example.com, site.example.com: "
                              "https://evil.example.net/x")


def test_subject_length_and_empty_cohorts() -> None:
    assert levels("", subject="x" * 70)["Subject"].startswith("warning: 70 characters: phones show about 60")
    assert levels("", subject="x" * 120)["Subject"].startswith("error")
    assert levels("", subject="  ")["Subject"] == "error: the subject is empty"
    assert levels("", empty=[("free:Audio", 3)])["Cohorts"] == (
        "warning: 3 reader(s) get nothing this week: Audio (free tools only) (3)")


def test_an_issue_without_images_says_so_rather_than_praising_their_alt_text() -> None:
    assert levels('<a href="https://site.example.com/compare/x">x</a>')["Images"] == "ok: no images"
    assert levels('<img src="https://site.example.com/i.png" alt="Chart">')["Images"] == "ok: every image has alt text"
