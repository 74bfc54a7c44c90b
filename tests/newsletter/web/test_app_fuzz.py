"""Fuzzing the web app (both databases): random form fields, paths and methods never get a server error.

Each test builds one app and one client, then lets Hypothesis send a bounded, seeded run of requests at it. The
client re-raises any exception the app lets out, so a failure shows the traceback and the request that caused it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import editors
from newsletter.config import Settings
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from subscribers.models import Subscriber
from subscribers.tokens import Signer
from tests.newsletter.test_issues import build, seed

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PASSWORD = "correct horse battery"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Any text a browser or a script could put in a form: every code point but lone surrogates (not encodable), with
# the control characters that databases treat specially (PostgreSQL refuses NUL in text) drawn often.
texts = st.text(st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from("\x00\x1f\x7f\u2028")),
                max_size=40)
# Ids near the integer limits of SQLite and PostgreSQL, and far past them.
numbers = st.one_of(st.integers(min_value=-(10**30), max_value=10**30),
                    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**23])).map(str)
# No "cancel": it is final, and every later edit would be refused before its fields were read.
values = st.one_of(texts, numbers, st.sampled_from(["", "0", "-1", "13", "on", "One-Click", "approve", "schedule",
                                                     "pause", "resume", "up", "pin", "drop", "é", "\x00",
                                                     "a\x00b", "all0@example.com", "2099-01-05T07:00"]))
# The fields each form reads, any of them present with any value, and a stray field or two.
FIELDS = {
    "/subscribe": ("email", "website", "category", "free_only"), "/confirm/{}": (),
    "/preferences/{}": ("email", "category", "free_only", "pause"), "/unsubscribe/{}": ("List-Unsubscribe",),
    "/resubscribe/{}": (), "/editor/login": ("name", "password"), "/editor/logout": (),
    "/editor/issues/{}/edit": ("note", "subject", "preheader", "cohort"),
    "/editor/issues/{}/lineup": ("slug", "move", "cohort"), "/editor/issues/{}/test": ("addresses", "cohort"),
    "/editor/issues/{}/status": ("action", "send_at", "cohort"),
}


def fields(route: str) -> st.SearchStrategy[dict[str, str]]:
    """A form for ``route``: its own fields, each maybe present with any value, plus random extra fields."""
    own = st.fixed_dictionaries({}, optional={name: values for name in FIELDS[route]})
    return st.builds(lambda a, b: b | a, own, st.dictionaries(texts, values, max_size=2))


def with_csrf(valid: str) -> st.SearchStrategy[str | None]:
    """The form's own CSRF token, none, or any text (non-ASCII included)."""
    return st.one_of(st.just(valid), st.just(valid), st.none(), texts, st.just(valid + "é"))


class Fuzzed:
    """An app on a seeded database with one built issue, its client, and valid tokens to mix in."""

    def __init__(self, client: TestClient, signer: Signer, subscriber_id: int) -> None:
        self.client, self.signer, self.subscriber_id = client, signer, subscriber_id
        self.session = ""

    def as_editor(self, signed_in: bool) -> None:
        """Carry the editor's session cookie on the next requests, or none (sign-in once: attempts are limited)."""
        if signed_in and not self.session:
            answer = self.client.post("/editor/login", data={"name": "ann", "password": PASSWORD,
                                                             "csrf": self.csrf("/editor/login")})
            assert answer.status_code == 200, answer.text
            self.session = self.client.cookies["editor_session"]
        self.client.cookies.delete("editor_session")
        if signed_in:
            self.client.cookies.set("editor_session", self.session)

    def csrf(self, url: str) -> str:
        """Load ``url`` (which sets the CSRF cookie) and read its form's token."""
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', self.client.get(url).text)
        assert match
        return match[1]

    def tokens(self) -> st.SearchStrategy[str]:
        """Valid tokens of every purpose, and random ones."""
        minted = [self.signer.mint(p, self.subscriber_id) for p in ("manage", "unsubscribe")]
        return st.one_of(st.sampled_from([*minted, self.signer.mint_confirm(self.subscriber_id, "all0@example.com")]),
                         texts.filter(bool).map(lambda t: quote(t, safe="")))

    def send(self, method: str, path: str, **request: Any) -> int:
        """Send one request; the status, asserted to be no server error."""
        answer = self.client.request(method, path, follow_redirects=False, **request)
        assert answer.status_code < 500, (method, path, request, answer.text[:500])
        return answer.status_code


