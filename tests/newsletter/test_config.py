"""Settings: defaults, and errors that name the variable to fix."""

from __future__ import annotations

import base64
import secrets

import pytest
from typer.testing import CliRunner

from newsletter import keycheck
from newsletter.cli import app
from newsletter.config import load_settings, new_secret
from newsletter.errors import ConfigError
from tests.conftest import TEST_SECRET_KEY


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    settings = load_settings()
    assert settings.database_url == "sqlite:///newsletter.db"
    assert settings.provider == "file"
    assert settings.sender_domain == "example.com"


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("NEWSLETTER_TIMEZONE", "Mars/Olympus", "is not an IANA time zone"),
    ("NEWSLETTER_PROVIDER", "pigeon", "'ses' or 'smtp'"),
    ("NEWSLETTER_FROM_ADDRESS", "nobody", "is not 'Name <address@domain>'"),
    ("NEWSLETTER_DATABASE_URL", "mysql://x", "use sqlite:///path.db or postgresql://"),
    ("NEWSLETTER_PUBLIC_URL", "not a url", "URL"),
    ("NEWSLETTER_SECRET_KEY", "short", "at least 32"),
    ("NEWSLETTER_TRUSTED_PROXIES", "10.0.0.1, proxy.internal", "'proxy.internal' is not an IP address or network"),
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


WEAK_KEYS = [
    "password12345678",  # recovered offline from one unsubscribe link in 0.04 s
    "password12345678password12345678",
    "test-secret-key-0123456789abcdefghij",
    "correcthorsebatterystaple12345678",
    "CorrectHorseBatteryStaple-2024-Production!",
    "Purple-Monkey-Dishwasher-Seven-Kites",
    "ThisIsMyVeryLongNewsletterKey2026!",
    "changeme-changeme-changeme-changeme",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "a1B2c3D4e5F6g7H8a1B2c3D4e5F6g7H8",
    "0123456789abcdef0123456789abcdef",
    "9f3Kq7ZabcdefghXw2Lp8Rt5Vn1Mc4Hy",
    "qwertyuiop-Zx81Lm0Qa7Ws3Ed5Rf9Tg",
    "aaaaabaaaaacaaaaadaaaaaeaaaaafaaaaag",
]


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_a_guessable_secret_key_is_refused_with_how_to_make_one(monkeypatch: pytest.MonkeyPatch, tmp_path: object,
                                                                key: str) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", key)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "NEWSLETTER_SECRET_KEY" in message and "`newsletter secret`" in message
    assert key[:12] not in message  # the key never reaches a log


def test_random_keys_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    rng = secrets.SystemRandom()
    strong = ["Xb5oMwV2c8RkQz-t1NyLJf7uHq3GdPaE4sWn9KiYv0T", "b7e0c2f94a1d38e65f0b9a7c4d2e81f3",
              base64.b64encode(bytes(rng.randrange(256) for _ in range(32))).decode()]
    for key in strong:
        assert load_settings(secret_key=key).require_secret() == key


def test_every_key_newsletter_secret_prints_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    runner = CliRunner()
    for _ in range(5):
        printed = runner.invoke(app, ["secret"])
        assert printed.exit_code == 0, printed.output
        key = printed.output.strip()
        assert len(key) >= 32 and load_settings(secret_key=key).require_secret() == key
    # A random draw looks like a pattern about once in 4,000: the generator must never hand one out.
    assert all(keycheck.weakness(new_secret()) is None for _ in range(20_000))


def test_trusted_proxies_are_addresses_and_networks(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    assert load_settings().trusted_networks == ()
    monkeypatch.setenv("NEWSLETTER_TRUSTED_PROXIES", "10.0.0.1, 172.16.0.0/12,fd00::/8")
    assert [str(n) for n in load_settings().trusted_networks] == ["10.0.0.1/32", "172.16.0.0/12", "fd00::/8"]


def test_every_missing_setting_is_named_at_once_with_how_to_set_it(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    settings = load_settings(provider="mailgun")
    with pytest.raises(ConfigError) as caught:
        settings.require("secret_key", "postal_address", provider=True)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("4 settings this command needs are not set")
    assert [line.split(" is not set")[0].strip() for line in lines[1:]] == [
        "NEWSLETTER_SECRET_KEY", "NEWSLETTER_POSTAL_ADDRESS", "NEWSLETTER_PROVIDER_API_KEY",
        "NEWSLETTER_MAILGUN_DOMAIN"]
    assert "`newsletter secret`" in lines[1] and "NEWSLETTER_POSTAL_ADDRESS=" in lines[2] and "mailgun" in lines[3]
    load_settings(secret_key=TEST_SECRET_KEY, postal_address="1 Main Street").require("secret_key", "postal_address")


def test_commands_report_their_missing_settings_together_once(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path}/n.db")
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "postmark")
    runner = CliRunner()
    for command in (["serve"], ["scheduler"], ["issue", "build"]):
        result = runner.invoke(app, command)
        said = result.output
        assert result.exit_code == 1, (command, said)
        assert said.count("NEWSLETTER_SECRET_KEY is not set") == 1 and "NEWSLETTER_POSTAL_ADDRESS is not set" in said
        assert ("NEWSLETTER_PROVIDER_API_KEY is not set" in said) == (command != ["issue", "build"]), said
        assert "created the database schema" not in said  # refused before touching anything


@pytest.mark.parametrize("url", ["http://localhost:8000", "http://127.0.0.1:8000/", "http://[::1]:8000",
                                 "https://news.example.com"])
def test_public_url_may_be_http_only_on_this_machine(url: str) -> None:
    assert load_settings(public_url=url).public_url.host


def test_a_plain_http_public_url_elsewhere_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    monkeypatch.setenv("NEWSLETTER_PUBLIC_URL", "http://news.example.com")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "NEWSLETTER_PUBLIC_URL" in str(caught.value) and "one-click unsubscribe" in str(caught.value)
    assert "https://" in str(caught.value)
