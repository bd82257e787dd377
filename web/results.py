"""The `data` of each operation in web/operations/*.graphql as a TypedDict, and the operations that return them.

Each TypedDict mirrors its document's selection (names and nullability); tests/dashboard/test_operation_results.py
compares the two, so a field added to a document without its type here fails there.
Scalars: ID and DateTime are ISO strings, enums their names.
"""

from __future__ import annotations

from typing import Any, TypedDict

from web.client import Operation

# --- shared selections -----------------------------------------------------------------------------


class UserErrorFields(TypedDict):
    """An expected failure of a mutation: a stable code, the input path and a German message."""

    code: str
    field: list[str] | None
    message: str


class PageInfoFields(TypedDict):
    """Forward paging of a connection."""

    hasNextPage: bool
    endCursor: str | None


class SpfStatusFields(TypedDict):
    """The last SPF verdict of an account, as the list shows it."""

    ok: bool
    checkedAt: str


# --- accounts.graphql ------------------------------------------------------------------------------


class PendingOperationFields(TypedDict):
    """A merge or delete running in the background: `progress` of `total` messages moved or deleted."""

    kind: str
    progress: int
    total: int
    targetId: str | None


class PendingOperationTotal(TypedDict):
    total: int


class AccountFields(TypedDict):
    """fragment AccountFields."""

    id: str
    email: str
    senderName: str
    status: str
    inboundAddress: str
    outboundAddress: str
    messageCount: int
    createdAt: str
    pendingOperation: PendingOperationFields | None


class SpfProblemCodeOnly(TypedDict):
    code: str


class SpfListStatus(SpfStatusFields):
    """The list's SPF column: the verdict and which problems, without their texts."""

    problems: list[SpfProblemCodeOnly]


class AccountListItem(AccountFields):
    """A row of the account list."""

    spf: SpfListStatus | None


class AccountListEdge(TypedDict):
    node: AccountListItem


class AccountListConnection(TypedDict):
    totalCount: int
    pageInfo: PageInfoFields
    edges: list[AccountListEdge]


class AccountsData(TypedDict):
    """query Accounts."""

    accounts: AccountListConnection


class SmtpServerSummary(TypedDict):
    host: str
    port: int
    security: str


class SpfProblemFields(TypedDict):
    code: str
    message: str


class SpfFindingFields(TypedDict):
    code: str
    severity: str
    message: str


class SpfReportFields(TypedDict):
    """The account page's domain panel."""

    ok: bool
    domain: str
    checkedAt: str
    record: str | None
    suggestedRecord: str | None
    lookupCount: int
    mxHosts: list[str]
    dmarcRecord: str | None
    problems: list[SpfProblemFields]
    findings: list[SpfFindingFields]


class AccountDetail(AccountFields):
    """One account with its own SMTP server and its last SPF report."""

    smtpServer: SmtpServerSummary | None
    spf: SpfReportFields | None


class AccountData(TypedDict):
    """query Account."""

    account: AccountDetail | None


class MergeTarget(TypedDict):
    id: str
    email: str
    senderName: str
    messageCount: int


class MergeTargetEdge(TypedDict):
    node: MergeTarget


class MergeTargetConnection(TypedDict):
    totalCount: int
    edges: list[MergeTargetEdge]


class MergeTargetsData(TypedDict):
    """query MergeTargets."""

    accounts: MergeTargetConnection


class CreateAccountPayload(TypedDict):
    account: AccountFields | None
    userErrors: list[UserErrorFields]


class CreateAccountData(TypedDict):
    """mutation CreateAccount."""

    createAccount: CreateAccountPayload


class UpdatedAccount(AccountFields):
    spf: SpfStatusFields | None


class UpdateAccountPayload(TypedDict):
    account: UpdatedAccount | None
    userErrors: list[UserErrorFields]


class UpdateAccountData(TypedDict):
    """mutation UpdateAccount."""

    updateAccount: UpdateAccountPayload


class AccountStatus(TypedDict):
    id: str
    status: str


class SetStatusPayload(TypedDict):
    account: AccountStatus | None
    userErrors: list[UserErrorFields]


class SetStatusData(TypedDict):
    """mutation SetStatus."""

    setStatus: SetStatusPayload


class DeleteAccountPayload(TypedDict):
    deletedAccountId: str | None
    deletedMessageCount: int | None
    pendingOperation: PendingOperationTotal | None
    userErrors: list[UserErrorFields]


class DeleteAccountData(TypedDict):
    """mutation DeleteAccount."""

    deleteAccount: DeleteAccountPayload


class MergedAccount(TypedDict):
    id: str
    email: str
    messageCount: int


class MergeAccountsPayload(TypedDict):
    account: MergedAccount | None
    movedMessageCount: int | None
    deletedAccountId: str | None
    pendingOperation: PendingOperationTotal | None
    userErrors: list[UserErrorFields]


class MergeAccountsData(TypedDict):
    """mutation MergeAccounts."""

    mergeAccounts: MergeAccountsPayload


# --- mail.graphql ----------------------------------------------------------------------------------

# Functional syntax: `from` is a Python keyword.
MessageSummary = TypedDict(
    "MessageSummary",
    {
        "id": str,
        "direction": str,
        "from": str,
        "to": str,
        "subject": str,
        "date": str | None,
        "receivedAt": str,
        "size": int,
        "isBounce": bool,
    },
)


