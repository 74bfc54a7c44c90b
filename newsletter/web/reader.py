"""Reader pages: sign-up, confirmation, preferences and address change, unsubscribe (page and one-click), resubscribe.

``GET /unsubscribe/{token}`` shows a page with a button and never changes anything: link scanners and
prefetchers fire GETs. ``POST /unsubscribe/{token}`` unsubscribes at once and answers 200 with no redirect,
whether the body is ``List-Unsubscribe=One-Click`` (form-encoded or multipart, from a mail client) or the
page's button; for a reader who already left or was erased it answers the same page without the address and
changes nothing (only a tampered token gets 400). The token in the URL is the only credential, signed for
unsubscribing only, so that endpoint needs no cookie and no CSRF check (RFC 8058 forbids both); every other form
is CSRF-protected.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from newsletter import zones
from newsletter.catalog.store import tool_categories
from newsletter.db import session_scope
from newsletter.errors import SubscriberError
from newsletter.statuses import REACHABLE
from newsletter.web import mailer
from newsletter.web.deps import SiteDep, WiringDep
from newsletter.web.site import Site, mask
from newsletter.web.welcome import latest_issue, latest_issue_url
from newsletter.web.wording import CATEGORY_RULE, Choices, status_line, what_changed
from newsletter.web.zone_script import ZONE_SCRIPT
from subscribers import service, signup
from subscribers.models import Subscriber
from subscribers.store import cohort_of
from subscribers.tokens import TokenError

MAX_FIELD = 320
routes = APIRouter()


@routes.get("/", response_class=HTMLResponse)
@routes.get("/subscribe", response_class=HTMLResponse)
def signup_page(request: Request, site: SiteDep) -> HTMLResponse:
    """The sign-up form, with the categories to choose from, the consent text and the latest issue to look at."""
    return site.page("index.html", request=request, title="Subscribe", categories=categories(site),
                     consent=signup.CONSENT_TEXT, latest=latest_issue(site), zone_script=ZONE_SCRIPT,
                     track_readers=site.settings.track_readers)


@routes.post("/subscribe", response_class=HTMLResponse)
async def subscribe(request: Request, background: BackgroundTasks, site: SiteDep) -> HTMLResponse:
    """Record a sign-up and mail its confirmation after the answer; the same answer for every address."""
    form = await request.form()
    if not site.csrf_ok(request, _field(form, "csrf")):
        return site.page("link_expired.html", 400, request=request, title="Form expired", expired=True,
                         days=site.settings.confirm_max_age_days)
    if not site.limit.allow(site.client_ip(request)):
        return site.page("too_many.html", 429, title="Too many tries")
    if _field(form, "website"):  # the honeypot: a person never fills it in
        return site.page("check_inbox.html", title="Check your inbox")
    # On a worker thread: the database waits there, not on the event loop every other route shares.
    row = await site.in_lane(request_subscription, site, form, consent_of(site, request))
    if row is not None and row.id is not None:
        mailer.confirm_later(background, site, row.id, row.email)  # after the answer: it never waits on mail
    return site.page("check_inbox.html", title="Check your inbox")


def request_subscription(site: Site, form: FormData, consent: signup.Consent) -> Subscriber | None:
    """Record the form's sign-up; the row to mail a confirmation to, or None (nothing to send, or not an address:
    the page says the same either way)."""
    try:
        return signup.request_subscription(
            site.engine, _field(form, "email"), categories=chosen(site, form), free_only=bool(form.get("free_only")),
            consent=consent, resend_after=site.resend_after(), secret=site.secret, now=site.clock.now(),
            time_zone=browser_zone(_field(form, "time_zone")))
    except SubscriberError:
        return None  # same answer for every address: nothing to learn here


@routes.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(token: str, request: Request, site: SiteDep) -> HTMLResponse:
    """The confirmation page with its button; changes nothing (mail scanners open every link in a message)."""
    return confirmation(site, token, request)


@routes.post("/confirm/{token}", response_class=HTMLResponse)
async def confirm(token: str, request: Request, background: BackgroundTasks, site: SiteDep,
                  wiring: WiringDep) -> HTMLResponse:
    """Confirm the link's address (a sign-up or an address change) when the form's CSRF token matches; a sign-up
    gets the welcome email after the answer."""
    form = await request.form()
    if not site.csrf_ok(request, _field(form, "csrf")):  # a forged form must not confirm anything
        return confirmation(site, token, request, message="The form expired; please press the button again.",
                            status=400)
    return confirmation(site, token, request, act=lambda subscriber_id: mailer.welcome_later(
        background, site, wiring.recipients, subscriber_id))


def confirmation(site: Site, token: str, request: Request, *, message: str = "", status: int = 200,
                 act: Callable[[int], None] | None = None) -> HTMLResponse:
    """The confirmation page: the button (no ``act``), or the outcome of pressing it (``act`` is called with the
    id of a reader who has just signed up, not with an address change or a repeat)."""
    days = site.settings.confirm_max_age_days
    try:
        subscriber_id, address = site.signer.read_confirm(token, max_age=days * 86400)
        found = _confirmed(site, request, subscriber_id, address, act) if act else signup.confirmation(
            site.engine, subscriber_id, address)
    except TokenError as exc:
        return site.page("link_expired.html", 400, request=request, title="Link expired", expired=exc.expired,
                         days=days)
    except SubscriberError:
        return site.page("link_expired.html", 400, request=request, title="Link not valid", expired=False,
                         days=days)
    row = found.subscriber
    if found.kind == "done":
        return site.page("confirmed.html", title="Subscribed", address=row.email, what=cohort_of(row).describe()
                         if row.categories or row.free_only else "", latest=latest_issue_url(site))
    return site.page("confirm.html", status, request=request, title="Confirm", message=message,
                     address=mask(address), action=f"/confirm/{token}", change=found.kind == "change")


def _confirmed(site: Site, request: Request, subscriber_id: int, address: str,
               signed_up: Callable[[int], None]) -> signup.Confirmation:
    kind = signup.confirmation(site.engine, subscriber_id, address).kind  # what pressing does: only a sign-up is new
    row = signup.confirm(site.engine, subscriber_id, address, consent=consent_of(site, request), now=site.clock.now())
    if kind == "sign-up" and row.status == "active":
        signed_up(subscriber_id)
    return signup.Confirmation("done", row)


@routes.get("/preferences/{token}", response_class=HTMLResponse)
def preferences(token: str, request: Request, site: SiteDep) -> HTMLResponse:
    """The reader's preferences form (categories, free only, pause, address), from their manage link."""
    return preferences_page(site, token, request)


