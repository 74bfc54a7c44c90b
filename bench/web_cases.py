"""The reader and provider cases of ``bench/web.py``: how each request is made and what the database must hold after.

* ``unsubscribe``: RFC 8058 one-click ``POST /unsubscribe/{token}`` (``List-Unsubscribe=One-Click``), each request
  another reader's own link, from the last seeded reader backwards; afterwards exactly that many readers are
  unsubscribed by the ``one-click`` channel.
* ``signup``: ``POST /subscribe`` with the form's CSRF token, each a new address; afterwards exactly that many
  pending sign-ups.
* ``preferences``: ``GET /preferences/{manage token}`` over the readers (the form page; changes nothing).
* ``archive``: ``GET /archive/{n}`` of the seeded issue.
* ``webhook``: ``POST /webhooks/sendgrid``, SendGrid's Event Webhook wire format: a JSON array of 100 ``delivered``
  events naming our deliveries, signed with ECDSA P-256 over timestamp + body as SendGrid signs it; afterwards
  the table of seen events holds every event sent (none lost) and each answer counted all 100 applied.
* ``ballot``: ``GET /vote/...`` pages (the button; changes nothing), each another reader's link.
* ``vote``: the button's ``POST`` with the page's CSRF token and cookie, each a reader of the first seeded ones;
  afterwards the vote table holds exactly one vote per answer.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.web_client import Client, Response

EVENTS_PER_BATCH = 100
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(SENDGRID_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
VOTE_LINK = re.compile(r"/vote/([a-z0-9-]+)/([a-z0-9-]+)/(ship|skip)/")


@dataclass
class World:
    """What the cases share: the server, the database, the seeded issue, its readers and their deliveries."""

    base: str
    database_url: str
    number: int = 0
    links: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # click tokens (only with --track)
    readers: list[int] = field(default_factory=list)  # subscriber ids of the seeded readers, in order
    deliveries: list[int] = field(default_factory=list)
    votes: list[tuple[str, str, str]] = field(default_factory=list)  # (comparison, tool, choice) in the email
    signer: Any = None
    csrf: str = ""  # the forms' token, bound to the client's csrf cookie
    run: str = field(default_factory=lambda: f"{time.time_ns():x}")  # makes sign-up addresses and event ids new


Send = Callable[[Client, World, int], Awaitable[Response]]


@dataclass(frozen=True)
class Case:
    """A named load: the i-th request, the status that is right, how many, and a check of the database after.

    ``setup`` runs once before the timed requests (a form's CSRF token); ``events`` is how many events one
    request carries (a webhook batch), so that events per second are reported too; ``clients`` caps the
    concurrent clients (a provider posts its batches over a few connections, not fifty)."""

    send: Send
    status: int
    requests: int
    verify: Callable[[World, int, int], str] | None = None  # (world, answered, sent)
    setup: Callable[[Client, World], Awaitable[None]] | None = None
    events: int = 1
    clients: int | None = None


def get(path: Callable[[World, int], str]) -> Send:
    """A case that GETs ``path(world, i)``."""
    async def send(client: Client, world: World, i: int) -> Response:
        return await client.get(path(world, i))
    return send


async def unsubscribe(client: Client, world: World, i: int) -> Response:
    """A mail client's one-click POST to the link of the i-th reader from the end (nobody twice)."""
    token = world.signer.mint("unsubscribe", world.readers[-1 - i % len(world.readers)])
    return await client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})


async def form_token(client: Client, world: World, path: str) -> None:
    """GET a form page once: the client keeps its csrf cookie, the world the token bound to it."""
    page = await client.get(path)
    found = CSRF.search(page.text)
    if page.status_code != 200 or found is None:
        raise SystemExit(f"{path} gave no form ({page.status_code})")
    world.csrf = found.group(1)


async def signup_setup(client: Client, world: World) -> None:
    await form_token(client, world, "/subscribe")


async def signup(client: Client, world: World, i: int) -> Response:
    """The sign-up form posted with a new address."""
    return await client.post("/subscribe", data={"email": signup_address(world, i), "csrf": world.csrf,
                                                 "website": "", "time_zone": ""})


def signup_address(world: World, i: int) -> str:
    return f"signup-{world.run}-{i}@example.net"


def preferences_path(world: World, i: int) -> str:
    return f"/preferences/{world.signer.mint('manage', world.readers[i % len(world.readers)])}"


