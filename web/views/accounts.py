"""The account pages: the list, create, one account, the status toggle, delete and merge."""

from __future__ import annotations

import gettext
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from schema import DashboardIdentity
from texts import N_
from web.client import present
from web.formatting import from_slug, to_slug
from web.forms import field_errors, local_path
from web.results import (
    ACCOUNT,
    ACCOUNTS,
    CREATE_ACCOUNT,
    DELETE_ACCOUNT,
    MERGE_ACCOUNTS,
    MERGE_TARGETS,
    SET_STATUS,
    UPDATE_ACCOUNT,
    AccountDetail,
)
from web.views.spf import PROBLEMS_LINK, pop_spf_summary

if TYPE_CHECKING:
    from web.dashboard import Dashboard

__all__ = ["MERGE_TARGETS_MAX", "PAGE_SIZE", "SPF_FILTERS", "STATUS_FILTERS", "AccountViews", "filter_options"]

PAGE_SIZE = 20
MERGE_TARGETS_MAX = 100
# The list's filters: parameter value -> English label, translated when the list is shown.
STATUS_FILTERS = {"": N_("All"), "ACTIVE": N_("Active"), "INACTIVE": N_("Inactive")}
# The `spf` parameter of the list (the bulk check's summary links to "problem") and the API's SpfFilter.
SPF_FILTERS = {"": N_("All"), "problem": N_("with SPF problems"), "ok": N_("in order"), "unchecked": N_("not checked")}


def filter_options(t: gettext.NullTranslations, filters: Mapping[str, str]) -> dict[str, str]:
    """A filter's options (parameter value -> label) with the labels in the language of `t`."""
    return {value: t.gettext(label) for value, label in filters.items()}


def _edit_values(account: AccountDetail) -> dict[str, str]:
    return {"email": account["email"], "senderName": account["senderName"]}