@routes.post("/preferences/{token}", response_class=HTMLResponse)
async def save_preferences(token: str, request: Request, background: BackgroundTasks, site: SiteDep) -> HTMLResponse:
    """Save the preferences; a new address is only asked for (confirmed from a mail sent to it)."""
    form = await request.form()
    if not site.csrf_ok(request, _field(form, "csrf")):
        return preferences_page(site, token, request, message="The form expired; please save again.", status=400)
    try:
        subscriber_id = site.signer.read("manage", token)
        before = Choices.of(service.get(site.engine, subscriber_id))
        row = signup.update_preferences(site.engine, subscriber_id, categories=chosen(site, form),
                                        free_only=bool(form.get("free_only")), pause=int(_field(form, "pause") or 0),
                                        time_zone=_field(form, "time_zone"), local=site.settings.local_delivery,
                                        now=site.clock.now())
        message, status = what_changed(before, Choices.of(row)), 200
        new = _field(form, "email")
        if new and new.lower() != row.email:
            message, status = change_address(site, background, subscriber_id, new)
    except (TokenError, SubscriberError, ValueError) as exc:
        return preferences_page(site, token, request, message=f"Not saved: {exc}", status=400)
    return preferences_page(site, token, request, message=message, status=status)


def change_address(site: Site, background: BackgroundTasks, subscriber_id: int, new: str) -> tuple[str, int]:
    """Ask to move the reader to ``new`` and mail it a confirmation when allowed; the message and status to show."""
    change = signup.request_address_change(site.engine, subscriber_id, new, secret=site.secret,
                                           resend_after=site.resend_after(), now=site.clock.now())
    if change.send:
        mailer.confirm_later(background, site, subscriber_id, change.address, change=True)
    if change.refused:
        return f"Saved. Not sent: {change.refused}.", 429
    return f"Saved. Confirm {change.address} from the email we just sent there.", 200