def vote_path(world: World, i: int) -> str:
    """The i-th reader's vote link for one of the vote links their email carried."""
    comparison, tool, choice = world.votes[i % len(world.votes)]
    token = world.signer.mint_voter(world.readers[i % len(world.readers)], world.number)
    return f"/vote/{comparison}/{tool}/{choice}/{token}"


async def vote_setup(client: Client, world: World) -> None:
    await form_token(client, world, vote_path(world, 0))


async def vote(client: Client, world: World, i: int) -> Response:
    """The vote page's button: its POST with the CSRF token the page gave."""
    return await client.post(vote_path(world, i), data={"csrf": world.csrf})


async def webhook(client: Client, world: World, i: int) -> Response:
    """One SendGrid batch of 100 ``delivered`` events, each new, signed as SendGrid signs."""
    now = int(time.time())
    batch = [{"event": "delivered", "email": f"reader{(i * EVENTS_PER_BATCH + k) % len(world.deliveries):07d}"
              "@example.org", "timestamp": now, "sg_event_id": f"bench-{world.run}-{i}-{k}",
              "sg_message_id": f"m{i}.{k}", "delivery_id": str(world.deliveries[(i * EVENTS_PER_BATCH + k)
                                                                                % len(world.deliveries)])}
             for k in range(EVENTS_PER_BATCH)]
    body = json.dumps(batch).encode()
    signature = SENDGRID_KEY.sign(str(now).encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": str(now),
               "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode()}
    return await client.post("/webhooks/sendgrid", content=body, headers=headers)


def count(database_url: str, statement: Any) -> int:
    """One number from the database (a fresh engine: the server's own state plays no part)."""
    from newsletter.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())
    finally:
        engine.dispose()


def held(label: str, found: int, answered: int, sent: int) -> str:
    """Exact when every request was answered; else between the answered and the sent (a request the client gave
    up waiting for may still have been applied). Anything else is a MISMATCH: an event lost or doubled."""
    if found == answered == sent:
        return f"{label}: {found} of {answered} (exact)"
    within = answered <= found <= sent
    return f"{label}: {found}, answered {answered} of {sent} sent {'(none answered lost)' if within else 'MISMATCH'}"


def unsubscribed(world: World, answered: int, sent: int) -> str:
    from sqlalchemy import func, select

    from subscribers.models import Subscriber
    statement = select(func.count()).select_from(Subscriber).where(
        Subscriber.status == "unsubscribed", Subscriber.unsubscribe_channel == "one-click")  # type: ignore[arg-type]
    return held("readers unsubscribed by one-click", count(world.database_url, statement), answered, sent)


def signed_up(world: World, answered: int, sent: int) -> str:
    from sqlalchemy import func, select

    from subscribers.models import Subscriber
    statement = select(func.count()).select_from(Subscriber).where(
        Subscriber.status == "pending", Subscriber.email.like(f"signup-{world.run}-%"))  # type: ignore[attr-defined]
    return held("pending sign-ups stored", count(world.database_url, statement), answered, sent)


def events_seen(world: World, answered: int, sent: int) -> str:
    from sqlalchemy import func, select

    from subscribers.models import WebhookEvent
    statement = select(func.count()).select_from(WebhookEvent).where(
        WebhookEvent.event_id.like(f"%bench-{world.run}-%"))  # type: ignore[attr-defined]
    return held("webhook events stored", count(world.database_url, statement), answered * EVENTS_PER_BATCH,
                sent * EVENTS_PER_BATCH)


def votes_held(world: World, answered: int, sent: int) -> str:
    from sqlalchemy import func, select

    from newsletter.models import VoteRow
    return held("votes stored", count(world.database_url, select(func.count()).select_from(VoteRow)),
                answered, sent)


CASES: dict[str, Case] = {
    "unsubscribe": Case(unsubscribe, 200, 2_000, unsubscribed),
    "signup": Case(signup, 200, 1_000, signed_up, setup=signup_setup),
    "preferences": Case(get(preferences_path), 200, 1_000),
    "archive": Case(get(lambda world, i: f"/archive/{world.number}"), 200, 1_000),
    "webhook": Case(webhook, 200, 400, events_seen, events=EVENTS_PER_BATCH, clients=4),
    "ballot": Case(get(vote_path), 200, 500),
    "vote": Case(vote, 200, 500, votes_held, setup=vote_setup),
}
