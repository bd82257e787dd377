"""The SPF checks: one account's domain, and every account of the tenant with its progress."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from schema import DashboardIdentity
from web.client import present
from web.formatting import from_slug, parse_timestamp
from web.results import SPF_CHECK, SPF_CHECK_ALL, SPF_CHECK_STATUS

if TYPE_CHECKING:
    from web.dashboard import Dashboard

__all__ = ["SpfViews"]


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
        it with /mail-accounts/spf-status. Without the script the request waits for the whole check.
        """
        wants_json = "application/json" in request.headers.get("accept", "")
        payload = (await self.dashboard.client.run(identity, SPF_CHECK_ALL, {"wait": not wants_json}))["spfCheckAll"]
        summary = present(payload["summary"], SPF_CHECK_ALL)
        if wants_json:
            return JSONResponse({"startedAt": summary["startedAt"], "total": summary["total"]})
        self.dashboard.flash(request, "spf_checked_all", count=summary["checked"])
        return RedirectResponse("/mail-accounts", status_code=303)

    async def spf_status(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/spf-status?startedAt=…: progress of a bulk check, for the progress script."""
        started_at = request.query_params.get("startedAt", "")
        if parse_timestamp(started_at) is None:
            return JSONResponse({"error": "startedAt fehlt"}, status_code=400)
        data = await self.dashboard.client.run(identity, SPF_CHECK_STATUS, {"startedAt": started_at})
        return JSONResponse(data["spfCheckStatus"])