def preferences_page(site: Site, token: str, request: Request, *, message: str = "",
                     status: int = 200) -> HTMLResponse:
    """The preferences form for the reader ``token`` names, or the invalid-link page."""
    try:
        row = service.get(site.engine, site.signer.read("manage", token))
    except (TokenError, SubscriberError):
        return site.page("invalid_link.html", 400, title="Link not valid")
    assert row.id is not None
    return site.page("preferences.html", status, request=request, title="Preferences", message=message,
                     action=f"/preferences/{token}", categories=categories(site), chosen=cohort_of(row).categories,
                     free_only=row.free_only, pause=row.pause_remaining, address=row.email, standing=status_line(row),
                     rule=CATEGORY_RULE, zone=row.time_zone, zones=zone_groups(),
                     publication_zone=site.settings.timezone, local_time=_local_time(site),
                     unsubscribe=f"/unsubscribe/{site.signer.mint('unsubscribe', row.id)}")


@routes.get("/resubscribe/{token}", response_class=HTMLResponse)
def resubscribe_page(token: str, request: Request, site: SiteDep) -> HTMLResponse:
    """The subscribe-again page for a reader who left, with its button and the consent text."""
    return resubscription(site, token, request)


@routes.post("/resubscribe/{token}", response_class=HTMLResponse)
async def resubscribe(token: str, request: Request, background: BackgroundTasks, site: SiteDep) -> HTMLResponse:
    """Start double opt-in again for the reader the unsubscribe token names."""
    form = await request.form()
    if not site.csrf_ok(request, _field(form, "csrf")):  # a forged form must not start anything
        return resubscription(site, token, request, message="The form expired; please press the button again.",
                              status=400)
    try:
        row = signup.request_resubscription(site.engine, site.signer.read("unsubscribe", token),
                                            consent=consent_of(site, request), resend_after=site.resend_after(),
                                            now=site.clock.now())
    except (TokenError, SubscriberError):
        return site.page("invalid_link.html", 400, title="Link not valid")
    if row is not None and row.id is not None:
        mailer.confirm_later(background, site, row.id, row.email)
    return site.page("check_inbox.html", title="Check your inbox")


def resubscription(site: Site, token: str, request: Request, *, message: str = "",
                   status: int = 200) -> HTMLResponse:
    """The subscribe-again page for the reader ``token`` names, or the invalid-link page."""
    try:
        row = service.get(site.engine, site.signer.read("unsubscribe", token))
    except (TokenError, SubscriberError):
        return site.page("invalid_link.html", 400, title="Link not valid")
    return site.page("resubscribe.html", status, request=request, title="Subscribe again", message=message,
                     address=mask(row.email), action=f"/resubscribe/{token}", consent=signup.CONSENT_TEXT)


@routes.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, request: Request, site: SiteDep) -> HTMLResponse:
    """The unsubscribe page with its button, and a pause or fewer categories offered first; changes nothing."""
    return unsubscribe_offer(site, token, request)


def unsubscribe_offer(site: Site, token: str, request: Request, *, message: str = "",
                      status: int = 200) -> HTMLResponse:
    """The unsubscribe page for the reader ``token`` names, the page for one already gone, or the invalid one."""
    try:
        row = reader_for(site, token)
    except TokenError:
        return site.page("invalid_link.html", 400, title="Link not valid")
    if row is None or row.id is None:
        return gone(site)
    active = row.status == "active"
    return site.page("unsubscribe.html", status, request=request, title="Unsubscribe", address=mask(row.email),
                     action=f"/unsubscribe/{token}", pause_action=f"/unsubscribe/{token}/pause" if active else "",
                     preferences=f"/preferences/{site.signer.mint('manage', row.id)}" if active else "",
                     message=message)


