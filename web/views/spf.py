"""The SPF checks: one account's domain, and every account of the tenant with its progress and summary."""

from __future__ import annotations

import gettext
from typing import TYPE_CHECKING, TypedDict

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from schema import DashboardIdentity
from web.client import present
from web.formatting import from_slug, parse_timestamp
from web.results import SPF_CHECK, SPF_CHECK_ALL, SPF_CHECK_STATUS

if TYPE_CHECKING:
    from web.dashboard import Dashboard

__all__ = ["PROBLEMS_LINK", "SpfSummary", "SpfViews", "pop_spf_summary", "spf_summary_text"]

# The account list filtered to what a bulk check found wrong (the summary's link).
PROBLEMS_LINK = "/mail-accounts?spf=problem"
_SUMMARY_KEY = "spf_summary"


class SpfSummary(TypedDict):
    """The result of the bulk check ("SPF check for all") for the list page."""

    text: str
    withProblems: int


def spf_summary_text(t: gettext.NullTranslations, checked: int, with_problems: int) -> str:
    """The bulk check's summary in the language of `t`: "12 geprüft, 3 mit Problemen", "4 geprüft, keine Probleme"."""
    if with_problems == 0:
        text = t.gettext("{checked} checked, no problems")
    else:
        text = t.ngettext(
            "{checked} checked, {problems} with a problem", "{checked} checked, {problems} with problems", with_problems
        )
    return text.format(checked=checked, problems=with_problems)


def _queue_summary(request: Request, checked: int, with_problems: int) -> None:
    # Numbers only, like the flash messages: the session cookie is signed, not encrypted.
    request.session[_SUMMARY_KEY] = [checked, with_problems]


def pop_spf_summary(request: Request, t: gettext.NullTranslations) -> SpfSummary | None:
    """The summary of a bulk check that just ended, once, for the page that follows it."""
    numbers = request.session.pop(_SUMMARY_KEY, None)
    if not (isinstance(numbers, list) and len(numbers) == 2 and all(isinstance(n, int) for n in numbers)):
        return None
    checked, with_problems = numbers
    return {"text": spf_summary_text(t, checked, with_problems), "withProblems": with_problems}


class SpfViews:
    """/mail-accounts/{slug}/spf-check, /mail-accounts/spf-check and /mail-accounts/spf-status."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def spf_check(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/spf-check: check one account and show its domain panel."""
        global_id = from_slug(request.path_params["slug"])
        if global_id is None:
            return self.dashboard.not_found(request, identity)
        data = (await self.dashboard.client.run(identity, SPF_CHECK, {"accountId": global_id}))["spfCheck"]
        self.dashboard.flash(request, "not_found" if data["userErrors"] or data["report"] is None else "spf_checked")
        return RedirectResponse(f"/mail-accounts/{request.path_params['slug']}#domainkonfiguration", status_code=303)

    async def spf_check_all(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/spf-check: every account of the tenant through spfCheckAll.

        The progress script asks for JSON: the check then runs in the background and the script follows
        it with /mail-accounts/spf-status. Without the script the request waits for the whole check and
        the list shows the summary.
        """
        wants_json = "application/json" in request.headers.get("accept", "")
        payload = (await self.dashboard.client.run(identity, SPF_CHECK_ALL, {"wait": not wants_json}))["spfCheckAll"]
        summary = present(payload["summary"], SPF_CHECK_ALL)
        if wants_json:
            return JSONResponse({"startedAt": summary["startedAt"], "total": summary["total"]})
        _queue_summary(request, summary["checked"], summary["withProblems"])
        return RedirectResponse("/mail-accounts", status_code=303)

    async def spf_status(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/spf-status?startedAt=…: progress of a bulk check, for the progress script.

        The finished status also queues the summary, so the list the script then reloads shows it as
        it does after the check without script.
        """
        started_at = request.query_params.get("startedAt", "")
        if parse_timestamp(started_at) is None:
            error = self.dashboard.texts(request).gettext("startedAt is missing")
            return JSONResponse({"error": error}, status_code=400)
        data = await self.dashboard.client.run(identity, SPF_CHECK_STATUS, {"startedAt": started_at})
        status = data["spfCheckStatus"]
        if status["finished"]:
            _queue_summary(request, status["checked"], status["withProblems"])
        return JSONResponse(status)
