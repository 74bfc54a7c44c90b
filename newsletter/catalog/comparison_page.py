"""Parse comparison pages as the site publishes them (plain text) into an ImportBatch.

Two layouts exist. Both open with ``AI tool comparison``, the ``A vs B`` title and two tool blocks (category,
name, tagline, optional label, percent, ``Panel ship``, optional community figure, ``Community``, pricing tier,
``Entry``, description). Then:

* the *scored* layout has a ``Decision`` table (panel split, community, pricing note per tool) and a
  ``Reviewer scorecard`` with a heading per persona and a ``74/100 · ship`` line before each review, first
  tool then second;
* the *compact* layout has only the ``Reviewer scorecard``: eight quotes in panel order (Builder, Skeptic,
  Futurist, Founder; first tool then second), with no headings or scores. When the quotes' own wording
  clearly contradicts that order (see ``personas.assign``), the wording wins.

Text is held to the rule of ``catalog.text``: a page holding a control character, a lone surrogate or a
non-character is refused with the line it is on (a tab counts as a space, and a leading byte-order mark is
accepted). Whatever a page yields must be a catalog the JSON importer accepts, so that its export imports
again: a review without text is refused naming the persona and the tool, anything else the JSON format
forbids (an over-long name, a comma in a category) is refused with the JSON path of the offending part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from newsletter.catalog import personas
from newsletter.catalog.json_format import dump_json, parse_json
from newsletter.catalog.panel import check_published, label_for
from newsletter.catalog.records import ImportBatch
from newsletter.catalog.text import refused_character
from newsletter.errors import CatalogImportError
from newsletter.values import PERSONAS, CommunityVotes, Comparison, PanelVerdict, Review, Side, Tool

MARKER = "AI tool comparison"
SCORECARD = "Reviewer scorecard"
# Matched with fullmatch: `$` would also match before a final newline.
_PERCENT = re.compile(r"(\d{1,3})\s*%")
_SCORE = re.compile(r"(\d{1,3})\s*/\s*100\s*[·•|-]\s*(ship|skip)", re.IGNORECASE)
_SPLIT = re.compile(r"(Ship|Mixed|Skip)\s*[·•|-]\s*(\d{1,9})\s+ship\s*/\s*(\d{1,9})\s+skip", re.IGNORECASE)
_LABELS = {"Ship", "Mixed", "Skip"}
_NO_VOTES = {"", "—", "-", "–", "no community votes yet", "no votes yet"}
_FOOTER = ("Weekly AI Tool Verdicts", "Get the next comparison")


def looks_like_page(text: str) -> bool:
    """Whether ``text`` is a comparison page rather than something else."""
    return MARKER in text and SCORECARD in text


def slugify(name: str) -> str:
    """``Mistral Medium 3.2`` → ``mistral-medium-3-2``, the site's slug rule."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def parse_page(text: str, *, source: str, published: date) -> ImportBatch:
    """Parse one page into what the JSON importer would accept; CatalogImportError names the file and the part."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    _check_characters(text, source)
    try:
        batch = _Parser(_lines(text), published).batch(source)
    except _Missing as exc:
        raise CatalogImportError(f"{source}: {exc}") from None
    _check_exportable(batch)
    return batch


def _check_characters(text: str, source: str) -> None:
    if refused_character(text, multiline=True) is None:
        return
    for number, line in enumerate(text.split("\n"), start=1):
        problem = refused_character(line, multiline=False)
        if problem:
            shown = repr(line.strip())
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            raise CatalogImportError(f"{source}: line {number} ({shown}): {problem}; remove it")


def _check_exportable(batch: ImportBatch) -> None:
    """Refuse what the JSON importer would refuse, so that the export of what a page stored imports again."""
    for tool, side in zip(batch.tools, batch.comparisons[0].sides, strict=True):
        for review in side.reviews:
            if not review.text.strip():
                raise CatalogImportError(f"{batch.source}: the {review.persona} review of {tool.name!r} has no "
                                         "text; give every review its text")
    try:
        parse_json(dump_json(list(batch.tools), list(batch.comparisons)), source=batch.source)
    except CatalogImportError as exc:
        raise CatalogImportError(f"{exc}\n  (in the catalog the page makes: tools[0] is the first tool, "
                                 "sides[0] its side of the comparison; fix the page)") from None


class _Missing(Exception):
    """A part of the page is missing or malformed (message says which)."""


@dataclass
class _Block:
    category: str
    name: str
    tagline: str
    label: str | None
    percent: int | None
    community: str
    tier: str
    description: str


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


class _Parser:
    def __init__(self, lines: list[str], published: date) -> None:
        self.lines = lines
        self.published = published

    def batch(self, source: str) -> ImportBatch:
        start = self._index(MARKER, 0, "the 'AI tool comparison' heading")
        if start + 1 >= len(self.lines):
            raise _Missing("the title line ('A vs B') after 'AI tool comparison' is missing")
        title = self.lines[start + 1]
        card = self._index(SCORECARD, start, "the 'Reviewer scorecard' section")
        decision_at = self._find("Decision", start, card)
        blocks = self._blocks(start + 2, decision_at if decision_at is not None else card)
        expected = f"{blocks[0].name} vs {blocks[1].name}"
        if title != expected:
            raise _Missing(f"the title {title!r} does not name the two tools found ({expected!r})")
        table = self._decision(decision_at, card, blocks) if decision_at is not None else {}
        reviews = self._scorecard(card + 1)
        tools = tuple(self._tool(block, table, i) for i, block in enumerate(blocks))
        sides = tuple(
            Side(tool.slug, self._panel(block, table, i), self._community(block, table, i), reviews[i])
            for i, (tool, block) in enumerate(zip(tools, blocks, strict=True))
        )
        record = Comparison(slugify(title), title, self.published, (sides[0], sides[1]))
        return ImportBatch(source, tools, (record,), first_seen_dates=True)

    def _index(self, line: str, start: int, what: str) -> int:
        found = self._find(line, start, len(self.lines))
        if found is None:
            raise _Missing(f"{what} is missing")
        return found

    def _find(self, line: str, start: int, stop: int) -> int | None:
        return next((i for i in range(start, stop) if self.lines[i] == line), None)

    def _blocks(self, start: int, stop: int) -> list[_Block]:
        anchors = [i for i in range(start, stop) if self.lines[i] == "Panel ship"]
        if len(anchors) != 2:
            raise _Missing(f"expected two tool blocks (each with a 'Panel ship' line), found {len(anchors)}")
        heads = [self._head(anchor) for anchor in anchors]
        ends = [heads[1][0], stop]
        return [self._block(anchor, head, end) for anchor, head, end in zip(anchors, heads, ends, strict=True)]

    def _head(self, anchor: int) -> tuple[int, str | None, int | None]:
        """Index of the block's category line, its label and percent, walking back from 'Panel ship'."""
        at = anchor - 1
        match = _PERCENT.fullmatch(self.lines[at])
        if match is None and self.lines[at] not in _NO_VOTES:
            raise _Missing(f"the panel percent before 'Panel ship' is missing (found {self.lines[at]!r})")
        percent = int(match[1]) if match else None
        at -= 1
        label = self.lines[at] if self.lines[at] in _LABELS else None
        at -= 1 if label else 0
        category_at = at - 2  # tagline at `at`, name before it, category before that
        if category_at < 0:
            raise _Missing("a tool block lacks its category, name or tagline line")
        return category_at, label, percent

    def _block(self, anchor: int, head: tuple[int, str | None, int | None], end: int) -> _Block:
        category_at, label, percent = head
        community_at = self._find("Community", anchor, min(anchor + 3, end))
        if community_at is None:
            raise _Missing("a tool block lacks its 'Community' line after 'Panel ship'")
        community = " ".join(self.lines[anchor + 1 : community_at])
        entry_at = self._find("Entry", community_at, min(community_at + 3, end))
        if entry_at is None or entry_at != community_at + 2:
            raise _Missing("a tool block lacks its pricing tier and 'Entry' lines after 'Community'")
        tier = self.lines[community_at + 1]
        if tier not in ("Free", "Paid"):
            raise _Missing(f"pricing tier must be 'Free' or 'Paid', found {tier!r}")
        description = " ".join(_drop_avatar(self.lines[entry_at + 1 : end]))
        if not description:
            raise _Missing(f"the description of {self.lines[category_at + 1]!r} is missing")
        category, name, tagline = self.lines[category_at : category_at + 3]
        return _Block(category, name, tagline, label, percent, community, tier, description)

    def _decision(self, at: int, stop: int, blocks: list[_Block]) -> dict[str, tuple[str, str]]:
        """Rows of the Decision table: label → (first tool's value, second tool's value)."""
        names = self.lines[at + 1 : at + 3]
        if names != [blocks[0].name, blocks[1].name]:
            raise _Missing("the Decision table does not start with the two tool names")
        rows = self.lines[at + 3 : stop]
        if len(rows) % 3:
            raise _Missing("the Decision table has a row without a value for each tool")
        return {rows[i]: (rows[i + 1], rows[i + 2]) for i in range(0, len(rows), 3)}

    def _scorecard(self, start: int) -> tuple[tuple[Review, ...], tuple[Review, ...]]:
        stop = next((i for i in range(start, len(self.lines)) if self.lines[i].startswith(_FOOTER)), None)
        body = self.lines[start : stop if stop is not None else len(self.lines)]
        if any(line in PERSONAS for line in body):
            return _scored(body)
        return _compact(body)

    def _tool(self, block: _Block, table: dict[str, tuple[str, str]], i: int) -> Tool:
        pricing = table.get("Pricing")
        note = pricing[i] if pricing else None
        return Tool(
            slugify(block.name), block.name, block.tagline, block.description, block.category,
            "Free" if block.tier == "Free" else "Paid", note, self.published,
        )

    def _panel(self, block: _Block, table: dict[str, tuple[str, str]], i: int) -> PanelVerdict | None:
        row = table.get("Panel verdict")
        if row:
            match = _SPLIT.fullmatch(row[i])
            if match is None:
                raise _Missing(f"panel verdict {row[i]!r} is not like 'Mixed · 2 ship / 2 skip'")
            ship, skip = int(match[2]), int(match[3])
            if ship + skip == 0:
                raise _Missing(f"{block.name}: panel verdict {row[i]!r} counts no reviewer")
            percent = block.percent if block.percent is not None else round(100 * ship / (ship + skip))
            problem = check_published(percent, ship, ship + skip)
            if problem:
                raise _Missing(f"{block.name}: {problem}")
            return PanelVerdict(percent, label_for(percent), ship, ship + skip)
        if block.percent is None:
            return None
        if block.label and block.label != label_for(block.percent):
            raise _Missing(f"{block.name}: label {block.label} contradicts {block.percent}% ship")
        return PanelVerdict(block.percent, label_for(block.percent))

    def _community(self, block: _Block, table: dict[str, tuple[str, str]], i: int) -> CommunityVotes | None:
        row = table.get("Community")
        return parse_community(row[i] if row else block.community)


