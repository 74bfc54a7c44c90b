"""What the checks are handed: settings, the process's wiring, a DNS resolver, HTTP transports and the clock."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import dns.resolver
import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from newsletter import migrate
from newsletter.clock import Clock
from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.wiring import Wiring


@dataclass(frozen=True)
class Context:
    """One doctor run's collaborators. ``transport`` (tests) replaces the network for our own URLs, and
    ``provider_transport`` for the provider's API (``NEWSLETTER_PROVIDER_BASE_URL`` points it at a local server)."""

    wiring: Wiring
    resolver: dns.resolver.Resolver
    transport: httpx.BaseTransport | None = None
    provider_transport: httpx.BaseTransport | None = None
    timeout: float = 10.0

    @property
    def settings(self) -> Settings:
        """The settings being checked."""
        return self.wiring.settings

    @property
    def clock(self) -> Clock:
        """The wiring's clock."""
        return self.wiring.clock

    def database_problem(self) -> str | None:
        """Why the database's tables cannot be read (no SQLite file, no answer, an old schema); None if they can."""
        missing = missing_sqlite_file(self.settings.database_url)
        if missing:
            return f"no SQLite database at {missing}"
        try:
            state = migrate.state(self.wiring.engine)
        except SQLAlchemyError:
            return "the database does not answer"
        return None if state == "current" else "the schema is not current"


def missing_sqlite_file(url: str) -> str | None:
    """The path of a file-backed SQLite database that does not exist (connecting would create it empty)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return None if Path(parsed.database).exists() else parsed.database


def resolver_for(nameserver: str | None = None, *, timeout: float = 5.0) -> dns.resolver.Resolver:
    """The system's resolver, or one asking only ``host[:port]`` (an authoritative server, or a test's)."""
    if nameserver is None:
        resolver = dns.resolver.Resolver()
    else:
        host, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 else (nameserver, "", "")
        resolver = dns.resolver.Resolver(configure=False)
        try:
            ip_address(host.strip("[]"))
            resolver.nameservers = [host.strip("[]")]
            resolver.port = int(port) if port else 53
        except ValueError:
            raise ConfigError(f"--nameserver {nameserver!r}: give an IP address, optionally with :port "
                              "(e.g. 192.0.2.53 or 127.0.0.1:5353)") from None
    resolver.lifetime = timeout
    return resolver
