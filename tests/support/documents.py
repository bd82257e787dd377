"""GraphQL documents the tests send, written as a client would: accounts, then messages and SMTP servers."""

ACCOUNT_FIELDS = """
  id email senderName status inboundAddress outboundAddress messageCount createdAt updatedAt
"""
USER_ERRORS = "userErrors { code field message }"

CREATE = f"""
mutation Create($input: CreateAccountInput!) {{
  createAccount(input: $input) {{ account {{ {ACCOUNT_FIELDS} }} {USER_ERRORS} }}
}}"""

SET_STATUS = f"""
mutation SetStatus($input: SetStatusInput!) {{
  setStatus(input: $input) {{ account {{ {ACCOUNT_FIELDS} }} {USER_ERRORS} }}
}}"""

DELETE = f"""
mutation Delete($input: DeleteAccountInput!) {{
  deleteAccount(input: $input) {{ deletedAccountId deletedMessageCount {USER_ERRORS} }}
}}"""

MERGE = f"""
mutation Merge($input: MergeAccountsInput!) {{
  mergeAccounts(input: $input) {{
    account {{ {ACCOUNT_FIELDS} }} movedMessageCount deletedAccountId {USER_ERRORS}
  }}
}}"""

ACCOUNTS = f"""
query Accounts($first: Int, $after: String, $status: AccountStatus, $search: String) {{
  accounts(first: $first, after: $after, status: $status, search: $search) {{
    totalCount
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ {ACCOUNT_FIELDS} }} }}
  }}
}}"""

ACCOUNT = f"""
query Account($id: ID!) {{ account(id: $id) {{ {ACCOUNT_FIELDS} }} }}"""

NODE = """
query Node($id: ID!) { node(id: $id) { id ... on MailAccount { email } } }"""


MESSAGE_FIELDS = "id direction messageId from to subject date receivedAt size isBounce"

MESSAGES = f"""
query Messages($id: ID!, $first: Int, $after: String, $direction: Direction) {{
  account(id: $id) {{
    messageCount
    messages(first: $first, after: $after, direction: $direction) {{
      totalCount
      pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
      edges {{ cursor node {{ {MESSAGE_FIELDS} }} }}
    }}
  }}
}}"""

MESSAGE = f"""
query Message($id: ID!) {{ message(id: $id) {{ {MESSAGE_FIELDS} raw rawBase64 }} }}"""

MESSAGE_NODE = """
query Node($id: ID!) { node(id: $id) { id ... on Message { subject } } }"""

SEND = f"""
mutation Send($input: SendMessageInput!) {{
  sendMessage(input: $input) {{ message {{ {MESSAGE_FIELDS} raw }} {USER_ERRORS} }}
}}"""

SMTP_SERVER_FIELDS = "smtpServer { host port security username }"

ACCOUNT_SMTP = f"""
query AccountSmtp($id: ID!) {{ account(id: $id) {{ id {SMTP_SERVER_FIELDS} }} }}"""

SET_SMTP = f"""
mutation SetSmtp($input: SetSmtpServerInput!) {{
  setSmtpServer(input: $input) {{ account {{ id {SMTP_SERVER_FIELDS} }} {USER_ERRORS} }}
}}"""

CLEAR_SMTP = f"""
mutation ClearSmtp($input: ClearSmtpServerInput!) {{
  clearSmtpServer(input: $input) {{ account {{ id {SMTP_SERVER_FIELDS} }} {USER_ERRORS} }}
}}"""
