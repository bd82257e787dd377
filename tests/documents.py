"""GraphQL documents the tests send, written as a client would."""

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
