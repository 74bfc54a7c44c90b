"""Provider webhooks over HTTP: ``POST /webhooks/{provider}``, checked with that service's configured secret.

What travels in headers is checked before the body is read, so a stranger's large body is never read at all; the
events are then parsed and applied by ``subscribers.webhooks`` (on a worker thread: it writes to the database).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from newsletter.clock import SYSTEM, Clock
from newsletter.config import Settings
from newsletter.errors import WebhookPayloadError, WebhookRejected
from newsletter.web.deps import SiteDep
from newsletter.web.site import in_lane
from subscribers import sns, webhooks
from subscribers.webhook_payloads import PARSERS, load_json

log = logging.getLogger("subscribers.webhooks")
routes = APIRouter()


@routes.post("/webhooks/{provider_name}")
async def webhook(provider_name: str, request: Request, site: SiteDep) -> JSONResponse:
    """Apply one provider's webhook events; 404 when no secret for that provider is configured."""
    gate = request.app.state.webhook_gates.get(provider_name)  # built once by create_app (gates)
    if gate is None:
        return JSONResponse({"error": f"no {provider_name} webhook is configured"}, status_code=404)
    headers = {k.lower(): v for k, v in request.headers.items()}
    code, answer = await handle(provider_name, gate, headers, request.body, site.engine,
                                soft_limit=site.settings.soft_bounce_limit, clock=site.clock, lane=site.lane)
    return JSONResponse(answer, status_code=code)


async def handle(provider: str, gate: webhooks.Gate, headers: Mapping[str, str],
                 read_body: Callable[[], Awaitable[bytes]], engine: Engine, *,
                 soft_limit: int, clock: Clock = SYSTEM,
                 lane: anyio.CapacityLimiter | None = None) -> tuple[int, dict[str, Any]]:
    """One webhook request → (HTTP status, JSON answer): 401 refused, 400 malformed, 503 retry later, 200 done.

    Signature timestamps are compared with ``clock``, and the events are remembered at its time; they are applied
    on a thread of ``lane`` (the app's write lane; None: the routes' shared threads).
    """
    moment = clock.now()
    now = moment.timestamp()
    try:
        gate.headers(headers, now)
        body = await read_body()  # capped by newsletter.web.limits: 413 beyond it
        token = await run_in_threadpool(gate.body, headers, body, now)  # SNS may fetch a certificate
        events = PARSERS[provider](headers, load_json(body))
        applied = await in_lane(lane, webhooks.apply, engine, events, soft_limit=soft_limit, token=token, now=moment)
    except WebhookRejected as exc:
        return 401, {"error": str(exc)}
    except WebhookPayloadError as exc:
        return 400, {"error": str(exc)}
    except SQLAlchemyError:
        log.exception("%s webhook could not be applied; nothing of it was stored", provider)
        return 503, {"error": "the events could not be applied; nothing was stored, so a retry will apply them"}
    return 200, {"received": len(events), "applied": applied}


def gates(settings: Settings, sns_endpoint: sns.SnsEndpoint | None = None) -> dict[str, webhooks.Gate]:
    """Every configured provider's checks, built once when the app starts (not per request: a batch of webhooks
    must not pay for building them, nor for parsing a public key, each time)."""
    built = {name: verifier(settings, name, sns_endpoint) for name in PARSERS}
    return {name: gate for name, gate in built.items() if gate is not None}


def verifier(settings: Settings, provider: str, sns_endpoint: sns.SnsEndpoint | None = None) -> webhooks.Gate | None:
    """The checks for ``provider``'s webhooks with the configured secret, or None when none is configured."""
    if provider == "ses":  # SES events come through SNS, signed with SNS's certificates, from our topics only
        return sns_endpoint.gate() if sns_endpoint else None
    if provider == "postmark" and settings.postmark_webhook_username and settings.postmark_webhook_password:
        user, password = settings.postmark_webhook_username, settings.postmark_webhook_password.get_secret_value()
        return webhooks.Gate(  # Basic auth is all in the headers: check it before reading any body
            lambda h, now: webhooks.verify_postmark(h, b"", username=user, password=password, now=now),
            lambda h, b, now: None)
    if provider == "sendgrid" and settings.sendgrid_webhook_public_key:
        key = settings.sendgrid_webhook_public_key
        return webhooks.Gate(webhooks.sendgrid_headers,
                             lambda h, b, now: webhooks.verify_sendgrid(h, b, public_key=key, now=now))
    if provider == "mailgun" and settings.mailgun_webhook_signing_key:
        signing = settings.mailgun_webhook_signing_key.get_secret_value()
        return webhooks.Gate(lambda h, now: None,  # Mailgun signs inside the body: only the size cap applies
                             lambda h, b, now: webhooks.verify_mailgun(h, b, signing_key=signing, now=now))
    if provider == "resend" and settings.resend_webhook_secret:
        secret = settings.resend_webhook_secret.get_secret_value()
        return webhooks.Gate(webhooks.resend_headers,
                             lambda h, b, now: webhooks.verify_resend(h, b, secret=secret, now=now))
    return None
