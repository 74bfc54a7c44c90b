"""The desk's front page: every issue with its figures, and a chart of active subscribers over time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from newsletter import issues
from newsletter.db import session_scope
from newsletter.web.desk.pages import DeskDep
from subscribers.chart import subscriber_chart
from subscribers.figures import IssueFigures, subscribers_over_time, unsubscribed_since
from subscribers.store import count_by_status

routes = APIRouter(prefix="/editor")


@routes.get("", response_class=HTMLResponse)
def issue_list(request: Request, desk: DeskDep) -> Response:
    """The issues, newest first, with their outcomes; sign-in first."""
    if desk.gate.editor(request) is None:
        return RedirectResponse("/editor/login", status_code=303)
    today = desk.site.clock.now().date()
    with session_scope(desk.site.engine) as session:
        summaries = issues.list_issues(session)
        left = unsubscribed_since(session)
        points = subscribers_over_time(session, today=today)
        active = count_by_status(session).get("active", 0)
    rows = [(s, IssueFigures.of(s.deliveries, left.get(s.number, 0))) for s in summaries]
    return desk.page("issues.html", request, title="Issues", rows=rows, chart=subscriber_chart(points),
                     points=points, active=active)
