"""One log line per event: ``key=value`` fields (logfmt) by default, JSON with ``NEWSLETTER_LOG_FORMAT=json``.

Every entry point calls :func:`configure` once with its settings (every CLI command, through
``cli_support.load_settings``; the scheduler's ``main``; the web app factory). A line carries ``time``,
``level``, ``logger`` and ``msg``, then any ``extra={...}`` fields of the call, then ``exc`` (a traceback, on the
same line). Whatever a line holds is scrubbed on the way out, so a message that quotes a service's answer or a
database error cannot leak:

- an email address becomes ``addr:<hash>`` (a keyed hash, the same for one address within one deployment, so
  lines about one reader can still be found together with :func:`hashed`);
- a subscriber link's token becomes ``[token]``, a bearer credential or ``key=…`` / ``password=…`` value
  ``[redacted]``, the password in a database URL ``***``.

Code should still log ids and hashes, never addresses: the scrubbing is the safety net, not the method.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from newsletter.config import Settings

Format = Literal["logfmt", "json"]
# Attributes every LogRecord has: whatever else a record carries came from ``extra=`` and becomes a field.
# uvicorn's ``color_message`` is its message again with terminal colours: never a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName",
                                                                               "color_message"}
_ADDRESS = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# A signed link token: two or three base64url parts, the last (the signature) at least 20 characters long.
_TOKEN = re.compile(r"(?<![\w.-])[\w-]{2,}(?:\.[\w-]{2,})?\.[\w-]{20,}(?![\w.-])")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+")
_NAMED_SECRET = re.compile(r"(?i)\b([\w-]*(?:api[_-]?key|secret|password|token))(=)(?!\[)[^\s,;&\"']+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# A line per HTTP request, job run or schema check (each /readyz revision read) would drown the events.
_QUIET = ("httpx", "httpcore", "apscheduler.executors", "apscheduler.scheduler", "alembic.runtime.migration")


class _State:
    """What :func:`configure` set: the output format and the key addresses are hashed with."""

    format: Format = "logfmt"
    key: bytes = b"newsletter-logs"


def hashed(address: str) -> str:
    """``addr:<12 hex>``: a keyed hash of the address (case-folded), to log in place of the address."""
    digest = hmac.new(_State.key, address.strip().lower().encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"addr:{digest.hexdigest()[:12]}"


def scrub(text: str) -> str:
    """``text`` with addresses hashed and tokens, credentials and URL passwords taken out."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _BEARER.sub(lambda m: f"{m[1]} [redacted]", text)
    text = _NAMED_SECRET.sub(lambda m: f"{m[1]}{m[2]}[redacted]", text)
    text = _TOKEN.sub("[token]", text)
    return _ADDRESS.sub(lambda m: hashed(m[0]), text)


class Formatter(logging.Formatter):
    """Renders a record as one scrubbed line, logfmt or JSON (``fmt`` None: as :func:`configure` chose)."""

    def __init__(self, fmt: Format | None = None, *_args: Any, **_kwargs: Any) -> None:
        super().__init__()
        self.choice = fmt

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line."""
        fields = fields_of(record)
        if (self.choice or _State.format) == "json":
            return json.dumps(fields, ensure_ascii=False, default=str)
        return " ".join(f"{key}={_logfmt(value)}" for key, value in fields.items())


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's fields in order: time, level, logger, msg, its extras, exc; every text scrubbed."""
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(), "logger": record.name}
    fields.update(_access(record) if record.name == "uvicorn.access" else {"msg": scrub(record.getMessage())})
    for key, value in vars(record).items():
        if key not in _STANDARD and key not in fields and not key.startswith("_"):
            fields[key] = scrub(value) if isinstance(value, str) else value
    if record.exc_info and record.exc_info[0] is not None:
        fields["exc"] = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
    return fields


def _access(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line (``client, method, path, version, status``) as fields of a ``request`` event."""
    args = record.args
    if isinstance(args, tuple) and len(args) == 5:
        client, method, path, version, status = args
        return {"msg": "request", "client": client, "method": method, "path": scrub(str(path)), "http": version,
                "status": status}
    return {"msg": scrub(record.getMessage())}


def _logfmt(value: Any) -> str:
    """A logfmt value: bare when it can be, else quoted with ``"``, ``\\`` and line breaks escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' ="\\\n\r\t'):
        return text
    for plain, escape in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        text = text.replace(plain, escape)
    return f'"{text}"'


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs, told apart from anyone else's so a second call replaces it.

    Without a stream of its own it writes to whatever ``sys.stderr`` is when a record comes, not the one it was
    made with: a thread still logging after the stream it started with was closed (a test's capture) loses nothing.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream or sys.stderr)
        self._own = stream

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the handler's stream, or to the current standard error."""
        if self._own is None:
            self.stream = sys.stderr
        super().emit(record)


def configure(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (standard error) as one line in ``NEWSLETTER_LOG_FORMAT``, at
    ``NEWSLETTER_LOG_LEVEL``; idempotent. Handlers others added (pytest's, a service manager's) stay."""
    _State.format = settings.log_format
    if settings.secret_key is not None:  # a keyed hash: nobody without the key can test addresses against a log
        _State.key = hmac.new(settings.secret_key.get_secret_value().encode(), b"log-address", hashlib.sha256).digest()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler) or type(handler) is logging.StreamHandler:  # ours, or basicConfig's
            root.removeHandler(handler)
    handler = _Handler(stream)
    handler.setFormatter(Formatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
