"""Messages in the API: the Message type, an account's message connection, sending and own SMTP servers."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any, Self

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import messages as message_ops
from resolvers import sending, smtp_servers
from resolvers.errors import AccountError
from resolvers.messages import Direction as DirectionValue
from resolvers.messages import Message as MessageRow
from resolvers.pagination import InvalidPageRequest, encode_cursor
from resolvers.smtp_servers import SmtpSecurity as SmtpSecurityValue
from resolvers.smtp_servers import SmtpServerSettings
from schema.accounts import MailAccount, WriteScope
from schema.context import Context
from schema.errors import PublicError, UserError, UserErrorCode, user_error
from schema.ids import decode_id, node_row_id, require_account_id
from schema.messages import request_error_message, user_error_message

__all__ = [
    "Direction",
    "MailMutation",
    "MailQuery",
    "Message",
    "MessageConnection",
    "MessageContent",
    "MessageHeader",
    "SmtpServer",
    "account_messages",
]


@strawberry.enum(description="INBOUND arrived through the listener, OUTBOUND was sent through a relay.")
class Direction(Enum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


@strawberry.enum(description="Transport security of an SMTP server: STARTTLS, TLS from the start, or NONE.")
class SmtpSecurity(Enum):
    STARTTLS = "STARTTLS"
    TLS = "TLS"
    NONE = "NONE"


@strawberry.type(description="An account's own SMTP server. The password is write-only.")
class SmtpServer:
    host: str
    port: int
    security: SmtpSecurity
    username: str | None

    @classmethod
    def from_settings(cls, value: SmtpServerSettings) -> Self:
        return cls(
            host=value.host, port=value.port, security=SmtpSecurity(value.security.value), username=value.username
        )


@strawberry.type(description="A header field of a message, RFC 2047 words decoded.")
class MessageHeader:
    name: str
    value: str


@strawberry.type(description="A message as a reader sees it: headers, one text and the attachments' names.")
class MessageContent:
    headers: list[MessageHeader] = strawberry.field(
        description="From, To, Cc, Reply-To, Date, Subject and Message-ID, in this order, where present."
    )
    text: str = strawberry.field(
        description="The text/plain body, else the HTML source (see htmlOnly); broken MIME gives the raw body."
    )
    html_only: bool = strawberry.field(description="The message has no text part: text is HTML source.")
    attachments: list[str] = strawberry.field(description="File names (or content types) of the attachments.")
    truncated: bool = strawberry.field(description="text was cut at 200,000 characters; raw has all of it.")

    @classmethod
    def from_content(cls, content: message_ops.MessageContent) -> Self:
        return cls(
            headers=[MessageHeader(name=name, value=value) for name, value in content.headers],
            text=content.text,
            html_only=content.html_only,
            attachments=content.attachments,
            truncated=content.truncated,
        )


@strawberry.type(description="A stored mail of an account. The raw message is loaded only when asked for.")
class Message(relay.Node):
    id: relay.NodeID[int]
    direction: Direction
    message_id: str | None = strawberry.field(description="The Message-ID header, or null.")
    from_: str = strawberry.field(name="from", description="The From header, RFC 2047 words decoded.")
    to: str = strawberry.field(description="The To header, decoded.")
    subject: str = strawberry.field(description="The Subject header, decoded.")
    date: datetime | None = strawberry.field(description="The Date header, or null if missing or broken.")
    received_at: datetime = strawberry.field(description="When the service stored the message.")
    size: int = strawberry.field(description="Size of the raw message in bytes.")
    is_bounce: bool = strawberry.field(description="Arrived at the bounce address p<N>.out@.")

    @strawberry.field(
        description="The raw message as text (UTF-8; bytes that are not UTF-8 become U+FFFD). "
        "Use rawBase64 for the exact bytes."
    )
    async def raw(self) -> str:
        return (await message_ops.message_raw(self.id)).decode("utf-8", errors="replace")

    @strawberry.field(description="The raw message, byte for byte, base64-encoded.")
    async def raw_base64(self) -> str:
        return base64.b64encode(await message_ops.message_raw(self.id)).decode("ascii")

    @strawberry.field(description="Headers, text and attachments, parsed from the raw message for reading.")
    async def content(self) -> MessageContent:
        return MessageContent.from_content(await message_ops.message_content(self.id))

    @classmethod
    def from_row(cls, row: MessageRow) -> Self:
        return cls(
            id=row.id,
            direction=Direction(DirectionValue(row.direction).value),
            message_id=row.message_id_header,
            from_=row.from_header,
            to=row.to_header,
            subject=row.subject,
            date=row.date,
            received_at=row.received_at,
            size=row.size,
            is_bounce=row.is_bounce,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        ids = [node_row_id("Message", node_id) or 0 for node_id in node_ids]
        rows = {row.id: row for row in await message_ops.get_messages(info.context.tenant_id, ids)}
        return [cls.from_row(rows[i]) if i in rows else None for i in ids]


@strawberry.type(name="MessageConnection")
class MessageConnection(relay.Connection[Message]):
    total_count: int = strawberry.field(description="Number of messages matching the filter, all pages.")


async def account_messages(
    info: Info[Context, Any], account_id: int, first: int, after: str | None, direction: Direction | None
) -> MessageConnection:
    """The `MailAccount.messages` connection, newest first."""
    try:
        page = await message_ops.list_messages(
            info.context.tenant_id,
            account_id,
            first=first,
            after=after,
            direction=None if direction is None else DirectionValue(direction.value),
        )
    except InvalidPageRequest as exc:
        message = request_error_message(exc.key, info.context.lang, **exc.params)
        raise PublicError(message, "BAD_USER_INPUT") from None
    edges = [relay.Edge(cursor=encode_cursor(row.id), node=Message.from_row(row)) for row in page.items]
    return MessageConnection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=page.total_count,
    )


# --- inputs and payloads -------------------------------------------------------------------------


@strawberry.input
class SendMessageInput:
    account_id: strawberry.ID
    to: list[str]
    cc: list[str] | None = None
    bcc: list[str] | None = None
    subject: str = ""
    text: str | None = None
    html: str | None = None
    in_reply_to: str | None = strawberry.field(
        default=None, description="The ID of a stored Message, or a Message-ID header <…> to reply to."
    )


@strawberry.type
class SendMessagePayload:
    message: Message | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetSmtpServerInput:
    account_id: strawberry.ID
    host: str
    port: int
    security: SmtpSecurity
    username: str | None = None
    password: str | None = strawberry.field(
        default=None, description="Stored encrypted, never returned; omit to keep the stored one."
    )


@strawberry.input
class ClearSmtpServerInput:
    account_id: strawberry.ID


@strawberry.type
class SmtpServerPayload:
    account: MailAccount | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _refused_error(refused: sending.RefusedRecipient, lang: str) -> UserError:
    """A recipient the server refused while it took the message for the others, at its list entry."""
    return UserError(
        code=UserErrorCode.RECIPIENT_REFUSED,
        field=["input", refused.field, str(refused.index)],
        message=f"{user_error_message('RECIPIENT_REFUSED', lang)} {refused.reply}",
    )


def _send_error(exc: AccountError, lang: str) -> UserError:
    """Recipient errors point at the list entry; SEND_FAILED carries the relay's answer."""
    if isinstance(exc, sending.SmtpPasswordUnreadable):
        return UserError(
            code=UserErrorCode(exc.code), field=None, message=user_error_message("SMTP_PASSWORD_UNREADABLE", lang)
        )
    if isinstance(exc, sending.SmtpServerUnreachable):
        return UserError(
            code=UserErrorCode(exc.code), field=None, message=user_error_message("SMTP_SERVER_UNREACHABLE", lang)
        )
    if isinstance(exc, sending.InvalidRecipient) and exc.field:
        return UserError(
            code=UserErrorCode(exc.code),
            field=["input", exc.field, str(exc.params.get("index", 0))],
            message=user_error_message(exc.code, lang),
        )
    if isinstance(exc, sending.SendFailed):
        return UserError(
            code=UserErrorCode(exc.code),
            field=None,
            message=f"{user_error_message(exc.code, lang)} {exc.params.get('reply', '')}".strip(),
        )
    return user_error(exc, lang)


