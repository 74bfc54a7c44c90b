"""Settings from ``NEWSLETTER_*`` environment variables and ``.env``.

Never instantiated at import time: entry points call :func:`load_settings` and pass the value down.
Tests build ``Settings(_env_file=None, ...)`` directly.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter import addresses, keycheck
from newsletter.errors import AddressError, ConfigError
from newsletter.setting_needs import ENV_PREFIX, PROVIDER_NEEDS, is_local, not_set
from newsletter.zones import LocalTime, parse_time

SNS_TOPIC = re.compile(r"arn:aws(?:-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}")
ProviderName = Literal["file", "console", "memory", "postmark", "sendgrid", "mailgun", "resend", "ses", "smtp"]


class Settings(BaseSettings):
    """Every knob of the publisher; each field is read from ``NEWSLETTER_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str = "sqlite:///newsletter.db"
    provider: ProviderName = "file"
    outbox_dir: Path = Path("outbox")
    from_address: str = "Weekly AI Tool Verdicts <verdicts@example.com>"
    public_url: AnyHttpUrl = AnyHttpUrl("http://localhost:8000")
    site_url: AnyHttpUrl = AnyHttpUrl("https://verdicts.example.com/compare/")
    secret_key: SecretStr | None = None
    timezone: str = "UTC"
    postal_address: str = ""
    publication_name: str = "Weekly AI Tool Verdicts"
    digest_limit: int = Field(default=8, ge=1, le=20)
    batch_size: int = Field(default=100, ge=1, le=1000)
    publish_cron: str = "0 7 * * mon"
    publish_mode: Literal["auto", "review"] = "auto"
    send_cron: str = "0 7 * * tue"
    misfire_grace_seconds: int = Field(default=6 * 3600, ge=60, le=7 * 86400)
    maintenance_minutes: int = Field(default=15, ge=1, le=1440)
    catalog_url: AnyHttpUrl | None = None
    pending_days: int = Field(default=30, ge=1, le=3650)
    retry_attempts: int = Field(default=3, ge=1, le=20)
    editor_password_hash: SecretStr | None = None
    editor_emails: str = ""
    editor_session_hours: int = Field(default=12, ge=1, le=720)
    provider_api_key: SecretStr | None = None
    provider_base_url: AnyHttpUrl | None = None
    mailgun_domain: str | None = None
    postmark_message_stream: str = "broadcast"
    # newsletter doctor: DKIM selectors and the return-path host where they are per account (see doctor/facts.py).
    dkim_selectors: str = ""
    bounce_domain: str | None = None
    ses_region: str | None = None
    ses_access_key_id: str | None = None
    ses_secret_access_key: SecretStr | None = None
    ses_session_token: SecretStr | None = None
    ses_configuration_set: str | None = None
    ses_mode: Literal["raw", "bulk"] = "bulk"
    ses_sns_topic_arns: str = ""
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    rate_limit: float | None = Field(default=None, gt=0)
    concurrency: int = Field(default=4, ge=1, le=32)
    request_timeout: float = Field(default=30.0, gt=0, le=600)
    max_retries: int = Field(default=5, ge=0, le=20)
    lease_seconds: int = Field(default=600, ge=1, le=86400)
    # How long an unknown outcome is reconciled from the provider's record before it is left to the operator.
    reconcile_hours: float = Field(default=6, gt=0, le=24 * 30)
    # Override of the provider's search delay (Postmark 10 min, Mailgun 30 min): a miss is trusted after it.
    reconcile_delay_seconds: float | None = Field(default=None, ge=0, le=86400)
    send_with_workers: bool = False
    # Clicks: false counts per issue and link only; true adds the reader's token to count unique readers (README).
    track_readers: bool = False
    # now: every reader when the issue starts sending; local: each at the next local send time in their own zone.
    delivery_mode: Literal["now", "local"] = "now"
    local_send_time: str = "07:00"
    worker_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    heartbeat_seconds: float = Field(default=15.0, gt=0, le=3600)
    database_retry_seconds: float = Field(default=30.0, gt=0, le=3600)
    confirm_resend_minutes: int = Field(default=10, ge=0, le=10080)
    confirm_max_age_days: int = Field(default=7, ge=1, le=90)
    soft_bounce_limit: int = Field(default=3, ge=1, le=100)
    signup_rate_limit: int = Field(default=5, ge=1, le=10000)
    trusted_proxies: str = ""
    postmark_webhook_username: str | None = None
    postmark_webhook_password: SecretStr | None = None
    sendgrid_webhook_public_key: str | None = None
    mailgun_webhook_signing_key: SecretStr | None = None
    resend_webhook_secret: SecretStr | None = None
    # Observability: logs, /metrics and the metrics port of workers and the scheduler (newsletter.logs, .metrics).
    log_format: Literal["logfmt", "json"] = "logfmt"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_token: SecretStr | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # Reader votes (newsletter.votes): the desk flags a tool when panel and readers differ by more than this many
    # percentage points; the next issue recaps a tool only when at least this many readers voted on it.
    vote_disagreement_points: int = Field(default=25, ge=0, le=100)
    vote_recap_min_votes: int = Field(default=20, ge=1, le=1_000_000)

    @field_validator("publish_cron", "send_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a crontab line such as '0 7 * * mon': {exc}") from exc
        return value

    @field_validator("public_url")
    @classmethod
    def _https_unless_local(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.scheme != "https" and not is_local(value.host or ""):  # mail clients POST one-click over https only
            raise ValueError(f"{value} is plain http: one-click unsubscribe and readers' links need https, so use "
                             "https://… (plain http only for localhost, 127.0.0.1 or ::1, when trying it out)")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("use sqlite:///path.db or postgresql://user@host:port/dbname")
        return value

    @field_validator("from_address")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        _, address = parseaddr(value)
        try:
            addresses.check(address)
        except AddressError as exc:
            raise ValueError(f"{value!r} is not 'Name <address@domain>' or an address: {exc}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from exc
        return value

    @field_validator("local_send_time")
    @classmethod
    def _valid_send_time(cls, value: str) -> str:
        return parse_time(value).strftime("%H:%M")

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        reason = keycheck.weakness(value.get_secret_value()) if value is not None else None
        if reason:  # one signed link lets anyone test guesses offline, so a guessable key forges every link
            raise ValueError(f"is too easy to guess ({reason}); generate a random one with `newsletter secret`")
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        if isinstance(value, str):  # LOG_FORMAT=JSON and LOG_LEVEL=info mean what they say
            return value.lower() if value.lower() in ("logfmt", "json") else value.upper()
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:  # a scrape token is a password for the metrics
            raise ValueError("is shorter than 16 characters; generate one with `newsletter secret`")
        return value

    @model_validator(mode="after")
    def _port_needs_token(self) -> Settings:
        if self.metrics_port is not None and self.metrics_token is None:
            raise ValueError("NEWSLETTER_METRICS_PORT is set but NEWSLETTER_METRICS_TOKEN is not: the port answers "
                             "only with that bearer token, so set both (or neither)")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        for part in _split(value):
            try:
                ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or network such as 10.0.0.0/8; "
                                 "list them comma-separated") from None
        return value

    @field_validator("ses_region")
    @classmethod
    def _valid_region(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", value):
            raise ValueError(f"{value!r} is not an AWS region such as eu-west-1")
        return value

    @field_validator("ses_sns_topic_arns")
    @classmethod
    def _valid_topics(cls, value: str) -> str:
        for arn in _split(value):
            if not SNS_TOPIC.fullmatch(arn):
                raise ValueError(f"{arn!r} is not an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:ses-"
                                 "events; list them comma-separated")
        return value

    @field_validator("editor_emails")
    @classmethod
    def _valid_editor_emails(cls, value: str) -> str:
        for address in _split(value):
            try:
                addresses.check(address)
            except AddressError as exc:
                raise ValueError(f"{address!r} is not an address; list them comma-separated: {exc}") from exc
        return value

    @property
    def editor_addresses(self) -> tuple[str, ...]:
        """Where review-mode previews go (besides editors added with an address)."""
        return tuple(_split(self.editor_emails))

    @property
    def dkim_selector_names(self) -> tuple[str, ...]:
        """The DKIM selectors ``newsletter doctor`` looks up (``NEWSLETTER_DKIM_SELECTORS``, comma-separated)."""
        return tuple(_split(self.dkim_selectors))

    @property
    def trusted_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The proxies whose X-Forwarded-For is believed; empty means the direct peer is the client."""
        return tuple(ip_network(part, strict=False) for part in _split(self.trusted_proxies))

    @property
    def local_delivery(self) -> LocalTime | None:
        """Local delivery's send time and the publication's zone, or None when every reader gets an issue at once."""
        return LocalTime(parse_time(self.local_send_time), self.timezone) if self.delivery_mode == "local" else None

    @property
    def zone(self) -> ZoneInfo:
        """The publication's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def sender_domain(self) -> str:
        """The domain of ``from_address``: Message-IDs are minted on it."""
        return parseaddr(self.from_address)[1].rpartition("@")[2]

    def require(self, *names: str, provider: bool = False) -> None:
        """One ConfigError naming every one of ``names`` (field names) that is not set, each with how to set it;
        ``provider=True`` adds what the configured provider needs. Entry points call it before doing anything."""
        wanted = [*names, *(PROVIDER_NEEDS.get(self.provider, ()) if provider else ())]
        missing = [name for name in dict.fromkeys(wanted) if not self._is_set(name)]
        if not missing:
            return
        raise ConfigError(not_set(missing, provider=self.provider))

    def _is_set(self, name: str) -> bool:
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return bool(value.strip()) if isinstance(value, str) else value is not None

    def require_secret(self) -> str:
        """The signing secret, or a ConfigError saying how to set it."""
        self.require("secret_key")
        assert self.secret_key is not None
        return self.secret_key.get_secret_value()

    def require_api_key(self) -> str:
        """The provider's API key, or a ConfigError naming the variable."""
        if self.provider_api_key is None or not self.provider_api_key.get_secret_value():
            raise ConfigError(f"NEWSLETTER_PROVIDER_API_KEY is not set: the {self.provider} provider needs it")
        return self.provider_api_key.get_secret_value()

    @property
    def sns_topic_arns(self) -> frozenset[str]:
        """The SNS topics whose notifications the ``ses`` webhook accepts; empty means that webhook is off."""
        return frozenset(_split(self.ses_sns_topic_arns))

    def require_ses(self) -> tuple[str, str, str, str | None]:
        """Region, access key id, secret and session token for SES, or a ConfigError naming what is missing."""
        missing = [f"NEWSLETTER_SES_{name.upper()}" for name, value in (
            ("region", self.ses_region), ("access_key_id", self.ses_access_key_id),
            ("secret_access_key", self.ses_secret_access_key and self.ses_secret_access_key.get_secret_value()))
            if not value]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: the ses "
                              "provider signs every request with an IAM access key allowed ses:SendEmail in a region")
        assert self.ses_region and self.ses_access_key_id and self.ses_secret_access_key
        token = self.ses_session_token.get_secret_value() if self.ses_session_token else None
        return self.ses_region, self.ses_access_key_id, self.ses_secret_access_key.get_secret_value(), token or None

    def require_postal_address(self) -> str:
        """The sender's postal address, which every commercial email must show (CAN-SPAM)."""
        self.require("postal_address")
        return self.postal_address.strip()


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and ``.env``; a bad value raises ConfigError naming it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


def new_secret() -> str:
    """A fresh random value fit for NEWSLETTER_SECRET_KEY (it passes the strength check)."""
    return keycheck.new_secret()


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        # A check across settings (model-level) has no field: its message names the variables itself.
        lines.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}" if field else str(error["msg"]))
    return "invalid configuration:\n  " + "\n  ".join(lines)
