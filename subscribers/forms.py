"""Routes of the forms: sign-up, confirmation, preferences."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from newsletter.errors import SubscriberError
from newsletter.models import ToolRow
from subscribers import mailer, service, signup
from subscribers.site import Site
from subscribers.store import cohort_of
from subscribers.tokens import TokenError

MAX_FIELD = 320


def router(site: Site) -> APIRouter:
    """The form routes, bound to ``site``."""
    routes = APIRouter()

    def categories() -> list[str]:
        with Session(site.engine) as session:
            return [c for c in session.exec(select(ToolRow.category).distinct().order_by(col(ToolRow.category)))]

    def resend_after() -> timedelta:
        return timedelta(minutes=site.settings.confirm_resend_minutes)

    def chosen(form: FormData) -> list[str]:
        known = set(categories())
        return [str(c) for c in form.getlist("category") if str(c) in known]

    @routes.get("/", response_class=HTMLResponse)
    @routes.get("/subscribe", response_class=HTMLResponse)
    def signup_page(request: Request) -> HTMLResponse:
        return site.page("index.html", request=request, title="Subscribe", categories=categories(),
                         consent=signup.CONSENT_TEXT)

    @routes.post("/subscribe", response_class=HTMLResponse)
    async def subscribe(request: Request, background: BackgroundTasks) -> HTMLResponse:
        form = await request.form()
        if not site.csrf_ok(request, _field(form, "csrf")):
            return site.page("link_expired.html", 400, request=request, title="Form expired", expired=True,
                             days=site.settings.confirm_max_age_days)
        if not site.limit.allow(site.client_ip(request)):
            return site.page("too_many.html", 429, title="Too many tries")
        if _field(form, "website"):  # the honeypot: a person never fills it in
            return site.page("check_inbox.html", title="Check your inbox")
        consent = signup.Consent(site.client_ip(request), request.headers.get("user-agent"))
        try:
            row = signup.request_subscription(
                site.engine, _field(form, "email"), categories=chosen(form), free_only=bool(form.get("free_only")),
                consent=consent, resend_after=resend_after(), secret=site.secret)
        except SubscriberError:
            row = None  # same answer for every address: nothing to learn here
        if row is not None and row.id is not None:
            mailer.confirm_later(background, site, row.id, row.email)  # after the answer: it never waits on mail
        return site.page("check_inbox.html", title="Check your inbox")

    @routes.get("/confirm/{token}", response_class=HTMLResponse)
    def confirm_page(token: str, request: Request) -> HTMLResponse:
        return _confirmation(token, request)  # a page with a button: mail scanners open every link in a message

    @routes.post("/confirm/{token}", response_class=HTMLResponse)
    async def confirm(token: str, request: Request) -> HTMLResponse:
        form = await request.form()
        if not site.csrf_ok(request, _field(form, "csrf")):  # a forged form must not confirm anything
            return _confirmation(token, request, message="The form expired; please press the button again.",
                                 status=400)
        return _confirmation(token, request, act=True)

    def _confirmation(token: str, request: Request, *, message: str = "", status: int = 200,
                      act: bool = False) -> HTMLResponse:
        """The confirmation page: the button (``act`` False), or the outcome of pressing it."""
        from subscribers.web import mask  # web includes this router; imported late to avoid a cycle

        days = site.settings.confirm_max_age_days
        try:
            subscriber_id, address = site.signer.read_confirm(token, max_age=days * 86400)
            if act:
                consent = signup.Consent(site.client_ip(request), request.headers.get("user-agent"))
                found = signup.Confirmation("done", signup.confirm(site.engine, subscriber_id, address,
                                                                   consent=consent))
            else:
                found = signup.confirmation(site.engine, subscriber_id, address)
        except TokenError as exc:
            return site.page("link_expired.html", 400, request=request, title="Link expired", expired=exc.expired,
                             days=days)
        except SubscriberError:
            return site.page("link_expired.html", 400, request=request, title="Link not valid", expired=False,
                             days=days)
        row = found.subscriber
        if found.kind == "done":
            return site.page("confirmed.html", title="Subscribed", address=row.email, what=cohort_of(row).describe()
                             if row.categories or row.free_only else "")
        return site.page("confirm.html", status, request=request, title="Confirm", message=message,
                         address=mask(address), action=f"/confirm/{token}", change=found.kind == "change")

    @routes.get("/preferences/{token}", response_class=HTMLResponse)
    def preferences(token: str, request: Request) -> HTMLResponse:
        return _preferences(token, request)

    @routes.post("/preferences/{token}", response_class=HTMLResponse)
    async def save_preferences(token: str, request: Request, background: BackgroundTasks) -> HTMLResponse:
        form = await request.form()
        if not site.csrf_ok(request, _field(form, "csrf")):
            return _preferences(token, request, message="The form expired; please save again.", status=400)
        try:
            subscriber_id = site.signer.read("manage", token)
            pause = int(_field(form, "pause") or 0)
            row = signup.update_preferences(site.engine, subscriber_id, categories=chosen(form),
                                            free_only=bool(form.get("free_only")), pause=pause)
            message, status = "Saved.", 200
            new = _field(form, "email")
            if new and new.lower() != row.email:
                change = signup.request_address_change(site.engine, subscriber_id, new, secret=site.secret,
                                                       resend_after=resend_after())
                if change.send:
                    mailer.confirm_later(background, site, subscriber_id, change.address, change=True)
                message = (f"Saved. Not sent: {change.refused}." if change.refused else
                           f"Saved. Confirm {change.address} from the email we just sent there.")
                status = 429 if change.refused else 200
        except (TokenError, SubscriberError, ValueError) as exc:
            return _preferences(token, request, message=f"Not saved: {exc}", status=400)
        return _preferences(token, request, message=message, status=status)

    @routes.get("/resubscribe/{token}", response_class=HTMLResponse)
    def resubscribe_page(token: str, request: Request) -> HTMLResponse:
        return _resubscribe(token, request)

    @routes.post("/resubscribe/{token}", response_class=HTMLResponse)
    async def resubscribe(token: str, request: Request, background: BackgroundTasks) -> HTMLResponse:
        form = await request.form()
        if not site.csrf_ok(request, _field(form, "csrf")):  # a forged form must not start anything
            return _resubscribe(token, request, message="The form expired; please press the button again.",
                                status=400)
        consent = signup.Consent(site.client_ip(request), request.headers.get("user-agent"))
        try:
            row = signup.request_resubscription(site.engine, site.signer.read("unsubscribe", token),
                                                consent=consent, resend_after=resend_after())
        except (TokenError, SubscriberError):
            return site.page("invalid_link.html", 400, title="Link not valid")
        if row is not None and row.id is not None:
            mailer.confirm_later(background, site, row.id, row.email)
        return site.page("check_inbox.html", title="Check your inbox")

    def _resubscribe(token: str, request: Request, *, message: str = "", status: int = 200) -> HTMLResponse:
        from subscribers.web import mask  # web includes this router; imported late to avoid a cycle

        try:
            row = service.get(site.engine, site.signer.read("unsubscribe", token))
        except (TokenError, SubscriberError):
            return site.page("invalid_link.html", 400, title="Link not valid")
        return site.page("resubscribe.html", status, request=request, title="Subscribe again", message=message,
                         address=mask(row.email), action=f"/resubscribe/{token}", consent=signup.CONSENT_TEXT)

    def _preferences(token: str, request: Request, *, message: str = "", status: int = 200) -> HTMLResponse:
        try:
            row = service.get(site.engine, site.signer.read("manage", token))
        except (TokenError, SubscriberError):
            return site.page("invalid_link.html", 400, title="Link not valid")
        assert row.id is not None
        return site.page("preferences.html", status, request=request, title="Preferences", message=message,
                         action=f"/preferences/{token}", categories=categories(), chosen=cohort_of(row).categories,
                         free_only=row.free_only, pause=row.pause_remaining, address=row.email,
                         unsubscribe=f"/unsubscribe/{site.signer.mint('unsubscribe', row.id)}")

    return routes


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return str(value)[:MAX_FIELD].strip() if isinstance(value, str) else ""