@routes.post("/unsubscribe/{token}/pause", response_class=HTMLResponse)
async def pause_instead(token: str, request: Request, site: SiteDep) -> HTMLResponse:
    """Skip the next few issues instead of leaving (the unsubscribe page's alternative), when CSRF matches."""
    form = await request.form()
    if not site.csrf_ok(request, _field(form, "csrf")):
        return unsubscribe_offer(site, token, request, message="The form expired; please try again.", status=400)
    try:
        row = reader_for(site, token)
        if row is None or row.id is None or row.status != "active":
            return gone(site)
        saved = signup.update_preferences(site.engine, row.id, categories=sorted(cohort_of(row).categories),
                                          free_only=row.free_only, pause=int(_field(form, "pause") or 0))
    except (TokenError, SubscriberError, ValueError):
        return unsubscribe_offer(site, token, request, message="Not paused: choose 1 to 12 issues.", status=400)
    return site.page("paused.html", title="Paused", standing=status_line(saved),
                     preferences=f"/preferences/{site.signer.mint('manage', row.id)}")


@routes.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request, site: SiteDep) -> HTMLResponse:
    """Unsubscribe at once: the page's button or a mail client's one-click POST (RFC 8058), no redirect."""
    form = await request.form()
    channel = "one-click" if form.get("List-Unsubscribe") == "One-Click" else "page"
    # The read, the write and the page wait on the database: off the event loop, so that a burst of one-click
    # POSTs (a mail client's list-unsubscribe button pressed by many) holds up no other route.
    return await site.in_lane(unsubscribe_now, site, token, channel)


def unsubscribe_now(site: Site, token: str, channel: str) -> HTMLResponse:
    """The POST's work, on a worker thread: the invalid-link page, the page for one already gone, or unsubscribed."""
    if site.signer.is_probe(token):  # newsletter doctor's dry run: answered as a real one, changes nothing
        return gone(site)
    try:
        subscriber_id = site.signer.read("unsubscribe", token)
    except TokenError:
        return site.page("invalid_link.html", 400, title="Link not valid")
    row = service.unsubscribe_by_link(site.engine, subscriber_id, channel=channel)
    if row is None or row.status not in REACHABLE:
        return gone(site)  # nothing changed: their record keeps when and how they left
    return site.page("unsubscribed.html", title="Unsubscribed", address=mask(row.email),
                     resubscribe=f"/resubscribe/{token}")


def reader_for(site: Site, token: str) -> Subscriber | None:
    """The reader an unsubscribe token names, or None when they are gone (erased); TokenError if tampered."""
    subscriber_id = site.signer.read("unsubscribe", token)
    try:
        return service.get(site.engine, subscriber_id)
    except SubscriberError:
        return None


def gone(site: Site) -> HTMLResponse:
    """The unsubscribed page without the address, for a reader who already left or was erased."""
    # So an old email's link neither fails nor tells whoever holds it what became of the reader.
    return site.page("unsubscribed.html", title="Unsubscribed")


def browser_zone(name: str) -> str | None:
    """The zone the sign-up form's script read from the browser, or None (the publication's) when it sent none or
    one this machine does not know: a sign-up is never refused for it."""
    return name.strip() if name.strip() in zones.zone_names() else None


@functools.cache
def zone_groups() -> list[tuple[str, list[str]]]:
    """Every known zone name grouped by region (``Europe``, ``America``, …) for the preferences list."""
    groups: dict[str, list[str]] = {}
    for name in sorted(zones.zone_names()):
        groups.setdefault(name.split("/")[0] if "/" in name else "Other", []).append(name)
    return sorted(groups.items())


def _local_time(site: Site) -> str | None:
    local = site.settings.local_delivery
    return local.at.strftime("%H:%M") if local else None


def categories(site: Site) -> list[str]:
    """The categories a reader may choose from: those of the stored tools."""
    with session_scope(site.engine) as session:
        return tool_categories(session)


def chosen(site: Site, form: FormData) -> list[str]:
    """The form's chosen categories that exist (anything else is ignored)."""
    known = set(categories(site))
    return [str(c) for c in form.getlist("category") if str(c) in known]


def consent_of(site: Site, request: Request) -> signup.Consent:
    """The consent record of this request: the visitor's address and browser."""
    return signup.Consent(site.client_ip(request), request.headers.get("user-agent"))


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return str(value)[:MAX_FIELD].strip() if isinstance(value, str) else ""
