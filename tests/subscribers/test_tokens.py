"""Signed tokens: one salt per purpose, tamper-proof, confirm tokens expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer

from newsletter.clock import ManualClock
from subscribers.tokens import Purpose, Signer, TokenError
from tests.conftest import TEST_SECRET_KEY


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
    clock = ManualClock(datetime.now(UTC))
    signer = Signer("a-very-secret-test-key", clock=clock)
    token = signer.mint("confirm", 7)
    clock.advance(timedelta(days=7, seconds=1))
    with pytest.raises(TokenError) as caught:
        signer.read("confirm", token, max_age=7 * 86400)
    assert caught.value.expired


def test_minted_tokens_are_exactly_what_itsdangerous_makes() -> None:
    from itsdangerous import URLSafeSerializer

    signer = Signer("a-very-secret-test-key")
    for purpose in ("manage", "unsubscribe"):
        reference = URLSafeSerializer("a-very-secret-test-key", salt=f"newsletter.{purpose}")
        for subscriber_id in (0, 1, 42, 99_999, 10**12):
            assert signer.mint(purpose, subscriber_id) == reference.dumps(subscriber_id)  # type: ignore[arg-type]


def test_a_voter_token_is_bound_to_its_reader_and_issue() -> None:
    signer = Signer(TEST_SECRET_KEY)
    token = signer.mint_voter(42, 7)
    assert signer.read_voter(token) == (42, 7)
    # The fast mint writes exactly what itsdangerous's serializer would.
    assert token == URLSafeSerializer(TEST_SECRET_KEY, salt="newsletter.voter").dumps([42, 7])


@pytest.mark.parametrize("purpose", ["manage", "unsubscribe", "confirm"])
def test_a_token_of_another_purpose_is_no_voter_token(purpose: Purpose) -> None:
    signer = Signer(TEST_SECRET_KEY)
    with pytest.raises(TokenError):
        signer.read_voter(signer.mint(purpose, 42))


def test_a_tampered_voter_token_is_refused() -> None:
    signer = Signer(TEST_SECRET_KEY)
    mac = signer.mint_voter(42, 7).split(".")[1]
    forged = signer.mint_voter(43, 7).split(".")[0]
    with pytest.raises(TokenError):
        signer.read_voter(f"{forged}.{mac}")
    with pytest.raises(TokenError):
        signer.read_voter(signer.mint("voter", 42))  # a voter-salted token that is not bound to an issue
