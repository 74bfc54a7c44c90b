"""``/healthz``, ``/readyz`` and ``/metrics`` on the real app: what a load balancer and Prometheus see."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from newsletter import migrate
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.web.health import Readiness
from tests.newsletter.web.helpers import running

TOKEN = "scrape-token-0123456789abcdef"


@contextmanager
def schema_behind(engine: Engine) -> Iterator[None]:
    """The database at an older revision, as if the code were upgraded and `db upgrade` forgotten; put back after
    (PostgreSQL's schema is shared by the run's tests)."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0006_webhooks'"))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": migrate.head()})


def test_healthz_and_readyz_answer_200_on_a_current_schema(engine: Engine, database_url: str,
                                                          make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url) as (client, _):
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert client.head("/readyz").status_code == 200


def test_readyz_answers_503_naming_the_fix_once_the_schema_is_behind(engine: Engine, database_url: str,
                                                                    make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url) as (client, _), schema_behind(engine):
        answer = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # the process itself is fine: do not restart it
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert "0006_webhooks" in answer.json()["problem"] and "newsletter db upgrade" in answer.json()["problem"]


def test_readyz_answers_503_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    gone = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'x.db'}")
    problem = Readiness(gone).problem()
    gone.dispose()
    assert problem is not None and "unreachable" in problem


def test_the_schema_is_read_once_per_ttl_not_per_probe(engine: Engine) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    now = [0.0]
    readiness = Readiness(engine, ttl=10, clock=lambda: now[0])
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for second in range(30):  # a load balancer probing every second
            now[0] = float(second)
            assert readiness.problem() is None
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    schema_reads = [s for s in statements if s.startswith("SELECT alembic_version.version_num")]
    assert len(schema_reads) == 3  # at 0, 10 and 20 seconds
    assert statements.count("SELECT 1") == 27  # every other probe is one SELECT 1 on a pooled connection


def test_a_stale_schema_is_noticed_within_the_ttl(engine: Engine) -> None:
    now = [0.0]
    readiness = Readiness(engine, ttl=10, clock=lambda: now[0])
    assert readiness.problem() is None
    with schema_behind(engine):
        now[0] = 5.0
        assert readiness.problem() is None  # within the ttl the revision is not read again
        now[0] = 11.0
        assert "newsletter db upgrade" in (readiness.problem() or "")


def test_metrics_is_404_without_a_token_setting(engine: Engine, database_url: str,
                                                make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url) as (client, _):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", headers={"Authorization": "Bearer anything-at-all-123"}).status_code == 404


def test_metrics_answer_only_the_bearer_of_the_token(engine: Engine, database_url: str,
                                                    make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url, metrics_token=TOKEN) as (client, _):
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        page = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    assert "newsletter_database_up 1.0" in page.text
    assert "# TYPE newsletter_messages_total counter" in page.text
