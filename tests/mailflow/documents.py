"""GraphQL documents of the mail flow tests, written as a client would."""

MESSAGE_FIELDS = "id direction messageId from to subject date receivedAt size isBounce"
USER_ERRORS = "userErrors { code field message }"

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
