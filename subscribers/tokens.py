"""Signed tokens for subscriber links, one salt per purpose so a link minted for one can never do another.

Confirm tokens carry a timestamp; their age is read from the signer's ``Clock`` (``newsletter.clock``), so a
test moves a ``ManualClock`` instead of forging old timestamps.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import zlib
from typing import Any, Literal

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from newsletter.clock import SYSTEM, Clock

Purpose = Literal["confirm", "manage", "unsubscribe", "probe", "voter"]
PURPOSES: tuple[Purpose, ...] = ("confirm", "manage", "unsubscribe", "probe", "voter")
# ``newsletter doctor``'s dry run of one-click unsubscribe: signed with its own salt for an id no subscriber has
# (ids start at 1), so the route can answer it as it answers a real one while changing nothing.
PROBE_ID = 0


class TokenError(ValueError):
    """A token is tampered with, minted for another purpose, or expired (``expired`` says which)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class _ClockedSigner(TimestampSigner):
    """itsdangerous's timestamp signer, telling the time by a ``Clock`` (both when minting and when checking age)."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        """Seconds since the epoch by the clock."""
        return int(self._clock.now().timestamp())


class Signer:
    """Mints and reads subscriber tokens with the app's secret key; confirm tokens age by ``clock``."""

    def __init__(self, secret: str, *, clock: Clock = SYSTEM) -> None:
        self._plain = {p: URLSafeSerializer(secret, salt=f"newsletter.{p}") for p in PURPOSES}
        self._timed = {p: URLSafeTimedSerializer(secret, salt=f"newsletter.{p}", signer=_ClockedSigner,
                                                 signer_kwargs={"clock": clock}) for p in PURPOSES}
        # Every digest carries two signed links per reader. itsdangerous derives the key and builds a new HMAC
        # on each dumps(); keying one HMAC per purpose and copying it mints the same token ~5x faster.
        self._keyed = {p: hmac.new(s.make_signer(s.salt).derive_key(), digestmod=hashlib.sha1)
                       for p, s in self._plain.items()}

    def mint(self, purpose: Purpose, subscriber_id: int) -> str:
        """A token for ``purpose``; confirm tokens carry a timestamp so they can expire."""
        if purpose == "confirm":
            token: str = self._timed[purpose].dumps(subscriber_id)
            return token
        payload = _payload(str(int(subscriber_id)).encode())
        mac = self._keyed[purpose].copy()
        mac.update(payload)
        return f"{payload.decode()}.{_b64(mac.digest()).decode()}"

    def mint_confirm(self, subscriber_id: int, address: str) -> str:
        """A confirmation token bound to the address it confirms (a sign-up, or an address change)."""
        token: str = self._timed["confirm"].dumps([subscriber_id, address])
        return token

    def read_confirm(self, token: str, *, max_age: int) -> tuple[int, str]:
        """(subscriber id, address) from a confirmation token younger than ``max_age`` seconds."""
        try:
            value = self._timed["confirm"].loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise TokenError("this link has expired", expired=True) from exc
        except BadSignature as exc:
            raise TokenError("this link is not valid") from exc
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
                and isinstance(value[1], str)):
            raise TokenError("this link is not valid")
        return value[0], value[1]

    def mint_voter(self, subscriber_id: int, issue_number: int) -> str:
        """A reader's one per-issue token, bound to subscriber and issue: their vote links carry it (and, when
        readers are tracked, their click links). Minted per recipient on the send's hot path, so by the keyed HMAC
        (the same bytes ``URLSafeSerializer.dumps([subscriber_id, issue_number])`` gives)."""
        payload = _payload(f"[{int(subscriber_id)},{int(issue_number)}]".encode())
        mac = self._keyed["voter"].copy()
        mac.update(payload)
        return f"{payload.decode()}.{_b64(mac.digest()).decode()}"

    def read_voter(self, token: str) -> tuple[int, int]:
        """(subscriber id, issue number) from a voter token; TokenError if it is not a valid one."""
        try:
            value = self._plain["voter"].loads(token)
        except BadSignature as exc:
            raise TokenError("this link is not valid") from exc
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
            raise TokenError("this link is not valid")
        return value[0], value[1]

    def mint_probe(self) -> str:
        """A dry-run unsubscribe token: ``POST /unsubscribe/{it}`` answers 200 and changes nothing."""
        return self.mint("probe", PROBE_ID)

    def is_probe(self, token: str) -> bool:
        """Whether ``token`` is this key's dry-run token (and not a subscriber's)."""
        # The probe token is always the same string for a key: comparing with it is cheaper than verifying a
        # signature, and every one-click unsubscribe asks.
        return hmac.compare_digest(token.encode("utf-8", "surrogateescape"), self._probe)

    @functools.cached_property
    def _probe(self) -> bytes:
        return self.mint_probe().encode()

    def read(self, purpose: Purpose, token: str, *, max_age: int | None = None) -> int:
        """The subscriber id in ``token``; TokenError if it is not a valid ``purpose`` token."""
        try:
            if purpose == "confirm":
                value = self._timed[purpose].loads(token, max_age=max_age)
            else:
                value = self._plain[purpose].loads(token)
        except SignatureExpired as exc:
            raise TokenError("this link has expired", expired=True) from exc
        except BadSignature as exc:
            raise TokenError("this link is not valid") from exc
        if not isinstance(value, int):
            raise TokenError("this link is not valid")
        return value


def _payload(data: bytes) -> bytes:
    """itsdangerous's URL-safe payload: zlib-compressed (marked by a leading '.') only when that is shorter."""
    # zlib's header and checksum alone are 6 bytes: short payloads (every realistic id) never compress.
    compressed = zlib.compress(data) if len(data) > 10 else data
    if len(compressed) < len(data) - 1:
        return b"." + _b64(compressed)
    return _b64(data)


def _b64(data: bytes) -> bytes:
    """itsdangerous's base64: URL-safe, no padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")
