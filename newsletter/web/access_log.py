"""uvicorn's access log without subscriber tokens: a token in a logged path becomes ``[token]``.

A token in a subscriber link is the only credential for that reader's preferences and unsubscribe, so a log
line must never hold one. Paths of the tokened routes lose the segment after the route's name; any other
segment or query value shaped like a signed token (two or three base64url parts joined by dots, 20 characters
or more) is redacted too, so a tokened route added later is covered before anyone remembers to list it here.

Lines are written by ``newsletter.logs.Formatter`` (``NEWSLETTER_LOG_FORMAT``: logfmt or JSON), and a probe that
answered well (``/healthz``, ``/readyz``, ``/metrics`` with a status below 400) writes none: a load balancer
asking every second would otherwise fill the log with nothing.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import uvicorn.config

TOKENED = ("confirm", "preferences", "unsubscribe", "resubscribe")
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
REDACTED = "[token]"
_ROUTE = re.compile(rf"(/(?:{'|'.join(TOKENED)})/)[^/?#]+")
_SIGNED = re.compile(r"(?<=[/=])[\w-]{2,}(?:\.[\w-]{2,}){1,2}(?=[/?#&]|$)")


def redact(path: str) -> str:
    """``path`` (with its query) with every subscriber token replaced by ``[token]``."""
    return _SIGNED.sub(lambda m: REDACTED if len(m[0]) >= 20 else m[0], _ROUTE.sub(rf"\1{REDACTED}", path))


class RedactTokens(logging.Filter):
    """Rewrites the path of uvicorn's access records (``client, method, path, version, status``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's path in place; never drops a record."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


class QuietProbes(logging.Filter):
    """Drops the access records of health probes and scrapes that succeeded; failures are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a probe path answered below 400."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 5 and isinstance(args[2], str) and isinstance(args[4], int):
            return not (args[2].partition("?")[0] in PROBES and args[4] < 400)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration: one line per event in the publisher's format, the access logger
    redacting tokens and leaving out successful probes."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"] = {name: {"()": "newsletter.logs.Formatter"} for name in config["formatters"]}
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    config["filters"]["quiet_probes"] = {"()": f"{__name__}.QuietProbes"}
    config["loggers"]["uvicorn.access"]["filters"] = ["quiet_probes", "redact_tokens"]
    return config