def parse_community(text: str) -> CommunityVotes | None:
    """``—`` or ``No community votes yet`` → None; ``58% ship · 12 votes`` → CommunityVotes(12, 58)."""
    if text.strip().lower() in _NO_VOTES:
        return None
    votes = re.search(r"(\d[\d,]*)\s+votes?", text)
    percent = re.search(r"(\d{1,3})\s*%", text)
    if votes is None or len(votes[1]) > 13:
        raise _Missing(f"community figure {text!r} is not like '58% ship · 12 votes' or '—'")
    return CommunityVotes(int(votes[1].replace(",", "")), int(percent[1]) if percent else None)


def _drop_avatar(lines: list[str]) -> list[str]:
    """The scored layout puts a one-letter avatar before the next block's category; it is not text."""
    return lines[:-1] if lines and len(lines[-1]) == 1 else lines


def _scored(body: list[str]) -> tuple[tuple[Review, ...], tuple[Review, ...]]:
    sides: tuple[list[Review], list[Review]] = ([], [])
    persona: str | None = None
    entries: list[tuple[int | None, bool | None, list[str]]] = []

    def flush() -> None:
        if persona is None:
            return
        if len(entries) != 2:
            raise _Missing(f"the {persona} section holds {len(entries)} reviews; it needs one per tool")
        for side, (score, ship, text) in zip(sides, entries, strict=True):
            side.append(Review(persona, " ".join(text), score, ship))

    for line in body:
        if line in PERSONAS:
            flush()
            persona, entries = line, []
        elif persona is None:
            raise _Missing(f"scorecard text before the first reviewer heading: {line[:40]!r}")
        elif match := _SCORE.fullmatch(line):
            score = int(match[1])
            if score > 100:
                raise _Missing(f"{persona}: score {score}/100 is above 100")
            entries.append((score, match[2].lower() == "ship", []))
        elif entries and entries[-1][0] is not None and not entries[-1][2]:
            entries[-1][2].append(line)
        else:
            entries.append((None, None, [line]))
    flush()
    return tuple(sides[0]), tuple(sides[1])