class MessageEdge(TypedDict):
    node: MessageSummary


class MessageConnection(TypedDict):
    totalCount: int
    pageInfo: PageInfoFields
    edges: list[MessageEdge]


class AccountMessages(TypedDict):
    id: str
    email: str
    senderName: str
    messages: MessageConnection


class AccountMessagesData(TypedDict):
    """query AccountMessages."""

    account: AccountMessages | None


class MessageHeaderFields(TypedDict):
    name: str
    value: str


class MessageContentFields(TypedDict):
    """The message as the API parsed it for reading; the dashboard only presents it."""

    headers: list[MessageHeaderFields]
    text: str
    htmlOnly: bool
    attachments: list[str]
    truncated: bool


class MessageDetail(MessageSummary):
    messageId: str | None
    content: MessageContentFields


class AccountAddress(TypedDict):
    id: str
    email: str


class MessageViewData(TypedDict):
    """query MessageView."""

    account: AccountAddress | None
    message: MessageDetail | None


class SmtpServerFields(TypedDict):
    """fragment SmtpServerFields (the password is never read back)."""

    host: str
    port: int
    security: str
    username: str | None


class AccountSmtpServer(TypedDict):
    id: str
    email: str
    smtpServer: SmtpServerFields | None


class AccountSmtpServerData(TypedDict):
    """query AccountSmtpServer."""

    account: AccountSmtpServer | None


class SmtpServerOfAccount(TypedDict):
    id: str
    smtpServer: SmtpServerFields | None


class SetSmtpServerPayload(TypedDict):
    account: SmtpServerOfAccount | None
    userErrors: list[UserErrorFields]


class SetSmtpServerData(TypedDict):
    """mutation SetSmtpServer."""

    setSmtpServer: SetSmtpServerPayload


class AccountId(TypedDict):
    id: str


class ClearSmtpServerPayload(TypedDict):
    account: AccountId | None
    userErrors: list[UserErrorFields]


class ClearSmtpServerData(TypedDict):
    """mutation ClearSmtpServer."""

    clearSmtpServer: ClearSmtpServerPayload


# --- spf.graphql -----------------------------------------------------------------------------------


class SpfCheckPayload(TypedDict):
    report: SpfStatusFields | None
    userErrors: list[UserErrorFields]


class SpfCheckData(TypedDict):
    """mutation SpfCheck."""

    spfCheck: SpfCheckPayload


class SpfCheckSummary(TypedDict):
    startedAt: str
    total: int
    checked: int
    ok: int
    withProblems: int
    finished: bool


class SpfCheckAllPayload(TypedDict):
    summary: SpfCheckSummary | None
    userErrors: list[UserErrorFields]


class SpfCheckAllData(TypedDict):
    """mutation SpfCheckAll."""

    spfCheckAll: SpfCheckAllPayload


class SpfCheckProgress(TypedDict):
    total: int
    checked: int
    ok: int
    withProblems: int
    finished: bool


class SpfCheckStatusData(TypedDict):
    """query SpfCheckStatus."""

    spfCheckStatus: SpfCheckProgress


# --- the operations --------------------------------------------------------------------------------

ACCOUNTS = Operation("Accounts", AccountsData)
ACCOUNT = Operation("Account", AccountData)
MERGE_TARGETS = Operation("MergeTargets", MergeTargetsData)
CREATE_ACCOUNT = Operation("CreateAccount", CreateAccountData)
UPDATE_ACCOUNT = Operation("UpdateAccount", UpdateAccountData)
SET_STATUS = Operation("SetStatus", SetStatusData)
DELETE_ACCOUNT = Operation("DeleteAccount", DeleteAccountData)
MERGE_ACCOUNTS = Operation("MergeAccounts", MergeAccountsData)
ACCOUNT_MESSAGES = Operation("AccountMessages", AccountMessagesData)
MESSAGE_VIEW = Operation("MessageView", MessageViewData)
ACCOUNT_SMTP_SERVER = Operation("AccountSmtpServer", AccountSmtpServerData)
SET_SMTP_SERVER = Operation("SetSmtpServer", SetSmtpServerData)
CLEAR_SMTP_SERVER = Operation("ClearSmtpServer", ClearSmtpServerData)
SPF_CHECK = Operation("SpfCheck", SpfCheckData)
SPF_CHECK_ALL = Operation("SpfCheckAll", SpfCheckAllData)
SPF_CHECK_STATUS = Operation("SpfCheckStatus", SpfCheckStatusData)

# Every operation with the TypedDict of its data, for the test that compares them with the documents.
OPERATIONS: tuple[Operation[Any], ...] = (
    ACCOUNTS,
    ACCOUNT,
    MERGE_TARGETS,
    CREATE_ACCOUNT,
    UPDATE_ACCOUNT,
    SET_STATUS,
    DELETE_ACCOUNT,
    MERGE_ACCOUNTS,
    ACCOUNT_MESSAGES,
    MESSAGE_VIEW,
    ACCOUNT_SMTP_SERVER,
    SET_SMTP_SERVER,
    CLEAR_SMTP_SERVER,
    SPF_CHECK,
    SPF_CHECK_ALL,
    SPF_CHECK_STATUS,
)
