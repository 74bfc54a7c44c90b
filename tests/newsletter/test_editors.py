"""Editor accounts: password hashes and the editor table (both databases), and the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from newsletter import editors
from newsletter.cli import app
from newsletter.errors import ConfigError


def test_hashes_verify_only_their_password_and_are_salted() -> None:
    first, second = editors.hash_password("correct horse battery"), editors.hash_password("correct horse battery")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert editors.verify_password("correct horse battery", first)
    assert not editors.verify_password("correct horse batterY", first)
    assert not editors.verify_password("correct horse battery", "md5$whatever")
    assert editors.check_hash(first) == first
    with pytest.raises(ConfigError, match="NEWSLETTER_EDITOR_PASSWORD_HASH"):
        editors.check_hash("hunter2")
    with pytest.raises(ConfigError, match="at least 12"):
        editors.hash_password("short")


def test_adding_an_editor_twice_updates_the_password(engine: Engine) -> None:
    assert editors.add_editor(engine, "ann", "correct horse battery", email="Ann@Example.com")
    assert not editors.add_editor(engine, "ann", "another long passphrase")
    with Session(engine) as session:
        stored = editors.password_hash_of(session, "ann", None)
        assert stored is not None and editors.verify_password("another long passphrase", stored)
        assert editors.editor_addresses(session) == ["ann@example.com"]
        assert editors.password_hash_of(session, "editor", "from-settings") == "from-settings"
    with pytest.raises(ConfigError, match="other than 'editor'"):
        editors.add_editor(engine, "editor", "correct horse battery")


def test_the_cli_adds_lists_and_hashes(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    runner = CliRunner()
    added = runner.invoke(app, ["editor", "add", "ann", "--email", "ann@example.com", "--password-stdin"],
                          input="correct horse battery\n")
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["editor", "list"])
    assert "ann  ann@example.com" in listed.output
    hashed = runner.invoke(app, ["editor", "hash", "--password-stdin"], input="correct horse battery\n")
    assert hashed.exit_code == 0 and editors.verify_password("correct horse battery", hashed.output.strip())
    short = runner.invoke(app, ["editor", "add", "bob", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 12" in short.output
