"""Signed tokens for subscriber links, one salt per purpose so a link minted for one can never do another."""

from __future__ import annotations

from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

Purpose = Literal["confirm", "manage", "unsubscribe"]
PURPOSES: tuple[Purpose, ...] = ("confirm", "manage", "unsubscribe")


class TokenError(ValueError):
    """A token is tampered with, minted for another purpose, or expired (``expired`` says which)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class Signer:
    """Mints and reads subscriber tokens with the app's secret key."""

    def __init__(self, secret: str) -> None:
        self._plain = {p: URLSafeSerializer(secret, salt=f"newsletter.{p}") for p in PURPOSES}
        self._timed = {p: URLSafeTimedSerializer(secret, salt=f"newsletter.{p}") for p in PURPOSES}

    def mint(self, purpose: Purpose, subscriber_id: int) -> str:
        """A token for ``purpose``; confirm tokens carry a timestamp so they can expire."""
        serializer = self._timed[purpose] if purpose == "confirm" else self._plain[purpose]
        token: str = serializer.dumps(subscriber_id)
        return token

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
