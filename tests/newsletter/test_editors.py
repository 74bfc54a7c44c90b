"""Editor accounts: password hashes and the editor table (both databases), and the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from newsletter import editors
from newsletter.cli import app
from newsletter.errors import ConfigError

FAST = editors.Cost(2**10, 8, 1)  # tests hash at a low cost on purpose; one test checks the real default
# Made by the first release (n=2^14, before the cost was raised): it must keep verifying.
OLD_HASH = ("scrypt$16384$8$1$b2xkLWZvcm1hdC1zYWx0IQ$vFn3lcFwAwwgi5g2DwSGcHiFbOnkJNw6DOZL31QZermz61mKvRI6naOtIhdRY9TDkr"
            "25w4aCj1JeK-Wc7kU4_A")


def test_the_default_hash_costs_what_owasp_asks_for_scrypt() -> None:
    hashed = editors.hash_password("correct horse battery")
    cost = editors.cost_of(hashed)
    assert cost is not None and cost.n >= 2**17 and cost.r >= 8 and cost.p >= 1
    assert editors.verify_password("correct horse battery", hashed) and not editors.needs_rehash(hashed)


def test_old_hashes_verify_and_ask_to_be_made_again() -> None:
    assert editors.verify_password("correct horse battery", OLD_HASH)
    assert not editors.verify_password("correct horse batterY", OLD_HASH)
    assert editors.needs_rehash(OLD_HASH) and editors.check_hash(OLD_HASH) == OLD_HASH
    assert not editors.needs_rehash(OLD_HASH, cost=editors.Cost(2**14, 8, 1))
    assert editors.needs_rehash(editors.hash_password("correct horse battery", cost=FAST), cost=editors.Cost(2**11, 8, 1))
    assert not editors.verify_password("x" * 12, "scrypt$1073741824$8$1$c2FsdA$AAAA")  # absurd cost: refused, not run


def test_hashes_verify_only_their_password_and_are_salted() -> None:
    first = editors.hash_password("correct horse battery", cost=FAST)
    second = editors.hash_password("correct horse battery", cost=FAST)
    assert first != second and first.startswith("scrypt$1024$8$1$")
    assert editors.verify_password("correct horse battery", first)
    assert not editors.verify_password("correct horse batterY", first)
    assert not editors.verify_password("correct horse battery", "md5$whatever")
    assert editors.check_hash(first) == first
    with pytest.raises(ConfigError, match="NEWSLETTER_EDITOR_PASSWORD_HASH"):
        editors.check_hash("hunter2")
    with pytest.raises(ConfigError, match="at least 12"):
        editors.hash_password("short")


def test_adding_an_editor_twice_updates_the_password(engine: Engine) -> None:
    assert editors.add_editor(engine, "ann", "correct horse battery", email="Ann@Example.com", cost=FAST)
    assert not editors.add_editor(engine, "ann", "another long passphrase", cost=FAST)
    with Session(engine) as session:
        stored = editors.password_hash_of(session, "ann", None)
        assert stored is not None and editors.verify_password("another long passphrase", stored)
        assert editors.editor_addresses(session) == ["ann@example.com"]
        assert editors.password_hash_of(session, "editor", "from-settings") == "from-settings"
    with pytest.raises(ConfigError, match="other than 'editor'"):
        editors.add_editor(engine, "editor", "correct horse battery", cost=FAST)


def test_the_cli_adds_lists_and_hashes(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    runner = CliRunner()
    added = runner.invoke(app, ["editor", "add", "ann", "--email", "ann@example.com", "--password-stdin"],
                          input="correct horse battery\n")
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["editor", "list"])
    assert "ann  ann@example.com" in listed.output
    short = runner.invoke(app, ["editor", "add", "bob", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 12" in short.output


def test_the_cli_hashes_at_the_default_cost() -> None:
    hashed = CliRunner().invoke(app, ["editor", "hash", "--password-stdin"], input="correct horse battery\n")
    assert hashed.exit_code == 0 and editors.verify_password("correct horse battery", hashed.output.strip())
    assert not editors.needs_rehash(hashed.output.strip())
