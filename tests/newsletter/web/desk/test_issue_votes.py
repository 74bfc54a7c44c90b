"""The issue page's panel against readers: figures that match the recorded votes, and the disagreement flag past
NEWSLETTER_VOTE_DISAGREEMENT_POINTS (both databases)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy.engine import Engine

from newsletter import editors
from newsletter.config import Settings
from tests.newsletter.test_vote_figures import LEDE, cast
from tests.newsletter.vote_support import DESIGN, WRITING, send_first_issue
from tests.newsletter.web.desk.test_issue_page import FAST, PASSWORD, fast_gate, sign_in
from tests.newsletter.web.helpers import running


def row(page: str, tool: tuple[str, str]) -> list[str]:
    """The cells of the table row of ``tool``, tags stripped."""
    match = re.search(rf'<tr class="[a-z]*" data-comparison="{tool[0]}" data-tool="{tool[1]}">(.*?)</tr>', page, re.S)
    assert match, page
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", match[1], re.S)]


def test_the_issue_page_sets_the_panel_beside_the_readers(engine: Engine, make_settings: Callable[..., Settings],
                                                           database_url: str) -> None:
    send_first_issue(engine, make_settings(database_url=database_url))
    cast(engine, DESIGN, "ssks")  # Iconsmith: panel 75 %, readers 75 %
    cast(engine, LEDE, "ss", first=10)  # Lede: panel 25 %, readers 100 %: flagged
    cast(engine, WRITING, "k", first=20, issue=5)  # Draftsmith: panel 50 %, readers 0 %, cast from another issue
    editors.add_editor(engine, "ann", PASSWORD, cost=FAST)
    with running(make_settings, database_url, gate=fast_gate, vote_disagreement_points=40) as (client, _):
        sign_in(client)
        page = client.get("/editor/issues/1").text
    assert "Panel vs readers" in page and "more than 40 points apart" in page
    assert row(page, DESIGN)[-6:] == ["Iconsmith", "75% ship", "75% ship", "4", "4", "—"]
    assert row(page, LEDE) == ["Lede", "25% ship", "100% ship", "2", "2", "Yes, +75 points"]
    assert row(page, WRITING)[-6:] == ["Draftsmith", "50% ship", "0% ship", "1", "0", "Yes, -50 points"]
    assert row(page, ("iconsmith-vs-huewise", "huewise"))[-6:] == ["Huewise", "25% ship", "—", "0", "0", "—"]
    assert page.count('class="flagged"') == 2
