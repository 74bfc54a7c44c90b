"""Import and export whole files: detect the format, parse everything, then store in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine

from newsletter.catalog import store
from newsletter.catalog.comparison_page import looks_like_page, parse_page
from newsletter.catalog.json_format import dump_json, parse_json
from newsletter.catalog.records import ImportBatch
from newsletter.db import session_scope
from newsletter.errors import CatalogImportError


def read_batch(path: Path, *, published: date) -> ImportBatch:
    """Parse one file, JSON or comparison page, detected by content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogImportError(f"{path}: cannot read the file: {exc}") from None
    if text.removeprefix("\ufeff").lstrip().startswith(("{", "[")):  # a UTF-8 byte-order mark is accepted
        return parse_json(text, source=str(path))
    if looks_like_page(text):
        return parse_page(text, source=str(path), published=published)
    raise CatalogImportError(
        f"{path}: neither a JSON catalog (it must start with '{{') nor a comparison page "
        "(it must hold 'AI tool comparison' and 'Reviewer scorecard')"
    )


def import_files(engine: Engine, paths: Sequence[Path], *, published: date) -> store.ImportSummary:
    """Import every file or none: all are parsed before anything is written, and one transaction stores them."""
    batches = [read_batch(path, published=published) for path in paths]
    with session_scope(engine) as session:
        return store.apply_batches(session, batches)


def export_file(engine: Engine, path: Path) -> tuple[int, int]:
    """Write the whole catalog to ``path`` in the import format; returns (tools, comparisons) written."""
    with session_scope(engine) as session:
        tools = store.all_tools(session)
        comparisons = store.all_comparison_records(session)
    path.write_text(dump_json(tools, comparisons), encoding="utf-8")
    return len(tools), len(comparisons)
