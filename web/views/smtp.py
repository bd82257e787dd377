"""An account's own SMTP server: the form, saving it and going back to the platform relay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from schema import DashboardIdentity
from texts import N_
from web.client import OperationFailed
from web.formatting import from_slug
from web.forms import field_errors
from web.results import ACCOUNT_SMTP_SERVER, CLEAR_SMTP_SERVER, SET_SMTP_SERVER, AccountSmtpServer

if TYPE_CHECKING:
    from web.dashboard import Dashboard

__all__ = ["SMTP_SECURITIES", "SmtpViews"]

# The choices of the security field: value -> label (English source, translated when shown).
SMTP_SECURITIES = {
    "STARTTLS": N_("STARTTLS (port 587)"),
    "TLS": N_("SSL/TLS (port 465)"),
    "NONE": N_("None (not recommended)"),
}


class SmtpViews:
    """/mail-accounts/{slug}/smtp and /mail-accounts/{slug}/smtp/clear."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    def _smtp_page(
        self,
        request: Request,
        identity: DashboardIdentity,
        account: AccountSmtpServer,
        values: dict[str, str | int],
        errors: dict[str, str],
        general: list[str],
        status_code: int = 200,
    ) -> Response:
        t = self.dashboard.texts(request)
        return self.dashboard.render(
            request,
            "smtp.html",
            {
                "identity": identity,
                "account": account,
                "values": values,
                "errors": errors,
                "general": general,
                "securities": {value: t.gettext(label) for value, label in SMTP_SECURITIES.items()},
            },
            status_code=status_code,
        )

    async def _smtp_account(self, identity: DashboardIdentity, slug: str) -> AccountSmtpServer | None:
        global_id = from_slug(slug)
        if global_id is None:
            return None
        return (await self.dashboard.client.run(identity, ACCOUNT_SMTP_SERVER, {"id": global_id}))["account"]

    async def smtp_form(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/smtp: the own SMTP server, or the platform relay."""
        account = await self._smtp_account(identity, request.path_params["slug"])
        if account is None:
            return self.dashboard.not_found(request, identity)
        server = account["smtpServer"]
        values: dict[str, str | int] = (
            {"host": server["host"], "port": server["port"], "security": server["security"]}
            if server
            else {"host": "", "port": 587, "security": "STARTTLS"}
        )
        values["username"] = (server["username"] if server else "") or ""
        return self._smtp_page(request, identity, account, values, {}, [])

    async def smtp_save(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/smtp: an empty password keeps the stored one."""
        account = await self._smtp_account(identity, request.path_params["slug"])
        if account is None:
            return self.dashboard.not_found(request, identity)
        port_text = str(form.get("port", "")).strip()
        security = str(form.get("security", "STARTTLS"))
        host, username = str(form.get("host", "")).strip(), str(form.get("username", "")).strip()
        security = security if security in SMTP_SECURITIES else "STARTTLS"
        values: dict[str, str | int] = {"host": host, "port": port_text, "security": security, "username": username}
        t = self.dashboard.texts(request)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            errors = {"port": t.gettext("Please enter a port between 1 and 65535.")}
            return self._smtp_page(request, identity, account, values, errors, [], status_code=422)
        password = str(form.get("password", ""))
        variables = {
            "input": {
                "accountId": account["id"],
                "host": host,
                "port": int(port_text),
                "security": security,
                "username": username or None,
                "password": password or None,
            }
        }
        try:
            data = (await self.dashboard.client.run(identity, SET_SMTP_SERVER, variables))["setSmtpServer"]
        except OperationFailed:
            general = [t.gettext("The own SMTP server cannot be saved on this server (SECRET_KEY is missing).")]
            return self._smtp_page(request, identity, account, values, {}, general, status_code=503)
        if data["userErrors"]:
            errors, general = field_errors(data["userErrors"])
            return self._smtp_page(request, identity, account, values, errors, general, status_code=422)
        self.dashboard.flash(request, "smtp_saved")
        return RedirectResponse(f"/mail-accounts/{request.path_params['slug']}", status_code=303)

    async def smtp_clear(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/smtp/clear: back to the platform relay."""
        global_id = from_slug(request.path_params["slug"])
        if global_id is None:
            return self.dashboard.not_found(request, identity)
        variables = {"input": {"accountId": global_id}}
        data = (await self.dashboard.client.run(identity, CLEAR_SMTP_SERVER, variables))["clearSmtpServer"]
        self.dashboard.flash(request, "not_found" if data["userErrors"] else "smtp_cleared")
        return RedirectResponse(f"/mail-accounts/{request.path_params['slug']}", status_code=303)
