"""Fuzzing both importers on both databases: mutated catalogs and pages end in an import or a clear refusal.

Every input, however broken, must end in success or a CatalogImportError (UnknownToolError for a comparison
naming a tool nobody has): never another exception. A refusal leaves the export byte-identical; an import
leaves an export that imports again and a catalog that `issue build` renders. Bounded and seeded.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from newsletter import publishing, wiring
from newsletter.catalog.comparison_page import parse_page
from newsletter.catalog.importer import export_file, import_files
from newsletter.catalog.json_format import dump_json, parse_json
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.errors import CatalogImportError, UnknownToolError
from newsletter.values import Week
from subscribers import store as subscribers
from tests.conftest import FIXTURE_PAGES, SITE_PAGES

DAY = date(2026, 11, 20)
BASE_PAGE = FIXTURE_PAGES / "draftsmith-vs-lede.txt"
PAGES = [path.read_text(encoding="utf-8") for path in sorted([*FIXTURE_PAGES.glob("*.txt"), *SITE_PAGES.glob("*.txt")])]
_SCORED = parse_page((FIXTURE_PAGES / "iconsmith-vs-huewise.txt").read_text(), source="base", published=DAY)
BASE_DOCUMENT: dict[str, Any] = json.loads(dump_json(list(_SCORED.tools), list(_SCORED.comparisons)))
HUGE, DEEP = "__huge_number__", "__deep_nesting__"
NASTY = ["\x00", "\x07", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\x9b", "\ufffe", "\uffff", "\U0010ffff",
         "\ufdd0", "\ud800", "\udfff", "\u2028", "\u2029", "\ufeff", "\u200d", "\r", "\n", "\t", "[/bold]", "[red]",
         "%%{unsubscribe_url}%%", "%%{nope}%%", "{{ 7*7 }}", "{% if %}", "<mj-text>", "</mj-column>", "]]>",
         "&amp;", "<!--", "😀", "é", "x" * 300]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

nasty_text = st.lists(st.one_of(st.characters(exclude_categories=()), st.sampled_from(NASTY)), max_size=8).map("".join)
# What a splice adds to a field otherwise left valid: the bad characters meet every later stage.
splice = st.lists(st.one_of(st.sampled_from(NASTY), st.characters(exclude_categories=())), min_size=1, max_size=3
                  ).map("".join)
plausible = st.sampled_from(["2026-11-18", "9999-12-31", "0001-01-01", "2026-02-30", "ship", "skip", "Builder",
                             "Founder", "Free", "Paid", "iconsmith", "huewise", "new-tool", "Design", "", HUGE, DEEP])
numbers = st.one_of(st.integers(-5, 105), st.integers(2**31 - 2, 2**31 + 2), st.integers(10**18, 10**20),
                    st.floats(allow_nan=True, allow_infinity=True))
values = st.recursive(st.one_of(st.none(), st.booleans(), numbers, nasty_text, plausible),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=6)


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path below the root, containers and leaves alike."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    found = []
    for key, child in children:
        found.append((*path, key))
        found.extend(_places(child, (*path, key)))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        document = document[key]
    return document


@st.composite
def mutated_catalogs(draw: st.DrawFn) -> bytes:
    """The scored base catalog with one to three random edits, serialised, maybe truncated, maybe with a BOM."""
    document = copy.deepcopy(BASE_DOCUMENT)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["splice", "splice", "splice", "replace", "replace", "delete", "add"]))
        places = [place for place in _places(document)
                  if action != "splice" or isinstance(_parent(document, place)[place[-1]], str)]
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent, key = _parent(document, path), path[-1]
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(values)
        elif action == "splice":
            at = draw(st.integers(0, len(parent[key])))
            parent[key] = parent[key][:at] + draw(splice) + parent[key][at:]
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    text = text.replace(f'"{HUGE}"', "9" * 5000).replace(f'"{DEEP}"', "[" * 5000 + "]" * 5000)
    return _finish(draw, text)


@st.composite
def mutated_pages(draw: st.DrawFn) -> bytes:
    """A site page with one to three line edits: deleted, doubled, swapped, replaced, spliced or renumbered."""
    lines = draw(st.sampled_from(PAGES)).split("\n")
    for _ in range(draw(st.integers(1, 3))):
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["splice", "splice", "splice", "number", "empty", "delete", "double", "swap",
                                       "replace"]))
        if action == "delete" and len(lines) > 1:
            del lines[i]
        elif action == "double":
            lines.insert(i, lines[i])
        elif action == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "replace":
            lines[i] = draw(nasty_text)
        elif action == "splice":
            i = draw(st.sampled_from([k for k, line in enumerate(lines) if line.strip()] or [i]))
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(splice) + lines[i][at:]
        elif action == "number":
            number = draw(st.one_of(st.integers(0, 10**25).map(str), st.just("9" * 5000), st.just("0")))
            lines[i] = "".join(number if c.isdigit() else c for c in lines[i])
        elif action == "empty":
            lines[i] = draw(st.sampled_from(["", "“”", "“ ”", '""', "—", "0/100 · ship", "Builder", "Panel ship"]))
    return _finish(draw, "\n".join(lines))


def _finish(draw: st.DrawFn, text: str) -> bytes:
    # Rare on purpose (Hypothesis favours the bounds of a range, hence the middle value): a truncated or
    # BOM-prefixed file is refused or accepted at once, before the stages the other edits are meant to reach.
    if draw(st.integers(0, 16)) == 8:
        text = text[: draw(st.integers(0, len(text)))]
    if draw(st.integers(0, 8)) == 4:
        text = "\ufeff" + text
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become bytes no UTF-8 reader accepts


def _reset(engine: Engine) -> None:
    """Empty every table, so that each example starts from the same stored catalog."""
    with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())


def _check_import(engine: Engine, tmp_path: Path, make_settings: Callable[..., Settings], name: str,
                  content: bytes) -> None:
    _reset(engine)
    import_files(engine, [BASE_PAGE], published=DAY)
    with session_scope(engine) as session:
        subscribers.add_active(session, ["reader@example.com"])
    before, after, fuzzed = tmp_path / "before.json", tmp_path / "after.json", tmp_path / name
    export_file(engine, before)
    fuzzed.write_bytes(content)
    try:
        import_files(engine, [fuzzed], published=DAY)
    except (CatalogImportError, UnknownToolError):
        export_file(engine, after)
        assert after.read_bytes() == before.read_bytes()
        return
    export_file(engine, after)
    stored = parse_json(after.read_text(encoding="utf-8"), source="export")
    weeks = {Week.containing(c.published) for c in stored.comparisons} | {Week.containing(t.published)
                                                                             for t in stored.tools}
    with wiring.build(make_settings(database_url=engine.url.render_as_string(hide_password=False))) as wired:
        for week in sorted(weeks)[:4]:
            publishing.build_issue(engine, week=week, renderer=wired.renderer)


def test_mutated_json_catalogs_import_or_are_refused_clearly(engine: Engine, tmp_path: Path,
                                                             make_settings: Callable[..., Settings]) -> None:
    @FUZZ
    @given(content=mutated_catalogs())
    def check(content: bytes) -> None:
        _check_import(engine, tmp_path, make_settings, "fuzzed.json", content)

    check()


def test_mutated_pages_import_or_are_refused_clearly(engine: Engine, tmp_path: Path,
                                                     make_settings: Callable[..., Settings]) -> None:
    @FUZZ
    @given(content=mutated_pages())
    def check(content: bytes) -> None:
        _check_import(engine, tmp_path, make_settings, "fuzzed.txt", content)

    check()
