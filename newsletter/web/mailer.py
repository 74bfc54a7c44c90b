"""Transactional mail from the web routes (confirmations, welcomes), sent after the answer, on a thread of its own.

The provider call is blocking and may take seconds (or fail). Run inside an async route it would hold the event
loop and with it every route; run in the shared threadpool, a burst of sign-ups would take the threads the
plain ``def`` routes run on. So each app sends on one mail thread of its own (the provider is shared and sends
one batch at a time anyway), after the response has been sent: every sign-up answers at once, whether a mail
goes out or not, and a provider outage is a line in the log, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor

from starlette.background import BackgroundTasks

from newsletter.errors import NewsletterError
from newsletter.recipients import RecipientSource
from newsletter.web.site import Site
from newsletter.web.welcome import send_welcome
from subscribers import signup

log = logging.getLogger(__name__)
_THREADS: weakref.WeakKeyDictionary[Site, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


def confirm_later(background: BackgroundTasks, site: Site, subscriber_id: int, address: str, *,
                  change: bool = False) -> None:
    """Email ``address`` its confirmation link once the response has gone out; failures are logged."""
    background.add_task(_send, site, subscriber_id, address, change)


async def _send(site: Site, subscriber_id: int, address: str, change: bool) -> None:
    # Awaiting the mail thread costs the event loop nothing, and lets a server's graceful shutdown wait for it.
    await asyncio.wrap_future(_thread(site).submit(send_now, site, subscriber_id, address, change=change))


def send_now(site: Site, subscriber_id: int, address: str, *, change: bool = False) -> bool:
    """Send one confirmation on the calling thread; False (logged, and the reader may ask again) if it failed."""
    try:
        site.send_confirmation(subscriber_id, address, change=change)
    except NewsletterError as exc:  # a provider failure or outage, or a template that did not render
        log.warning("confirmation email for subscriber %s not sent: %s", subscriber_id, exc)
        if not change:  # a sign-up: let the reader ask again at once rather than after the resend wait
            signup.confirmation_not_sent(site.engine, subscriber_id, resend_after=site.resend_after())
        return False
    log.info("confirmation email sent", extra={"subscriber": subscriber_id, "change": change})
    return True


def welcome_later(background: BackgroundTasks, site: Site, recipients: RecipientSource, subscriber_id: int) -> None:
    """Email a just-confirmed reader the welcome email once the response has gone out; failures are logged."""
    background.add_task(_welcome, site, recipients, subscriber_id)


async def _welcome(site: Site, recipients: RecipientSource, subscriber_id: int) -> None:
    await asyncio.wrap_future(_thread(site).submit(welcome_now, site, recipients, subscriber_id))


def welcome_now(site: Site, recipients: RecipientSource, subscriber_id: int) -> bool:
    """Send the welcome email on the calling thread; False (logged) if it failed or the reader is not active."""
    try:
        return send_welcome(site, recipients, subscriber_id)
    except NewsletterError as exc:  # the subscription stands; a welcome is a courtesy, not worth a retry loop
        log.warning("welcome email for subscriber %s not sent: %s", subscriber_id, exc)
        return False


def _thread(site: Site) -> ThreadPoolExecutor:
    """The app's mail thread, started on first use (only ever from the event loop's thread)."""
    executor = _THREADS.get(site)
    if executor is None:
        executor = _THREADS[site] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="confirmation-mail")
    return executor
