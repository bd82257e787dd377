"""An account's messages: the list by direction, and one message shown as text."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from schema import DashboardIdentity
from web.formatting import from_slug
from web.mime import header_rows
from web.results import ACCOUNT_MESSAGES, MESSAGE_VIEW

if TYPE_CHECKING:
    from web.dashboard import Dashboard

__all__ = ["MESSAGE_PAGE_SIZE", "MessageViews"]

MESSAGE_PAGE_SIZE = 25


class MessageViews:
    """/mail-accounts/{slug}/messages and /mail-accounts/{slug}/messages/{message}."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def messages(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/messages: newest first, filtered by direction."""
        global_id = from_slug(request.path_params["slug"])
        if global_id is None:
            return self.dashboard.not_found(request, identity)
        direction = request.query_params.get("direction", "")
        direction = direction if direction in ("INBOUND", "OUTBOUND") else ""
        after = request.query_params.get("after") or None
        variables = {"id": global_id, "first": MESSAGE_PAGE_SIZE, "after": after, "direction": direction or None}
        account = (await self.dashboard.client.run(identity, ACCOUNT_MESSAGES, variables))["account"]
        if account is None:
            return self.dashboard.not_found(request, identity)
        connection = account["messages"]
        next_query = {"after": connection["pageInfo"]["endCursor"], **({"direction": direction} if direction else {})}
        return self.dashboard.render(
            request,
            "messages.html",
            {
                "identity": identity,
                "account": account,
                "messages": [edge["node"] for edge in connection["edges"]],
                "total": connection["totalCount"],
                "direction": direction,
                "next_link": f"?{urlencode(next_query)}" if connection["pageInfo"]["hasNextPage"] else None,
                "first_link": f"?{urlencode({'direction': direction})}"
                if after and direction
                else ("?" if after else None),
            },
        )

    async def message(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/messages/{message}: headers and text as the API parsed them, always as text."""
        account_id, message_id = from_slug(request.path_params["slug"]), from_slug(request.path_params["message"])
        if account_id is None or message_id is None:
            return self.dashboard.not_found(request, identity)
        data = await self.dashboard.client.run(identity, MESSAGE_VIEW, {"accountId": account_id, "id": message_id})
        account, message = data["account"], data["message"]
        if account is None or message is None:
            return self.dashboard.not_found(request, identity)
        return self.dashboard.render(
            request,
            "message.html",
            {
                "identity": identity,
                "account": account,
                "message": message,
                "content": message["content"],
                "header_rows": header_rows(message, self.dashboard.language(request)),
            },
        )
