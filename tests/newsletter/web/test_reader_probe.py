"""``newsletter doctor``'s dry-run one-click token: answered 200 without redirect, changing nothing; both databases."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.web.app import create_app
from subscribers.models import Subscriber
from subscribers.tokens import Signer, TokenError
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.test_issues import seed


def statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {row.email: row.status for row in session.exec(select(Subscriber))}


def test_the_probe_is_answered_like_a_one_click_and_changes_nothing(engine: Engine, database_url: str,
                                                                   make_settings: Callable[..., Settings]) -> None:
    seed(engine)
    before = statuses(engine)
    probe = Signer(TEST_SECRET_KEY).mint_probe()
    app = create_app(make_settings(database_url=database_url, secret_key=TEST_SECRET_KEY))
    with TestClient(app) as client:
        answer = client.post(f"/unsubscribe/{probe}", data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
        assert answer.status_code == 200 and "unsubscribed" in answer.text.lower()
        other_key = Signer("another-key-entirely-9f8e7d6c5b4a3f2e1d0c").mint_probe()
        assert client.post(f"/unsubscribe/{other_key}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert statuses(engine) == before


def test_a_probe_is_no_subscribers_unsubscribe_token() -> None:
    signer = Signer(TEST_SECRET_KEY)
    probe = signer.mint_probe()
    assert signer.is_probe(probe) and not signer.is_probe(signer.mint("unsubscribe", 0))
    with pytest.raises(TokenError):
        signer.read("unsubscribe", probe)
