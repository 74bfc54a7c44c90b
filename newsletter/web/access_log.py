"""uvicorn's access log without subscriber tokens: a token in a logged path becomes ``[token]``.

A token in a subscriber link is the only credential for that reader's preferences and unsubscribe, so a log
line must never hold one. Paths of the tokened routes lose the segment after the route's name; any other
segment or query value shaped like a signed token (two or three base64url parts joined by dots, 20 characters
or more) is redacted too, so a tokened route added later is covered before anyone remembers to list it here.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import uvicorn.config

TOKENED = ("confirm", "preferences", "unsubscribe", "resubscribe")
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


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with the access logger redacting tokens."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_tokens"]
    return config