def _compact(body: list[str]) -> tuple[tuple[Review, ...], tuple[Review, ...]]:
    quotes = _quotes(body)
    expected = 2 * len(PERSONAS)
    if len(quotes) != expected:
        raise _Missing(f"the reviewer scorecard holds {len(quotes)} quotes; it needs {expected} "
                       "(Builder, Skeptic, Futurist, Founder; first tool then second)")
    pairs = [(quotes[2 * k], quotes[2 * k + 1]) for k in range(len(PERSONAS))]
    order = personas.assign(pairs)
    first = tuple(Review(order[k], pairs[k][0]) for k in range(len(pairs)))
    second = tuple(Review(order[k], pairs[k][1]) for k in range(len(pairs)))
    return _in_panel_order(first), _in_panel_order(second)


def _in_panel_order(reviews: tuple[Review, ...]) -> tuple[Review, ...]:
    return tuple(sorted(reviews, key=lambda review: PERSONAS.index(review.persona)))


def _quotes(body: list[str]) -> list[str]:
    quotes: list[str] = []
    current: list[str] | None = None
    for line in body:
        if current is None:
            if not line.startswith(("“", '"')):
                raise _Missing(f"expected a quoted review in the scorecard, found {line[:40]!r}")
            current = []
        current.append(line)
        if line.endswith(("”", '"')) and not (len(current) == 1 and len(line) == 1):
            quotes.append(" ".join(current)[1:-1].strip())
            current = None
    if current is not None:
        raise _Missing("a quoted review in the scorecard is not closed")
    return quotes