class AccountViews:
    """/mail-accounts and the pages and actions of one account."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def account(self, identity: DashboardIdentity, slug: str) -> AccountDetail | None:
        """The tenant's account behind a URL slug, or None."""
        global_id = from_slug(slug)
        if global_id is None:
            return None
        return (await self.dashboard.client.run(identity, ACCOUNT, {"id": global_id}))["account"]

    async def home(self, request: Request) -> Response:
        """GET /: the account list."""
        return RedirectResponse("/mail-accounts", status_code=303)

    async def accounts(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts: search, status and SPF filters, pages of PAGE_SIZE, a bulk check's summary."""
        params = request.query_params
        search = params.get("q", "").strip()[:200]
        status = params.get("status", "")
        status = status if status in STATUS_FILTERS else ""
        spf = params.get("spf", "")
        spf = spf if spf in SPF_FILTERS else ""
        after = params.get("after") or None
        # The cursors of the pages before this one ("" is the first page): the API only pages forwards.
        history = params.getlist("prev")[:1000] if after else []
        variables = {
            "first": PAGE_SIZE,
            "after": after,
            "status": status or None,
            "search": search or None,
            "spf": spf.upper() or None,
        }
        data = (await self.dashboard.client.run(identity, ACCOUNTS, variables))["accounts"]
        filters = {"q": search, "status": status, "spf": spf}
        base_query = {key: value for key, value in filters.items() if value}

        def page_link(cursor: str | None, previous: list[str]) -> str:
            query: list[tuple[str, str]] = list(base_query.items())
            if cursor:
                query += [("after", cursor), *(("prev", p) for p in previous)]
            return "/mail-accounts" + (f"?{urlencode(query)}" if query else "")

        next_link = (
            page_link(data["pageInfo"]["endCursor"], [*history, after or ""])
            if data["pageInfo"]["hasNextPage"]
            else None
        )
        previous_link = page_link(history[-1] or None, history[:-1]) if history else None
        t = self.dashboard.texts(request)
        return self.dashboard.render(
            request,
            "accounts.html",
            {
                "identity": identity,
                "accounts": [edge["node"] for edge in data["edges"]],
                "total": data["totalCount"],
                "search": search,
                "status": status,
                "status_filters": filter_options(t, STATUS_FILTERS),
                "spf": spf,
                "spf_filters": filter_options(t, SPF_FILTERS),
                "spf_summary": pop_spf_summary(request, t),
                "problems_link": PROBLEMS_LINK,
                "filtered": bool(base_query),
                "page": len(history) + 1,
                "pages": max(1, math.ceil(data["totalCount"] / PAGE_SIZE)),
                "next_link": next_link,
                "previous_link": previous_link,
                "here": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            },
        )

    async def new_form(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/new."""
        values = {"email": "", "senderName": "", "active": True}
        return self.dashboard.render(
            request, "account_new.html", {"identity": identity, "values": values, "errors": {}, "general": []}
        )

    async def create(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/new: errors are shown at their field; success leads to the account page."""
        values = {
            "email": str(form.get("email", "")),
            "senderName": str(form.get("senderName", "")),
            "active": form.get("active") == "on",
        }
        data = (await self.dashboard.client.run(identity, CREATE_ACCOUNT, {"input": values}))["createAccount"]
        if data["userErrors"]:
            errors, general = field_errors(data["userErrors"])
            return self.dashboard.render(
                request,
                "account_new.html",
                {"identity": identity, "values": values, "errors": errors, "general": general},
                status_code=422,
            )
        self.dashboard.flash(request, "created")
        created = present(data["account"], CREATE_ACCOUNT)
        return RedirectResponse(f"/mail-accounts/{to_slug(created['id'])}", status_code=303)

    async def detail(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}: addresses, forwarding instruction, actions, domain configuration.

        While a merge or delete runs the page shows its progress and reloads itself with `?finished=…`: once
        the account is gone, that reload says so and goes on to the merge's target or the list.
        """
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            finished = request.query_params.get("finished", "")
            if finished in ("MERGE", "DELETE"):
                self.dashboard.flash(request, "merge_finished" if finished == "MERGE" else "delete_finished")
                return RedirectResponse(local_path(request.query_params.get("then"), "/mail-accounts"), 303)
            return self.dashboard.not_found(request, identity)
        return self._account_page(request, identity, account, _edit_values(account), {})

    def _account_page(
        self,
        request: Request,
        identity: DashboardIdentity,
        account: AccountDetail,
        values: dict[str, str],
        errors: dict[str, str],
        general: list[str] | None = None,
        status_code: int = 200,
    ) -> Response:
        context = {"identity": identity, "account": account, "values": values, "errors": errors}
        context["general"] = general or []
        return self.dashboard.render(request, "account.html", context, status_code=status_code)

    async def update(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/edit: new address and sender name; errors at their field on the page."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.dashboard.not_found(request, identity)
        values = {"email": str(form.get("email", "")), "senderName": str(form.get("senderName", ""))}
        variables = {"input": {"accountId": account["id"], **values}}
        data = (await self.dashboard.client.run(identity, UPDATE_ACCOUNT, variables))["updateAccount"]
        if data["userErrors"]:
            errors, general = field_errors(data["userErrors"])
            if "accountId" in errors:
                # Deleted or merged since the page was loaded.
                return self.dashboard.not_found(request, identity)
            return self._account_page(request, identity, account, values, errors, general, status_code=422)
        updated = present(data["account"], UPDATE_ACCOUNT)
        # A new address voids the SPF result of the old domain: say why the panel asks for a check again.
        spf_cleared = account["spf"] is not None and updated["spf"] is None
        self.dashboard.flash(request, "updated_spf_cleared" if spf_cleared else "updated")
        return RedirectResponse(f"/mail-accounts/{to_slug(updated['id'])}", status_code=303)

    async def set_status(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/status: the toggle of a row; the list comes back focused on that switch."""
        slug = request.path_params["slug"]
        global_id = from_slug(slug)
        status = str(form.get("status", ""))
        back = local_path(str(form.get("next", "")), "/mail-accounts")
        if global_id is None or status not in ("ACTIVE", "INACTIVE"):
            return self.dashboard.not_found(request, identity)
        variables = {"input": {"accountId": global_id, "status": status}}
        data = (await self.dashboard.client.run(identity, SET_STATUS, variables))["setStatus"]
        if data["userErrors"]:
            pending = data["userErrors"][0]["code"] == "OPERATION_PENDING"
            self.dashboard.flash(request, "operation_pending" if pending else "not_found")
        else:
            self.dashboard.flash(request, "activated" if status == "ACTIVE" else "deactivated")
        # Going to a fragment focuses its element when it can take focus: the list returns focused on this switch.
        return RedirectResponse(f"{back.split('#', 1)[0]}#status-{slug}", status_code=303)

    async def delete_form(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/delete: what is lost, and the field to type the address."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.dashboard.not_found(request, identity)
        return self.dashboard.render(
            request, "account_delete.html", {"identity": identity, "account": account, "error": None}
        )

    async def delete(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/delete: only with the typed address."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.dashboard.not_found(request, identity)
        confirm = str(form.get("confirm", ""))
        variables = {"input": {"accountId": account["id"], "confirm": confirm}}
        data = (await self.dashboard.client.run(identity, DELETE_ACCOUNT, variables))["deleteAccount"]
        if data["userErrors"]:
            errors, general = field_errors(data["userErrors"])
            error = errors.get("confirm") or " ".join(general) or next(iter(errors.values()), "")
            return self.dashboard.render(
                request,
                "account_delete.html",
                {"identity": identity, "account": account, "error": error},
                status_code=422,
            )
        pending = data["pendingOperation"]
        if pending is not None:
            # Deleted in the background: the account's page shows the progress until it is gone.
            self.dashboard.flash(request, "delete_started", count=pending["total"])
            return RedirectResponse(f"/mail-accounts/{to_slug(account['id'])}", status_code=303)
        self.dashboard.flash(request, "deleted", count=present(data["deletedMessageCount"], DELETE_ACCOUNT))
        return RedirectResponse("/mail-accounts", status_code=303)

    async def _merge_page(
        self,
        request: Request,
        identity: DashboardIdentity,
        account: AccountDetail,
        values: dict[str, str],
        errors: dict[str, str],
        status_code: int = 200,
    ) -> Response:
        data = (await self.dashboard.client.run(identity, MERGE_TARGETS, {"first": MERGE_TARGETS_MAX}))["accounts"]
        targets = [edge["node"] for edge in data["edges"] if edge["node"]["id"] != account["id"]]
        return self.dashboard.render(
            request,
            "account_merge.html",
            {
                "identity": identity,
                "account": account,
                "targets": targets,
                "more_targets": data["totalCount"] > MERGE_TARGETS_MAX,
                "values": values,
                "errors": errors,
            },
            status_code=status_code,
        )

    async def merge_form(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/merge: choose the target, see what moves, confirm."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.dashboard.not_found(request, identity)
        values = {"targetId": request.query_params.get("targetId", ""), "confirm": ""}
        return await self._merge_page(request, identity, account, values, {})

    async def merge(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/merge: moves the messages into the target and deletes this account."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.dashboard.not_found(request, identity)
        values = {"targetId": str(form.get("targetId", "")), "confirm": str(form.get("confirm", ""))}
        if not values["targetId"]:
            t = self.dashboard.texts(request)
            errors = {"targetId": t.gettext("Please choose the mail account the messages are moved to.")}
            return await self._merge_page(request, identity, account, values, errors, status_code=422)
        variables = {"input": {"sourceId": account["id"], "targetId": values["targetId"], "confirm": values["confirm"]}}
        data = (await self.dashboard.client.run(identity, MERGE_ACCOUNTS, variables))["mergeAccounts"]
        if data["userErrors"]:
            errors, general = field_errors(data["userErrors"])
            if general:
                errors.setdefault("confirm", " ".join(general))
            return await self._merge_page(request, identity, account, values, errors, status_code=422)
        pending = data["pendingOperation"]
        if pending is not None:
            # Merged in the background: this account's page shows the progress until it is gone.
            self.dashboard.flash(request, "merge_started", count=pending["total"])
            return RedirectResponse(f"/mail-accounts/{to_slug(account['id'])}", status_code=303)
        self.dashboard.flash(request, "merged", count=present(data["movedMessageCount"], MERGE_ACCOUNTS))
        target = present(data["account"], MERGE_ACCOUNTS)
        return RedirectResponse(f"/mail-accounts/{to_slug(target['id'])}", status_code=303)
