"""Signed tokens: one salt per purpose, tamper-proof, confirm tokens expire."""

from __future__ import annotations

import pytest

from subscribers.tokens import Signer, TokenError


def test_round_trip_and_purpose_separation() -> None:
    signer = Signer("a-very-secret-test-key")
    for purpose in ("confirm", "manage", "unsubscribe"):
        assert signer.read(purpose, signer.mint(purpose, 42)) == 42  # type: ignore[arg-type]
    with pytest.raises(TokenError, match="not valid"):
        signer.read("unsubscribe", signer.mint("manage", 42))
    with pytest.raises(TokenError):
        Signer("another-secret-key-000").read("manage", signer.mint("manage", 42))
    token = signer.mint("manage", 42)
    with pytest.raises(TokenError):
        signer.read("manage", token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])


def test_confirm_tokens_expire() -> None:
    signer = Signer("a-very-secret-test-key")
    token = signer.mint("confirm", 7)
    with pytest.raises(TokenError) as caught:
        signer.read("confirm", token, max_age=-1)
    assert caught.value.expired
