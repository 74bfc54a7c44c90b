"""The shared base of the HTTP providers: one client per open(), and one failure policy for all of them.

* 429: wait as the answer says (``Retry-After``, or the service's reset header), then retry.
* 5xx and connection errors (the request never left, or the service failed): capped exponential backoff with
  jitter, up to ``max_retries`` times, then ``ProviderUnavailable``.
* 401 / 403: ``ProviderAuthError`` naming the setting to fix; nothing is retried.
* A timeout or dropped connection *after* the request went out is ambiguous: the service may have accepted
  it. A provider with an idempotency key retries with the same key; the others raise ``ProviderAmbiguous``
  and dispatch marks the batch ``failed`` rather than risk sending it twice.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from newsletter.errors import ProviderAmbiguous, ProviderAuthError, ProviderUnavailable
from newsletter.providers.base import Provider

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError)
_AFTER = re.compile(r"try again after (.+?)(?:$|\")", re.IGNORECASE)


class HttpProvider(Provider):
    """An HTTP mail service. Subclasses set ``default_base_url``, ``auth`` and build the requests."""

    default_base_url: ClassVar[str] = ""
    key_setting: ClassVar[str] = "NEWSLETTER_PROVIDER_API_KEY"

    def __init__(self, *, api_key: str, base_url: str | None = None, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, max_retries: int = 5, max_wait: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep, jitter: Callable[[], float] = random.random) -> None:
        self.api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.transport = transport
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.sleep = sleep
        self.jitter = jitter
        self._client: httpx.Client | None = None

    def auth(self) -> Mapping[str, str] | httpx.Auth:
        """Headers (or an httpx auth) that authenticate every request."""
        raise NotImplementedError

    def open(self) -> None:
        """Start one pooled client for all batches until close()."""
        if self._client is None:
            auth = self.auth()
            headers = dict(auth) if isinstance(auth, Mapping) else {}
            self._client = httpx.Client(base_url=self.base_url, transport=self.transport, timeout=self.timeout,
                                        headers=headers, auth=None if isinstance(auth, Mapping) else auth)

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST with the failure policy; returns the first answer that is neither 429, 5xx, 401 nor 403."""
        return self._call("POST", path, kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET with the failure policy; a read changes nothing, so one without an answer is simply retried."""
        return self._call("GET", path, kwargs)

    def _call(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        self.open()
        assert self._client is not None
        attempt = 0
        while True:
            failure, delay = self._attempt(method, path, kwargs)
            if isinstance(failure, httpx.Response):
                return failure
            attempt += 1
            if attempt > self.max_retries:
                raise ProviderUnavailable(f"{self.name}: gave up after {attempt} attempts: {failure}")
            self.sleep(delay if delay is not None else self.backoff(attempt))

    def _attempt(self, method: str, path: str,
                 kwargs: dict[str, Any]) -> tuple[httpx.Response | str, float | None]:
        """One request: the final response, or why to retry and how long the service asked us to wait."""
        assert self._client is not None
        try:
            response = self._client.request(method, path, **kwargs)
        except _NOT_SENT as exc:
            return f"cannot reach {self.base_url}: {exc!r}", None
        except _MAYBE_SENT as exc:
            if self.idempotent or method == "GET":
                return f"no answer from {self.base_url} ({exc!r}); retrying with the same idempotency key", None
            raise ProviderAmbiguous(f"{self.name}: the request went out but no answer came ({exc!r}); "
                                    "the service may have accepted the batch") from exc
        status = response.status_code
        if self.refuses_credentials(response):
            raise ProviderAuthError(f"{self.name} refused the credentials (HTTP {status}: {_brief(response)}); "
                                    f"check {self.key_setting}")
        if self.throttles(response):
            return f"rate limited: {_brief(response)}", self.wait_for(response)
        if status >= 500:
            return f"HTTP {status}: {_brief(response)}", None
        return response, None

    def refuses_credentials(self, response: httpx.Response) -> bool:
        """Whether the answer says our credentials are wrong: 401 or 403 (SES also names it in 400s)."""
        return response.status_code in (401, 403)

    def throttles(self, response: httpx.Response) -> bool:
        """Whether the answer asks us to slow down: 429 (SES also says it in some 400s)."""
        return response.status_code == 429

    def backoff(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter: 0.5 s, 1 s, 2 s … at most 30 s."""
        return float(min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + self.jitter() / 2))

    def wait_for(self, response: httpx.Response) -> float:
        """How long a 429 asks us to wait; ProviderUnavailable when it is longer than ``max_wait``."""
        wait = _retry_after(response)
        if wait is None:
            wait = self.backoff(1)
        if wait > self.max_wait:
            raise ProviderUnavailable(f"{self.name} is rate limiting for {wait:.0f} s ({_brief(response)}); "
                                      "run the send again later to resume")
        return wait


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from Retry-After, the reset headers, or Mailgun's 'try again after <date>'."""
    headers = response.headers
    value = headers.get("retry-after")
    if value:
        return _seconds_or_date(value)
    if "ratelimit-reset" in headers:  # Resend: seconds until the window resets
        return _number(headers["ratelimit-reset"])
    if "x-ratelimit-reset" in headers:  # SendGrid: epoch seconds of the reset
        epoch = _number(headers["x-ratelimit-reset"])
        return None if epoch is None else max(0.0, epoch - time.time())
    match = _AFTER.search(response.text)
    return _seconds_or_date(match[1]) if match else None


def _seconds_or_date(value: str) -> float | None:
    number = _number(value)
    if number is not None:
        return max(0.0, number)
    try:
        return max(0.0, parsedate_to_datetime(value.strip()).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _brief(response: httpx.Response) -> str:
    """The service's own words about an error, kept short, never the request (which holds addresses)."""
    return " ".join(response.text.split())[:300] or response.reason_phrase