# --- query and mutation ---------------------------------------------------------------------------


@strawberry.type
class MailQuery:
    @strawberry.field(description="One of the tenant's messages by its global ID, with the raw message; or null.")
    async def message(self, info: Info[Context, Any], id: strawberry.ID) -> Message | None:
        message_id = decode_id(id, "Message")
        if message_id is None:
            return None
        row = await message_ops.get_message(info.context.tenant_id, message_id)
        return Message.from_row(row) if row else None


@strawberry.type
class MailMutation:
    @strawberry.mutation(
        permission_classes=[WriteScope],
        description="Send a message as the account; it is stored as OUTBOUND once the relay accepted it.",
    )
    async def send_message(self, info: Info[Context, Any], input: SendMessageInput) -> SendMessagePayload:
        context = info.context
        if context.outbox is None:
            raise PublicError(request_error_message("SENDING_UNAVAILABLE", context.lang), "SENDING_UNAVAILABLE")
        reply_to_message = decode_id(input.in_reply_to, "Message") if input.in_reply_to else None
        draft = sending.Draft(
            to=input.to,
            cc=input.cc or (),
            bcc=input.bcc or (),
            subject=input.subject,
            text=input.text,
            html=input.html,
            in_reply_to=None if reply_to_message is not None else input.in_reply_to,
            in_reply_to_message_id=reply_to_message,
        )
        try:
            sent = await sending.send_message(
                context.outbox, context.tenant_id, require_account_id(input.account_id), draft
            )
        except AccountError as exc:
            return SendMessagePayload(user_errors=[_send_error(exc, context.lang)])
        return SendMessagePayload(
            message=Message.from_row(sent.message),
            user_errors=[_refused_error(refused, context.lang) for refused in sent.refused],
        )

    @strawberry.mutation(
        permission_classes=[WriteScope],
        description="Send the account's mail through its own SMTP server, with its own address as envelope sender.",
    )
    async def set_smtp_server(self, info: Info[Context, Any], input: SetSmtpServerInput) -> SmtpServerPayload:
        context = info.context
        if context.outbox is None or context.outbox.secret_key is None:
            raise PublicError(request_error_message("SECRET_KEY_MISSING", context.lang), "SENDING_UNAVAILABLE")
        try:
            row = await smtp_servers.set_smtp_server(
                context.tenant_id,
                require_account_id(input.account_id),
                secret_key=context.outbox.secret_key,
                outbound=context.outbox.outbound,
                host=input.host,
                port=input.port,
                security=SmtpSecurityValue(input.security.value),
                username=input.username,
                password=input.password,
            )
        except smtp_servers.SmtpServerNotAllowed as exc:
            message = user_error_message("SMTP_SERVER_NOT_ALLOWED", context.lang)
            return SmtpServerPayload(
                user_errors=[UserError(code=UserErrorCode(exc.code), field=["input", "host"], message=message)]
            )
        except AccountError as exc:
            return SmtpServerPayload(user_errors=[user_error(exc, context.lang)])
        return SmtpServerPayload(account=MailAccount.from_row(row, context.mailbox_domain))

    @strawberry.mutation(
        permission_classes=[WriteScope], description="Send the account's mail through the platform relay again."
    )
    async def clear_smtp_server(self, info: Info[Context, Any], input: ClearSmtpServerInput) -> SmtpServerPayload:
        context = info.context
        try:
            row = await smtp_servers.clear_smtp_server(context.tenant_id, require_account_id(input.account_id))
        except AccountError as exc:
            return SmtpServerPayload(user_errors=[user_error(exc, context.lang)])
        return SmtpServerPayload(account=MailAccount.from_row(row, context.mailbox_domain))
