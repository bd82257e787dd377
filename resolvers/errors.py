"""Expected failures of the operations, each with a stable code and the input field it concerns."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccountError",
    "AccountInactive",
    "ConfirmationMismatch",
    "DuplicateEmail",
    "InvalidEmail",
    "InvalidSenderName",
    "NotFound",
    "OperationPending",
    "SameAccount",
]


class AccountError(Exception):
    """Base of the expected failures: `code` is stable, `field` names the input, `params` fill the message."""

    code: ClassVar[str] = "INVALID_INPUT"

    def __init__(self, field: str | None = None, **params: object) -> None:
        super().__init__(f"{self.code} ({field})" if field else self.code)
        self.field = field
        self.params = params


class InvalidEmail(AccountError):
    code = "INVALID_EMAIL"


class DuplicateEmail(AccountError):
    code = "DUPLICATE_EMAIL"


class InvalidSenderName(AccountError):
    code = "INVALID_SENDER_NAME"


class NotFound(AccountError):
    code = "NOT_FOUND"


class SameAccount(AccountError):
    code = "SAME_ACCOUNT"


class ConfirmationMismatch(AccountError):
    code = "CONFIRMATION_MISMATCH"


class AccountInactive(AccountError):
    code = "ACCOUNT_INACTIVE"


class OperationPending(AccountError):
    """The account is being merged or deleted in the background (or is a running merge's target)."""

    code = "OPERATION_PENDING"
