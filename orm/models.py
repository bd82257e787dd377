"""The Tortoise models: tenants, API tokens, mail accounts, mailbox numbers and messages."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

__all__ = [
    "ApiToken",
    "DashboardUser",
    "Direction",
    "MailAccount",
    "Mailbox",
    "Message",
    "MessageBody",
    "PendingOperation",
    "RateCounter",
    "Scope",
    "SmtpSecurity",
    "Tenant",
]


class Scope(StrEnum):
    """What an API token may do: `read` runs queries, `write` also mutations."""

    READ = "read"
    WRITE = "write"


class Direction(StrEnum):
    """Whether a message came in through the listener or went out through a relay."""

    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class PendingOperation(StrEnum):
    """A merge or delete of a large account that runs as a job, in batches that each commit quickly."""

    MERGE = "MERGE"
    DELETE = "DELETE"


class SmtpSecurity(StrEnum):
    """Transport security of an account's own SMTP server."""

    STARTTLS = "STARTTLS"
    TLS = "TLS"
    NONE = "NONE"


class Tenant(Model):
    """A company. Every other row belongs to exactly one tenant."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tenant"


class ApiToken(Model):
    """A bearer token of a tenant. Only the SHA-256 of the token is stored."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="tokens", on_delete=fields.CASCADE
    )
    label = fields.CharField(max_length=100, default="")
    token_hash = fields.CharField(max_length=64, unique=True)
    scope = fields.CharEnumField(Scope, max_length=8)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    tenant_id: int

    class Meta:
        table = "api_token"


class DashboardUser(Model):
    """A person who signs in to the dashboard and acts for its tenant. The password is kept as an argon2 hash."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="dashboard_users", on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=320)
    # Unique across tenants: the login form asks for the address only.
    email_normalized = fields.CharField(max_length=320, unique=True)
    password_hash = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)
    # Sessions signed in before this moment are void: signing out ends every session of the user.
    sessions_valid_after = fields.DatetimeField(null=True)
    # Set when too many sign-ins failed; only an unlock link, `mailaccounts user unlock` or a password reset clear it.
    locked_at = fields.DatetimeField(null=True)

    tenant_id: int

    class Meta:
        table = "dashboard_user"


class Mailbox(Model):
    """A platform mailbox number. Rows are never deleted, so a number is never handed out twice."""

    number = fields.IntField(primary_key=True, generated=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="mailboxes", on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    released_at = fields.DatetimeField(null=True)

    tenant_id: int

    class Meta:
        table = "mailbox"


class MailAccount(Model):
    """One of a tenant's own addresses, bound to a platform mailbox number."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="accounts", on_delete=fields.RESTRICT
    )
    email = fields.CharField(max_length=320)
    email_normalized = fields.CharField(max_length=320)
    sender_name = fields.CharField(max_length=200)
    active = fields.BooleanField(default=True)
    mailbox_number = fields.IntField(unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    spf_report: Any = fields.JSONField(null=True)
    spf_checked_at = fields.DatetimeField(null=True)
    # The verdict of spf_report, as a column so bulk-check progress and filters need no JSON queries.
    spf_ok = fields.BooleanField(null=True)
    smtp_host = fields.CharField(max_length=253, null=True)
    smtp_port = fields.IntField(null=True)
    smtp_security = fields.CharEnumField(SmtpSecurity, max_length=8, null=True)
    smtp_username = fields.CharField(max_length=320, null=True)
    smtp_password_encrypted = fields.TextField(null=True)
    # Set while a large merge or delete of this account runs as a job (resolvers/account_jobs.py): from its
    # start the account receives nothing of its own (a merge's deliveries go to `merge_target`, a delete's
    # are refused); `operation_done` of `operation_total` messages are moved or deleted so far.
    pending_operation = fields.CharEnumField(PendingOperation, max_length=8, null=True)
    merge_target: fields.ForeignKeyNullableRelation[MailAccount] = fields.ForeignKeyField(
        "models.MailAccount", null=True, on_delete=fields.RESTRICT, related_name=False
    )
    operation_total = fields.IntField(null=True)
    operation_done = fields.IntField(null=True)
    operation_started_at = fields.DatetimeField(null=True)

    tenant_id: int
    merge_target_id: int | None

    class Meta:
        table = "mail_account"
        unique_together = (("tenant", "email_normalized"),)
        # merge_target_id: "is a merge running into this account?" and the RESTRICT check of every delete.
        indexes = (("tenant_id", "id"), ("merge_target_id",))


class Message(Model):
    """A stored mail of an account: header fields for listings. The raw bytes live in MessageBody."""

    id = fields.BigIntField(primary_key=True)
    # RESTRICT: an account can only disappear after its messages were moved or deleted on purpose.
    account: fields.ForeignKeyRelation[MailAccount] = fields.ForeignKeyField(
        "models.MailAccount", related_name="messages", on_delete=fields.RESTRICT
    )
    direction = fields.CharEnumField(Direction, max_length=8)
    message_id_header = fields.CharField(max_length=998, null=True)
    from_header = fields.TextField(default="")
    to_header = fields.TextField(default="")
    subject = fields.TextField(default="")
    date = fields.DatetimeField(null=True)
    size = fields.IntField()
    is_bounce = fields.BooleanField(default=False)
    received_at = fields.DatetimeField(auto_now_add=True)

    account_id: int

    class Meta:
        table = "message"
        indexes = (("account_id", "id"), ("account_id", "message_id_header"))


class MessageBody(Model):
    """The raw bytes of a message, kept apart so listings never read them."""

    message: fields.OneToOneRelation[Message] = fields.OneToOneField(
        "models.Message", related_name="body", on_delete=fields.CASCADE, primary_key=True
    )
    content = fields.BinaryField()

    message_id: int

    class Meta:
        table = "message_body"


class RateCounter(Model):
    """Points spent under one key in one fixed time window, shared by every instance on the database.

    Keys name what is limited, e.g. `api:<token id>`, `login-address:<ip>`, `login-user:<user id>`.
    """

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=200)
    # Start of the window in whole seconds since the epoch.
    window_start = fields.BigIntField()
    points = fields.IntField(default=0)

    class Meta:
        table = "rate_counter"
        unique_together = (("key", "window_start"),)
        indexes = (("window_start",),)
