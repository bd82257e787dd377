"""SPF check types and operations: spfCheck, spfCheckAll, spfCheckStatus and MailAccount.spf."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Self

import strawberry
from strawberry.types import Info

from resolvers import spf as ops
from resolvers.errors import AccountError
from resolvers.spf import BulkCheckSummary, SpfReportView
from schema.accounts import MailAccount, WriteScope
from schema.context import Context
from schema.errors import PublicError, UserError, user_error
from schema.ids import require_account_id
from schema.messages import request_error_message

__all__ = ["SpfMutation", "SpfQuery", "SpfReport"]


@strawberry.enum(description="The product's verdict on a domain; `ok` is true when there is none.")
class SpfProblemCode(Enum):
    DOMAIN_UNREACHABLE = "DOMAIN_UNREACHABLE"
    NO_MX_RECORDS = "NO_MX_RECORDS"
    SPF_NEEDS_UPDATE = "SPF_NEEDS_UPDATE"
    NO_SPF_RECORD = "NO_SPF_RECORD"
    DNS_TEMPORARY_FAILURE = strawberry.enum_value(
        "DNS_TEMPORARY_FAILURE",
        description="The DNS resolver did not work, so the check did not run: no verdict; accounts keep the last.",
    )


@strawberry.enum
class SpfSeverity(Enum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


@strawberry.type(description="What must change for the platform to send for the domain.")
class SpfProblem:
    code: SpfProblemCode
    message: str


@strawberry.type(description="One detail of the diagnosis, with a stable code.")
class SpfFinding:
    code: str
    severity: SpfSeverity
    message: str


@strawberry.type(description="One SPF record of the include/redirect tree, in pre-order; depth 0 is the domain.")
class SpfTreeNode:
    depth: int
    domain: str
    mechanism: str | None = strawberry.field(description="The term that led here, e.g. include:_spf.example.com.")
    record: str | None
    lookups: int = strawberry.field(description="DNS-querying terms in this record.")
    error: str | None


@strawberry.type(description="The SPF and mail configuration of a domain, as the platform sees it.")
class SpfReport:
    ok: bool
    domain: str
    checked_at: datetime
    record: str | None = strawberry.field(description="The domain's SPF record, or null.")
    suggested_record: str | None = strawberry.field(description="The record to paste, when a change is needed.")
    lookup_count: int = strawberry.field(description="DNS lookups the record needs; at most 10 are allowed.")
    void_lookup_count: int
    mx_hosts: list[str]
    dmarc_record: str | None
    problems: list[SpfProblem]
    findings: list[SpfFinding]
    tree: list[SpfTreeNode]

    @classmethod
    def from_view(cls, view: SpfReportView, lang: str) -> Self:
        return cls(
            ok=view.ok,
            domain=view.domain,
            checked_at=view.checked_at,
            record=view.record,
            suggested_record=view.suggested_record,
            lookup_count=view.lookup_count,
            void_lookup_count=view.void_lookup_count,
            mx_hosts=view.mx_hosts,
            dmarc_record=view.dmarc_record,
            problems=[SpfProblem(code=SpfProblemCode(p.code), message=p.message(lang)) for p in view.problems],
            findings=[
                SpfFinding(code=f.code, severity=SpfSeverity(f.severity), message=f.message(lang))
                for f in view.findings
            ],
            tree=[SpfTreeNode(**entry.__dict__) for entry in view.tree],
        )


@strawberry.type(description="Progress or result of re-checking all accounts of the tenant.")
class SpfCheckSummary:
    started_at: datetime = strawberry.field(description="Pass it to spfCheckStatus to follow the progress.")
    total: int
    checked: int
    ok: int
    with_problems: int
    finished: bool

    @classmethod
    def from_summary(cls, summary: BulkCheckSummary) -> Self:
        return cls(
            started_at=summary.started_at,
            total=summary.total,
            checked=summary.checked,
            ok=summary.ok,
            with_problems=summary.with_problems,
            finished=summary.finished,
        )


@strawberry.input(description="Check an existing account (`accountId`) or an address before it exists (`email`).")
class SpfCheckInput:
    account_id: strawberry.ID | None = None
    email: str | None = None


@strawberry.type
class SpfCheckPayload:
    report: SpfReport | None = None
    account: MailAccount | None = strawberry.field(default=None, description="The checked account, if any.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SpfCheckAllInput:
    wait: bool = strawberry.field(
        default=True, description="false: start in the background and follow it with spfCheckStatus."
    )


@strawberry.type
class SpfCheckAllPayload:
    summary: SpfCheckSummary | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _checker(info: Info[Context, Any]) -> ops.SpfChecker:
    checker = info.context.spf_checker
    if checker is None:
        raise PublicError(request_error_message("SPF_UNAVAILABLE", info.context.lang), "SPF_UNAVAILABLE")
    return checker


@strawberry.type
class SpfQuery:
    @strawberry.field(description="Progress of the bulk check started at `startedAt` (from spfCheckAll).")
    async def spf_check_status(self, info: Info[Context, Any], started_at: datetime) -> SpfCheckSummary:
        return SpfCheckSummary.from_summary(await ops.bulk_check_status(info.context.tenant_id, started_at))


@strawberry.type
class SpfMutation:
    @strawberry.mutation(
        permission_classes=[WriteScope],
        description="Check the domain of an account (the report is stored on it) or of an address (nothing stored).",
    )
    async def spf_check(self, info: Info[Context, Any], input: SpfCheckInput) -> SpfCheckPayload:
        context = info.context
        checker = _checker(info)
        try:
            if input.account_id is not None:
                row, view = await ops.check_account(context.tenant_id, require_account_id(input.account_id), checker)
                account = MailAccount.from_row(row, context.mailbox_domain)
            elif input.email is not None:
                view, account = await ops.check_address(input.email, checker), None
            else:
                raise PublicError(request_error_message("SPF_CHECK_WITHOUT_TARGET", context.lang), "BAD_USER_INPUT")
        except AccountError as exc:
            return SpfCheckPayload(user_errors=[user_error(exc, context.lang)])
        return SpfCheckPayload(report=SpfReport.from_view(view, context.lang), account=account)

    @strawberry.mutation(
        permission_classes=[WriteScope], description="Re-check the SPF configuration of every account of the tenant."
    )
    async def spf_check_all(
        self, info: Info[Context, Any], input: SpfCheckAllInput | None = None
    ) -> SpfCheckAllPayload:
        wait = True if input is None else input.wait
        summary = await ops.check_accounts(info.context.tenant_id, _checker(info), wait=wait)
        return SpfCheckAllPayload(summary=SpfCheckSummary.from_summary(summary))
