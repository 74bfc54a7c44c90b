"""Subscriber queries and the recipient source the core sees, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.errors import SubscriberError
from newsletter.values import Cohort
from subscribers import store
from subscribers.tokens import Signer, TokenError
from tests.conftest import TEST_SECRET_KEY

LINKS = store.Links(Signer("a-very-secret-test-key"), "https://app.example.com/", "unsubscribe@news.example.com")


def add(engine: Engine, *addresses: str, categories: tuple[str, ...] = (), free_only: bool = False) -> list[tuple[str, str]]:
    with Session(engine) as session:
        outcome = store.add_active(session, list(addresses), categories=categories, free_only=free_only)
        session.commit()
    return outcome  # type: ignore[return-value]


def test_add_normalises_dedupes_and_updates(engine: Engine) -> None:
    assert add(engine, "Ann@Example.COM", "ann@example.com", "bob@example.com") == [
        ("ann@example.com", "added"), ("bob@example.com", "added")]
    outcome = add(engine, "ann@EXAMPLE.com", categories=("Writing",))
    assert outcome[0][1] == "updated"
    assert add(engine, "ann@example.com", categories=("Writing",))[0][1] == "unchanged"



def test_an_internationalised_domain_is_stored_in_its_ascii_form(engine: Engine) -> None:
    assert store.normalise_address(" User@Bücher.Example ") == "user@xn--bcher-kva.example"
    assert store.normalise_address("üser@bücher.example") == "üser@xn--bcher-kva.example"  # needs SMTPUTF8
    assert add(engine, "user@bücher.example", "user@XN--BCHER-KVA.example") == [
        ("user@xn--bcher-kva.example", "added")]
    assert add(engine, "USER@BÜCHER.EXAMPLE")[0][1] == "unchanged"
    with Session(engine) as session:
        assert [row.email for row in store.page(session)] == ["user@xn--bcher-kva.example"]
    found = store.SubscriberRecipients(engine, LINKS).find("user@bücher.example")
    assert found is not None and found[0].address == "user@xn--bcher-kva.example"

def test_an_invalid_address_adds_nobody(engine: Engine) -> None:
    with pytest.raises(SubscriberError, match="'not-an-address' is not a valid email address"):
        add(engine, "ok@example.com", "not-an-address")
    with Session(engine) as session:
        assert store.page(session) == []


def test_cohorts_members_and_recipients(engine: Engine) -> None:
    add(engine, "a@example.com", "b@example.com")
    add(engine, "c@example.com", categories=("Design", "Writing"), free_only=True)
    directory = store.SubscriberRecipients(engine, LINKS)
    assert directory.cohorts() == [(Cohort(), 2), (Cohort(frozenset({"Design", "Writing"}), True), 1)]
    first = directory.recipient_ids(Cohort(), after=0, limit=1)
    rest = directory.recipient_ids(Cohort(), after=first[-1], limit=10)
    assert len(first) == 1 and len(rest) == 1 and rest[0] > first[0]
    recipients = directory.by_ids(first + rest)
    recipient = recipients[first[0]]
    assert recipient.unsubscribe_url.startswith("https://app.example.com/unsubscribe/")
    assert recipient.preferences_url.startswith("https://app.example.com/preferences/")
    assert recipient.unsubscribe_mailto.startswith("mailto:unsubscribe@news.example.com?subject=unsubscribe%20")
    token = recipient.unsubscribe_url.rsplit("/", 1)[1]
    assert LINKS.signer.read("unsubscribe", token) == recipient.id
    with pytest.raises(TokenError):
        LINKS.signer.read("manage", token)  # signed for one purpose only
    found = directory.find("C@example.com")
    assert found is not None and found[1] == Cohort(frozenset({"Design", "Writing"}), True)
    assert directory.find("nobody@example.com") is None


def test_categories_with_commas_are_refused(engine: Engine) -> None:
    with pytest.raises(SubscriberError, match="contains a comma"):
        add(engine, "a@example.com", categories=("Design, Writing",))


def test_a_sign_up_with_a_unicode_domain_is_stored_and_confirmed_in_ascii(engine: Engine) -> None:
    from datetime import timedelta

    from subscribers import signup

    consent = signup.Consent("127.0.0.1", "test")
    row = signup.request_subscription(engine, "Reader@Bücher.example", categories=(), free_only=False,
                                      consent=consent, resend_after=timedelta(minutes=10), secret=TEST_SECRET_KEY)
    assert row is not None and row.id is not None and row.email == "reader@xn--bcher-kva.example"
    # A link minted before addresses were stored in ASCII names the Unicode form: it still confirms.
    assert signup.confirm(engine, row.id, "reader@bücher.example", consent=consent).status == "active"
