"""Settings: defaults, and errors that name the variable to fix."""

from __future__ import annotations

import pytest

from newsletter.config import load_settings
from newsletter.errors import ConfigError


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    settings = load_settings()
    assert settings.database_url == "sqlite:///newsletter.db"
    assert settings.provider == "file"
    assert settings.sender_domain == "example.com"


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("NEWSLETTER_TIMEZONE", "Mars/Olympus", "is not an IANA time zone"),
    ("NEWSLETTER_PROVIDER", "pigeon", "'resend' or 'smtp'"),
    ("NEWSLETTER_FROM_ADDRESS", "nobody", "is not 'Name <address@domain>'"),
    ("NEWSLETTER_DATABASE_URL", "mysql://x", "use sqlite:///path.db or postgresql://"),
    ("NEWSLETTER_PUBLIC_URL", "not a url", "URL"),
    ("NEWSLETTER_SECRET_KEY", "short", "at least 16 characters"),
    ("NEWSLETTER_BATCH_SIZE", "0", "greater than or equal to 1"),
])
def test_a_malformed_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: object, variable: str,
                                                value: str, says: str) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert variable in str(caught.value) and says in str(caught.value)


def test_dotenv_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    (tmp_path / ".env").write_text("NEWSLETTER_POSTAL_ADDRESS=9 Env Road\n")  # type: ignore[operator]
    assert load_settings().require_postal_address() == "9 Env Road"


def test_missing_secret_and_address_say_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    settings = load_settings()
    with pytest.raises(ConfigError, match=r"NEWSLETTER_SECRET_KEY is not set.*newsletter secret"):
        settings.require_secret()
    with pytest.raises(ConfigError, match="NEWSLETTER_POSTAL_ADDRESS is not set"):
        settings.require_postal_address()
