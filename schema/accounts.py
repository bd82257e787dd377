"""The MailAccount type, its connection, and the account queries and mutations."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry
from strawberry import relay
from strawberry.permission import BasePermission
from strawberry.types import Info

from resolvers import accounts as ops
from resolvers.accounts import MailAccount as MailAccountRow
from resolvers.errors import AccountError
from resolvers.mailboxes import inbound_address, outbound_address
from resolvers.pagination import InvalidPageRequest, encode_cursor
from resolvers.smtp_servers import SmtpServerSettings, smtp_server_of
from resolvers.spf import SpfReportView, stored_report
from schema.context import Context
from schema.errors import PublicError, UserError, user_error
from schema.ids import decode_id, node_row_id, require_account_id
from schema.messages import request_error_message

if TYPE_CHECKING:
    from schema.mail import Direction, MessageConnection, SmtpServer
    from schema.spf import SpfReport

__all__ = ["AccountMutation", "AccountQuery", "MailAccount", "WriteScope"]


class WriteScope(BasePermission):
    """Mutations need a token (or dashboard user) with write scope."""

    def has_permission(self, source: Any, info: Info[Context, Any], **kwargs: Any) -> bool:
        # Raised here rather than through `message`: one permission instance serves every request, and the
        # text is in the request's language.
        if not info.context.principal.can_write:
            raise PublicError(request_error_message("READ_ONLY_TOKEN", info.context.lang), "FORBIDDEN")
        return True


@strawberry.enum
class AccountStatus(Enum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


@strawberry.enum(description="An account's SPF state, to filter the list by.")
class SpfFilter(Enum):
    OK = strawberry.enum_value("OK", description="The last check passed.")
    PROBLEM = strawberry.enum_value(
        "PROBLEM", description="Checked, without a passing verdict (a check that could not run included)."
    )
    UNCHECKED = strawberry.enum_value("UNCHECKED", description="Never checked, or the address changed since.")


_SPF_FILTERS: dict[SpfFilter, ops.SpfFilter] = {
    SpfFilter.OK: "ok",
    SpfFilter.PROBLEM: "problem",
    SpfFilter.UNCHECKED: "unchecked",
}


@strawberry.enum(description="What runs in the background on an account.")
class PendingOperationKind(Enum):
    MERGE = strawberry.enum_value("MERGE", description="Its messages move to the target; then it is deleted.")
    DELETE = strawberry.enum_value("DELETE", description="Its messages are deleted; then the account.")


@strawberry.type(
    description="A merge or delete of a large account, running in the background in batches. From its start the "
    "account receives nothing of its own: a merge's deliveries go to the target, a delete's are refused."
)
class PendingOperation:
    kind: PendingOperationKind
    progress: int = strawberry.field(description="Messages moved (MERGE) or deleted (DELETE) so far.")
    total: int = strawberry.field(description="Messages the account had when the operation started.")
    started_at: datetime
    target_id: strawberry.ID | None = strawberry.field(description="The merge's target account; null for DELETE.")

    @classmethod
    def from_view(cls, view: ops.PendingOperationView | None) -> Self | None:
        if view is None:
            return None
        return cls(
            kind=PendingOperationKind(view.kind.value),
            progress=view.done,
            total=view.total,
            started_at=view.started_at,
            target_id=None if view.target_id is None else _global_id(view.target_id),
        )


@strawberry.type(description="One of the tenant's own addresses with its platform mailbox.")
class MailAccount(relay.Node):
    id: relay.NodeID[int]
    email: str = strawberry.field(description="The address as entered.")
    sender_name: str = strawberry.field(description="Shown as the name in From: of sent mail.")
    status: AccountStatus
    inbound_address: str = strawberry.field(description="p<N>@<MAILBOX_DOMAIN>: forward replies here.")
    outbound_address: str = strawberry.field(description="p<N>.out@<MAILBOX_DOMAIN>: envelope sender.")
    created_at: datetime
    updated_at: datetime
    pending_operation: PendingOperation | None = strawberry.field(
        default=None, description="The merge or delete running in the background, or null."
    )
    smtp: strawberry.Private[SmtpServerSettings | None] = None
    spf_view: strawberry.Private[SpfReportView | None] = None

    @strawberry.field(description="The last SPF report of the account's domain (spfCheck), or null before the first.")
    def spf(self, info: Info[Context, Any]) -> Annotated[SpfReport, strawberry.lazy("schema.spf")] | None:
        from schema.spf import SpfReport

        return SpfReport.from_view(self.spf_view, info.context.lang) if self.spf_view else None

    @strawberry.field(description="The account's own SMTP server (never the password), or null: platform relay.")
    def smtp_server(self) -> Annotated[SmtpServer, strawberry.lazy("schema.mail")] | None:
        from schema.mail import SmtpServer

        return SmtpServer.from_settings(self.smtp) if self.smtp else None

    @strawberry.field(description="The account's messages, newest first; `first` is at most 100.")
    async def messages(
        self,
        info: Info[Context, Any],
        first: int | None = 50,
        after: str | None = None,
        direction: Annotated[Direction, strawberry.lazy("schema.mail")] | None = None,
    ) -> Annotated[MessageConnection, strawberry.lazy("schema.mail")]:
        from schema.mail import account_messages

        return await account_messages(info, self.id, 50 if first is None else first, after, direction)

    @strawberry.field(description="Number of stored messages, inbound and outbound.")
    async def message_count(self, info: Info[Context, Any]) -> int:
        return await info.context.message_count_loader.load(self.id)

    @classmethod
    def from_row(cls, row: MailAccountRow, mailbox_domain: str) -> Self:
        return cls(
            id=row.id,
            email=row.email,
            sender_name=row.sender_name,
            status=AccountStatus.ACTIVE if row.active else AccountStatus.INACTIVE,
            inbound_address=inbound_address(row.mailbox_number, mailbox_domain),
            outbound_address=outbound_address(row.mailbox_number, mailbox_domain),
            created_at=row.created_at,
            updated_at=row.updated_at,
            pending_operation=PendingOperation.from_view(ops.pending_operation_of(row)),
            smtp=smtp_server_of(row),
            spf_view=stored_report(row),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        context = info.context
        ids = [node_row_id("MailAccount", node_id) or 0 for node_id in node_ids]
        rows = {row.id: row for row in await ops.get_accounts(context.tenant_id, ids)}
        return [cls.from_row(rows[i], context.mailbox_domain) if i in rows else None for i in ids]


@strawberry.type(name="MailAccountConnection")
class MailAccountConnection(relay.Connection[MailAccount]):
    total_count: int = strawberry.field(description="Number of accounts matching the filters, all pages.")


# --- inputs and payloads -------------------------------------------------------------------------


@strawberry.input
class CreateAccountInput:
    email: str
    sender_name: str
    active: bool = True


@strawberry.type
class CreateAccountPayload:
    account: MailAccount | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateAccountInput:
    account_id: strawberry.ID
    email: str | None = strawberry.field(
        default=None,
        description="The new address; null keeps it. Another address keeps the mailbox number and the "
        "messages and clears the stored SPF result (spf is null until the next spfCheck).",
    )
    sender_name: str | None = strawberry.field(default=None, description="The new sender name; null keeps it.")


@strawberry.type
class UpdateAccountPayload:
    account: MailAccount | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetStatusInput:
    account_id: strawberry.ID
    status: AccountStatus


@strawberry.type
class SetStatusPayload:
    account: MailAccount | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class DeleteAccountInput:
    account_id: strawberry.ID
    confirm: str = strawberry.field(description="Must repeat the account's email address.")


_IN_BACKGROUND = (
    "Set when the operation runs in the background (more messages than BACKGROUND_OPERATION_MESSAGES): the "
    "counts are what it has done at its end; follow it on account(id).pendingOperation."
)


@strawberry.type
class DeleteAccountPayload:
    deleted_account_id: strawberry.ID | None = None
    deleted_message_count: int | None = None
    pending_operation: PendingOperation | None = strawberry.field(default=None, description=_IN_BACKGROUND)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class MergeAccountsInput:
    source_id: strawberry.ID
    target_id: strawberry.ID
    confirm: str = strawberry.field(description="Must repeat the source account's email address.")


@strawberry.type
class MergeAccountsPayload:
    account: MailAccount | None = strawberry.field(default=None, description="The target account.")
    moved_message_count: int | None = None
    deleted_account_id: strawberry.ID | None = None
    pending_operation: PendingOperation | None = strawberry.field(default=None, description=_IN_BACKGROUND)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _global_id(account_id: int) -> strawberry.ID:
    return strawberry.ID(str(relay.GlobalID("MailAccount", str(account_id))))


# --- query and mutation ---------------------------------------------------------------------------


@strawberry.type
class AccountQuery:
    @strawberry.field(description="The tenant's mail accounts, oldest first; `first` is at most 100.")
    async def accounts(
        self,
        info: Info[Context, Any],
        first: int | None = 50,
        after: str | None = None,
        status: AccountStatus | None = None,
        search: str | None = None,
        spf: SpfFilter | None = None,
    ) -> MailAccountConnection:
        context = info.context
        try:
            page = await ops.list_accounts(
                context.tenant_id,
                first=50 if first is None else first,
                after=after,
                active=None if status is None else status is AccountStatus.ACTIVE,
                search=search,
                spf=None if spf is None else _SPF_FILTERS[spf],
            )
        except InvalidPageRequest as exc:
            raise PublicError(request_error_message(exc.key, context.lang, **exc.params), "BAD_USER_INPUT") from None
        edges = [
            relay.Edge(cursor=encode_cursor(row.id), node=MailAccount.from_row(row, context.mailbox_domain))
            for row in page.items
        ]
        return MailAccountConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count,
        )

    @strawberry.field(description="One of the tenant's accounts by its global ID, or null.")
    async def account(self, info: Info[Context, Any], id: strawberry.ID) -> MailAccount | None:
        account_id = decode_id(id, "MailAccount")
        if account_id is None:
            return None
        row = await ops.get_account(info.context.tenant_id, account_id)
        return MailAccount.from_row(row, info.context.mailbox_domain) if row else None


@strawberry.type
class AccountMutation:
    @strawberry.mutation(permission_classes=[WriteScope])
    async def create_account(self, info: Info[Context, Any], input: CreateAccountInput) -> CreateAccountPayload:
        context = info.context
        try:
            row = await ops.create_account(context.tenant_id, input.email, input.sender_name, input.active)
        except AccountError as exc:
            return CreateAccountPayload(user_errors=[user_error(exc, context.lang)])
        return CreateAccountPayload(account=MailAccount.from_row(row, context.mailbox_domain))

    @strawberry.mutation(
        permission_classes=[WriteScope],
        description="Change an account's address and/or sender name; give at least one of them.",
    )
    async def update_account(self, info: Info[Context, Any], input: UpdateAccountInput) -> UpdateAccountPayload:
        context = info.context
        if input.email is None and input.sender_name is None:
            raise PublicError(request_error_message("UPDATE_WITHOUT_CHANGES", context.lang), "BAD_USER_INPUT")
        try:
            row = await ops.update_account(
                context.tenant_id,
                require_account_id(input.account_id),
                email=input.email,
                sender_name=input.sender_name,
            )
        except AccountError as exc:
            return UpdateAccountPayload(user_errors=[user_error(exc, context.lang)])
        return UpdateAccountPayload(account=MailAccount.from_row(row, context.mailbox_domain))

    @strawberry.mutation(permission_classes=[WriteScope])
    async def set_status(self, info: Info[Context, Any], input: SetStatusInput) -> SetStatusPayload:
        context = info.context
        try:
            row = await ops.set_status(
                context.tenant_id,
                require_account_id(input.account_id),
                input.status is AccountStatus.ACTIVE,
            )
        except AccountError as exc:
            return SetStatusPayload(user_errors=[user_error(exc, context.lang)])
        return SetStatusPayload(account=MailAccount.from_row(row, context.mailbox_domain))

    @strawberry.mutation(permission_classes=[WriteScope])
    async def delete_account(self, info: Info[Context, Any], input: DeleteAccountInput) -> DeleteAccountPayload:
        context = info.context
        try:
            result = await ops.delete_account(
                context.tenant_id,
                require_account_id(input.account_id),
                input.confirm,
                background=context.background_operations,
            )
        except AccountError as exc:
            return DeleteAccountPayload(user_errors=[user_error(exc, context.lang)])
        return DeleteAccountPayload(
            deleted_account_id=_global_id(result.account_id),
            deleted_message_count=result.deleted_message_count,
            pending_operation=PendingOperation.from_view(result.pending),
        )

    @strawberry.mutation(permission_classes=[WriteScope])
    async def merge_accounts(self, info: Info[Context, Any], input: MergeAccountsInput) -> MergeAccountsPayload:
        context = info.context
        try:
            result = await ops.merge_accounts(
                context.tenant_id,
                require_account_id(input.source_id, "sourceId"),
                require_account_id(input.target_id, "targetId"),
                input.confirm,
                background=context.background_operations,
            )
        except AccountError as exc:
            return MergeAccountsPayload(user_errors=[user_error(exc, context.lang)])
        return MergeAccountsPayload(
            account=MailAccount.from_row(result.target, context.mailbox_domain),
            moved_message_count=result.moved_message_count,
            deleted_account_id=_global_id(result.deleted_account_id),
            pending_operation=PendingOperation.from_view(result.pending),
        )