@pytest.fixture
def fuzzed(engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> Iterator[Fuzzed]:
    build(engine, seed(engine))
    editors.add_editor(engine, "ann", PASSWORD, email="ann@example.com")
    config = make_settings(database_url=database_url)
    with Session(engine) as session:
        reader = session.exec(select(Subscriber).where(Subscriber.email == "all0@example.com")).one()
    assert reader.id is not None
    app = create_app(config, provider=MemoryProvider())
    with TestClient(app, base_url="https://testserver") as client:
        yield Fuzzed(client, Signer(config.require_secret()), reader.id)


def test_subscriber_forms_with_random_fields(fuzzed: Fuzzed) -> None:
    valid = fuzzed.csrf("/subscribe")

    routes = st.sampled_from(["/subscribe", "/confirm/{}", "/preferences/{}", "/unsubscribe/{}", "/resubscribe/{}"])

    @FUZZ
    @given(route_form=routes.flatmap(lambda r: st.tuples(st.just(r), fields(r))), token=fuzzed.tokens(),
           csrf=with_csrf(valid), multipart=st.booleans())
    def check(route_form: tuple[str, dict[str, str]], token: str, csrf: str | None, multipart: bool) -> None:
        route, form = route_form
        if csrf is not None:
            form = form | {"csrf": csrf}
        path = route.format(token)
        if multipart:
            fuzzed.send("POST", path, files={name: (None, value) for name, value in form.items()})
        else:
            fuzzed.send("POST", path, data=form)
        fuzzed.send("GET", path)

    check()


def test_raw_bodies_of_any_shape(fuzzed: Fuzzed) -> None:
    @FUZZ
    @given(path=st.sampled_from(["/subscribe", "/editor/login", f"/unsubscribe/{fuzzed.signer.mint('unsubscribe', 1)}",
                                 "/preferences/x.y"]),
           body=st.binary(max_size=200),
           kind=st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
                                 "multipart/form-data", "text/plain", "application/json"]))
    def check(path: str, body: bytes, kind: str) -> None:
        fuzzed.send("POST", path, content=body, headers={"content-type": kind})

    check()


def test_random_paths_and_methods(fuzzed: Fuzzed) -> None:
    segments = st.one_of(texts.map(lambda t: quote(t, safe="")), numbers)
    prefixes = st.sampled_from(["", "/archive", "/editor/issues", "/confirm", "/preferences", "/unsubscribe",
                                "/resubscribe", "/webhooks", "/editor", "/subscribe"])

    @FUZZ
    @given(method=st.sampled_from(METHODS), prefix=prefixes, rest=st.lists(segments, max_size=3),
           signed_in=st.booleans())
    def check(method: str, prefix: str, rest: list[str], signed_in: bool) -> None:
        fuzzed.as_editor(signed_in)
        fuzzed.send(method, "/".join([prefix, *rest]) or "/")

    check()


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "signed-out"])
def test_desk_forms_with_random_fields(fuzzed: Fuzzed, signed_in: bool) -> None:
    valid = fuzzed.csrf("/editor/login")

    routes = st.sampled_from(["/editor/login", "/editor/logout", "/editor/issues/{}/edit", "/editor/issues/{}/lineup",
                              "/editor/issues/{}/test", "/editor/issues/{}/status"])

    # Issue 1 exists and stays editable; other numbers are the business of test_random_paths_and_methods.
    @FUZZ
    @given(route_form=routes.flatmap(lambda r: st.tuples(st.just(r), fields(r))), csrf=with_csrf(valid),
           cohort=st.one_of(st.sampled_from(["all", "Design"]), texts))
    def check(route_form: tuple[str, dict[str, str]], csrf: str | None, cohort: str) -> None:
        route, form = route_form
        fuzzed.as_editor(signed_in)  # again each time: a fuzzed sign-out or sign-in must not carry over
        if csrf is not None:
            form = form | {"csrf": csrf}
        fuzzed.send("POST", route.format(1), data=form)
        fuzzed.send("GET", "/editor/issues/1", params={"cohort": cohort, "done": form.get("action", "")})
        fuzzed.send("GET", "/editor/issues/1/preview", params={"cohort": cohort})

    check()


def test_webhook_signatures_of_any_text(engine: Engine, database_url: str,
                                        make_settings: Callable[..., Settings]) -> None:
    import json
    import time

    config = make_settings(database_url=database_url, mailgun_webhook_signing_key="mailgun-signing-key",
                           resend_webhook_secret="whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    with TestClient(create_app(config, provider=MemoryProvider())) as client:
        @FUZZ
        @given(signature=texts, token=texts)
        def check(signature: str, token: str) -> None:
            now = str(int(time.time()))
            body = {"signature": {"timestamp": now, "token": token, "signature": signature}, "event-data": {}}
            mailgun = client.post("/webhooks/mailgun", content=json.dumps(body))
            assert mailgun.status_code == 401, mailgun.text
            resend = client.post("/webhooks/resend", content=b"{}", headers={
                "svix-id": "msg_1", "svix-timestamp": now,
                "svix-signature": f"v1,{signature}".encode("utf-8", "replace")})
            assert resend.status_code == 401, resend.text

        check()
