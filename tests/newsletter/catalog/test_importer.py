"""Import and export files against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from newsletter.catalog import store
from newsletter.catalog.importer import export_file, import_files
from newsletter.config import Settings
from newsletter.errors import CatalogImportError, UnknownToolError
from newsletter.models import ComparisonRow, ReviewRow, ToolRow
from newsletter.values import Week
from tests.conftest import FIXTURE_PAGES, seed_pages
from tests.newsletter.catalog.test_json_format import minimal

DAY = date(2026, 11, 20)


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return tuple(session.exec(select(func.count()).select_from(t)).one()  # type: ignore[return-value]
                     for t in (ToolRow, ComparisonRow, ReviewRow))


def write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_pages_import_once_and_reimport_changes_nothing(engine: Engine) -> None:
    pages = seed_pages()
    first = import_files(engine, pages, published=DAY)
    assert first.comparisons["created"] == len(pages)
    stored = counts(engine)
    again = import_files(engine, pages, published=DAY)
    assert counts(engine) == stored
    assert again.comparisons["created"] == 0 and again.comparisons["updated"] == 0
    assert again.tools["created"] == 0 and again.tools["updated"] == 0


def test_a_tool_keeps_the_date_it_was_first_seen(engine: Engine) -> None:
    page = FIXTURE_PAGES / "draftsmith-vs-lede.txt"
    import_files(engine, [page], published=date(2026, 11, 10))
    import_files(engine, [page], published=date(2026, 11, 20))
    with Session(engine) as session:
        assert {t.slug: t.published for t in store.all_tools(session)}["lede"] == date(2026, 11, 10)


def test_a_bad_file_leaves_the_database_exactly_as_it_was(engine: Engine, tmp_path: Path) -> None:
    import_files(engine, [FIXTURE_PAGES / "draftsmith-vs-lede.txt"], published=DAY)
    before = counts(engine)
    good = write(tmp_path, "good.json", minimal())
    broken_page = tmp_path / "broken.txt"
    broken_page.write_text((FIXTURE_PAGES / "iconsmith-vs-huewise.txt").read_text().replace("Panel ship", "Panel"))
    with pytest.raises(CatalogImportError, match=r"broken\.txt"):
        import_files(engine, [good, broken_page], published=DAY)
    assert counts(engine) == before


def test_unknown_tool_rolls_back_everything(engine: Engine, tmp_path: Path) -> None:
    document = minimal()
    document["tools"] = document["tools"][:1]
    path = write(tmp_path, "partial.json", document)
    with pytest.raises(UnknownToolError, match="names tool 'beta'"):
        import_files(engine, [path], published=DAY)
    assert counts(engine) == (0, 0, 0)


def test_changed_fields_update_in_place(engine: Engine, tmp_path: Path) -> None:
    import_files(engine, [write(tmp_path, "v1.json", minimal())], published=DAY)
    changed = minimal()
    changed["tools"][0]["tagline"] = "New tagline"
    changed["comparisons"][0]["sides"][0]["reviews"][0]["score"] = 90
    summary = import_files(engine, [write(tmp_path, "v2.json", changed)], published=DAY)
    assert summary.tools["updated"] == 1 and summary.comparisons["updated"] == 1
    assert counts(engine) == (2, 1, 2)
    with Session(engine) as session:
        (comparison,) = store.comparisons_for_week(session, Week(2026, 47))
    assert comparison.sides[0].tool.tagline == "New tagline"
    assert comparison.sides[0].reviews[0].score == 90


def test_export_import_export_gives_the_same_file(engine: Engine, tmp_path: Path, pg_schema_engine: Engine | None
                                                  ) -> None:
    import_files(engine, [*seed_pages(), *sorted(FIXTURE_PAGES.glob("*.txt"))], published=DAY)
    first = tmp_path / "first.json"
    export_file(engine, first)
    from newsletter import migrate
    from newsletter.db import make_engine

    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate.upgrade(fresh)
    import_files(fresh, [first], published=date(2030, 1, 1))
    second = tmp_path / "second.json"
    export_file(fresh, second)
    assert first.read_text() == second.read_text()
    assert len(json.loads(first.read_text())["comparisons"]) == len(seed_pages()) + 2


def test_week_query_finds_new_tools_and_this_weeks_comparisons(engine: Engine, tmp_path: Path) -> None:
    import_files(engine, [FIXTURE_PAGES / "draftsmith-vs-lede.txt"], published=date(2026, 11, 10))
    import_files(engine, [FIXTURE_PAGES / "iconsmith-vs-huewise.txt"], published=date(2026, 11, 18))
    with Session(engine) as session:
        assert [c.slug for c in store.comparisons_for_week(session, Week(2026, 46))] == ["draftsmith-vs-lede"]
        assert [c.slug for c in store.comparisons_for_week(session, Week(2026, 47))] == ["iconsmith-vs-huewise"]
        assert store.comparisons_for_week(session, Week(2026, 45)) == []


def test_files_that_are_neither_format_are_refused(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes")
    with pytest.raises(CatalogImportError, match="neither a JSON catalog"):
        import_files(engine, [path], published=DAY)


@pytest.mark.parametrize(("mutate", "place"), [
    (lambda d: d["tools"][0].update(description="Null\x00byte"), "$.tools[0].description"),
    (lambda d: d["tools"][0].update(tagline="Half \ud83d a pair"), "$.tools[0].tagline"),
    (lambda d: d["comparisons"][0]["sides"][0].update(community={"votes": 10**19}), "community.votes"),
    (lambda d: d["comparisons"][0]["sides"][0]["panel"].update(ship=2**40, size=2**40), "panel.ship"),
])
def test_values_the_database_cannot_store_are_refused_before_it_sees_them(
        engine: Engine, tmp_path: Path, mutate: object, place: str) -> None:
    import_files(engine, [FIXTURE_PAGES / "draftsmith-vs-lede.txt"], published=DAY)
    before = tmp_path / "before.json"
    export_file(engine, before)
    document = minimal()
    mutate(document)  # type: ignore[operator]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document, ensure_ascii=True), encoding="utf-8")
    with pytest.raises(CatalogImportError, match=r"bad\.json: at \$\.") as caught:
        import_files(engine, [path], published=DAY)
    assert place in str(caught.value)
    after = tmp_path / "after.json"
    export_file(engine, after)
    assert after.read_bytes() == before.read_bytes()


def test_a_file_with_a_byte_order_mark_imports(engine: Engine, tmp_path: Path) -> None:
    catalog = tmp_path / "bom.json"
    catalog.write_text("\ufeff" + json.dumps(minimal()), encoding="utf-8")
    page = tmp_path / "bom.txt"
    page.write_text("\ufeff" + (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text(), encoding="utf-8")
    summary = import_files(engine, [catalog, page], published=DAY)
    assert summary.comparisons["created"] == 2


def test_the_longest_title_accepted_still_builds_an_issue(engine: Engine, tmp_path: Path,
                                                          make_settings: Callable[..., Settings]) -> None:
    from newsletter import publishing, wiring
    from newsletter.catalog.json_format import schema

    longest = schema()["$defs"]["comparison"]["properties"]["title"]["maxLength"]
    document = minimal()
    document["comparisons"][0]["title"] = "T" * longest
    import_files(engine, [write(tmp_path, "long.json", document)], published=DAY)
    settings = make_settings(database_url=engine.url.render_as_string(hide_password=False))
    with wiring.build(settings) as wired:
        outcome = publishing.build_issue(engine, week=Week(2026, 47), renderer=wired.renderer)
    assert outcome.created and outcome.subject.endswith("T" * longest)
    document["comparisons"][0]["title"] = "T" * (longest + 1)
    with pytest.raises(CatalogImportError, match=r"at \$\.comparisons\[0\]\.title: .* is too long"):
        import_files(engine, [write(tmp_path, "longer.json", document)], published=DAY)
