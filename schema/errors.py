"""The error contract: `userErrors` on every payload, and top-level errors clients may see."""

from __future__ import annotations

from enum import Enum

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.relay import GlobalIDValueError

from resolvers.errors import AccountError
from schema.messages import DEFAULT_LANGUAGE, request_error_message, user_error_message

__all__ = ["MaskCrashes", "PublicError", "UserError", "UserErrorCode", "should_mask_error", "user_error"]


@strawberry.enum(description="Stable codes of expected failures; clients branch on these, never on text.")
class UserErrorCode(Enum):
    INVALID_EMAIL = "INVALID_EMAIL"
    DUPLICATE_EMAIL = "DUPLICATE_EMAIL"
    INVALID_SENDER_NAME = "INVALID_SENDER_NAME"
    NOT_FOUND = "NOT_FOUND"
    SAME_ACCOUNT = "SAME_ACCOUNT"
    CONFIRMATION_MISMATCH = "CONFIRMATION_MISMATCH"
    ACCOUNT_INACTIVE = "ACCOUNT_INACTIVE"
    OPERATION_PENDING = "OPERATION_PENDING"
    INVALID_RECIPIENT = "INVALID_RECIPIENT"
    INVALID_SUBJECT = "INVALID_SUBJECT"
    INVALID_IN_REPLY_TO = "INVALID_IN_REPLY_TO"
    SEND_FAILED = "SEND_FAILED"
    RECIPIENT_REFUSED = "RECIPIENT_REFUSED"
    INVALID_SMTP_SERVER = "INVALID_SMTP_SERVER"


@strawberry.type(description="An expected failure of a mutation, with the input field it concerns.")
class UserError:
    code: UserErrorCode
    field: list[str] | None = strawberry.field(description="Path to the input field, e.g. [input, email].")
    message: str = strawberry.field(description="Human-readable, in the request's language.")


def user_error(exc: AccountError, lang: str) -> UserError:
    """Map a domain exception of resolvers/ to the API's UserError."""
    return UserError(
        code=UserErrorCode(exc.code),
        field=["input", exc.field] if exc.field else None,
        message=user_error_message(exc.code, lang, exc.params.get("reason")),
    )


class PublicError(GraphQLError):
    """A top-level error whose message is meant for the client (limits, bad cursors, scope)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def should_mask_error(error: GraphQLError) -> bool:
    """Hide crashes from clients; keep validation and limit errors and errors raised on purpose.

    Errors raised on purpose are GraphQLErrors: our PublicError and Strawberry's permission error.
    Strawberry's `node(id:)` raises GlobalIDValueError for an ID naming no Node type: bad input, not a crash.
    """
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError | GlobalIDValueError)


class MaskCrashes(MaskErrors):
    """Strawberry's MaskErrors (with `should_mask_error`), saying "Unexpected error." in the request's language.

    Strawberry makes one instance per execution from the factory, so the text may be set per request.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask_error)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        lang = getattr(self.execution_context.context, "lang", DEFAULT_LANGUAGE)
        self.error_message = request_error_message("UNEXPECTED_ERROR", lang)
        return super().anonymise_error(error)
