"""The API's user-facing texts, keyed by stable codes (the catalogue is texts/), and language negotiation."""

from __future__ import annotations

from texts import DEFAULT_LANGUAGE, LANGUAGES, coded, coded_text, coded_texts

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "limit_message",
    "negotiate_language",
    "request_error_message",
    "user_error_message",
]

# userErrors: code (or `CODE:reason` for a named case with a text of its own) -> English source text.
_USER_ERRORS = coded_texts(
    coded("INVALID_EMAIL", "Please enter a valid email address."),
    # INVALID_EMAIL for a domain whose label mixes scripts (UTS #39), e.g. a Cyrillic "\u0430" among Latin letters.
    coded(
        "INVALID_EMAIL:mixed_script",
        "The address's domain mixes scripts (e.g. Latin with look-alike Cyrillic or Greek letters). Please type "
        "the address again on the keyboard.",
    ),
    # INVALID_EMAIL for a special-use domain (RFC 6761: .invalid, .test, .localhost, .local, …).
    coded(
        "INVALID_EMAIL:special_use",
        "Domains such as .invalid, .test, .local or .localhost cannot receive mail. Please enter an address at a "
        "real domain (e.g. sales@company.com).",
    ),
    coded("DUPLICATE_EMAIL", "A mail account with this email address already exists."),
    coded(
        "INVALID_SENDER_NAME",
        "The sender name must be 1 to 200 characters long and must not contain line breaks or control characters.",
    ),
    coded("NOT_FOUND", "The mail account was not found."),
    coded("SAME_ACCOUNT", "A mail account cannot be merged into itself."),
    coded("CONFIRMATION_MISMATCH", "To confirm, please type the mail account's email address exactly."),
    coded("ACCOUNT_INACTIVE", "The mail account is inactive."),
    coded(
        "OPERATION_PENDING",
        "A merge or deletion of this mail account is still running. Please wait until it has finished.",
    ),
    coded("INVALID_RECIPIENT", "Please enter valid recipient addresses (at most 100)."),
    coded(
        "INVALID_SUBJECT",
        "The subject must be at most 998 characters long and must not contain line breaks or control characters.",
    ),
    coded("INVALID_IN_REPLY_TO", "The message replied to was not found, or the Message-ID is invalid."),
    coded("SEND_FAILED", "The SMTP server did not accept the message; it was not sent. The server answered:"),
    coded(
        "RECIPIENT_REFUSED",
        "The SMTP server refused this recipient; the message was sent to the others. The server answered:",
    ),
    # A SEND_FAILED case with its own text: the code stays SEND_FAILED, clients need not tell them apart.
    coded(
        "SMTP_PASSWORD_UNREADABLE",
        "The stored SMTP server password can no longer be decrypted (SECRET_KEY was changed). Please enter the "
        "SMTP server password again. The message was not sent.",
    ),
    coded("INVALID_SMTP_SERVER", "Please check the SMTP server details (host, port, username and password)."),
    # INVALID_SMTP_SERVER on the host: it is or resolves to an internal address (OUTBOUND_ALLOW_NETWORKS).
    coded(
        "SMTP_SERVER_NOT_ALLOWED",
        "This SMTP server is not allowed: internal addresses (localhost, private, link-local and similar networks) "
        "cannot be used as an own SMTP server. Please enter the public name or address of your SMTP server.",
    ),
    # SEND_FAILED before the own server answered in SMTP: one text for every cause, so it tells a prober nothing.
    coded(
        "SMTP_SERVER_UNREACHABLE",
        "The own SMTP server could not be reached; the message was not sent. Please check the SMTP server's host, "
        "port and security.",
    ),
)


def user_error_message(key: str, lang: str, reason: object = None) -> str:
    """The message for a user error code (or a named case of one) in `lang`; German unless `en`.

    With a `reason` that has a text of its own (`CODE:reason`), that text.
    """
    code = f"{key}:{reason}" if reason and f"{key}:{reason}" in _USER_ERRORS else key
    source = _USER_ERRORS.get(code)
    return key if source is None else coded_text(lang, code, source)


# Top-level errors of the request limits (extensions.code is the key); `{limit}` and `{seconds}` are filled in.
_LIMIT_ERRORS = coded_texts(
    coded(
        "QUERY_TOO_COMPLEX",
        "The query is too complex: with its fragments expanded it selects more than {limit} fields "
        "(GRAPHQL_MAX_FIELDS). Please split it up.",
    ),
    # QUERY_TOO_COMPLEX when the same field or many fragments meet in one selection set too often.
    coded(
        "QUERY_REPEATS_FIELDS",
        "The query is too complex: it selects the same fields or fragments in one place so often that more than "
        "{limit} pairs would have to be compared (GRAPHQL_MAX_FIELDS). Please merge them.",
    ),
    coded(
        "TOO_MANY_NETWORK_FIELDS",
        "A request may contain at most {limit} fields that wait on the network (spfCheck, spfCheckAll, "
        "sendMessage, setSmtpServer).",
    ),
    coded("RATE_LIMITED", "Too many requests with this token; please try again in {seconds} seconds."),
)


def limit_message(code: str, lang: str, **params: int) -> str:
    """The message of a request-limit error `code` in `lang` (German unless `en`), with its numbers."""
    return coded_text(lang, code, _LIMIT_ERRORS[code], **params)


# Refused requests: top-level GraphQL errors (a request no form would send, so no userError of an input
# field; scope; what this server does not offer) and the HTTP refusals of /graphql (web/app.py).
_REQUEST_ERRORS = coded_texts(
    # A crash, masked for the client (the log has the details and the request id).
    coded("UNEXPECTED_ERROR", "Unexpected error."),
    coded("UPDATE_WITHOUT_CHANGES", "updateAccount needs at least one of the fields `email` or `senderName`."),
    coded("SPF_CHECK_WITHOUT_TARGET", "spfCheck needs one of the fields `accountId` or `email`."),
    coded("READ_ONLY_TOKEN", "This token may only read (scope read); mutations need scope write."),
    coded("SPF_UNAVAILABLE", "SPF checks are not configured in this front end."),
    coded("SENDING_UNAVAILABLE", "Sending is not configured on this server."),
    coded("SECRET_KEY_MISSING", "SECRET_KEY is not configured on this server."),
    coded("INVALID_CURSOR", "Invalid cursor {cursor!r}: pass a cursor this API returned (edges.cursor, pageInfo)."),
    coded("PAGE_SIZE_OUT_OF_RANGE", "`first` must be between 0 and {max}."),
    # HTTP refusals of /graphql.
    coded("MISSING_BEARER_TOKEN", "Missing bearer token: send Authorization: Bearer <token>."),
    coded("UNKNOWN_TOKEN", "Unknown or revoked token."),
    coded("DATABASE_UNAVAILABLE", "The service cannot reach its database; try again shortly."),
    coded("BODY_NOT_JSON", "The request body (or `variables`) is not valid JSON in UTF-8."),
    coded("BODY_NOT_OBJECT", "Expected a JSON object with `query` (and `variables`, `operationName`)."),
    coded("BATCHING_DISABLED", "Batching is not enabled: send one operation per request."),
    coded("OPERATION_NAME_NOT_STRING", "`operationName` must be a string or null, if provided."),
    coded("QUERY_NOT_STRING", "`query` must be a string or null, if provided."),
    coded("VARIABLES_NOT_OBJECT", "`variables` must be an object or null, if provided."),
    coded("EXTENSIONS_NOT_OBJECT", "`extensions` must be an object or null, if provided."),
    coded("MISSING_QUERY", "The request contains no GraphQL query (`query`)."),
    coded("UNSUPPORTED_CONTENT_TYPE", "Unsupported content type: send application/json, or the query in the URL."),
    coded("MUTATION_OVER_GET", "Mutations are not allowed over GET: send them with POST."),
    coded(
        "OPERATION_NOT_FOUND",
        "Which operation to run is unclear: the document has none, or several and no `operationName`.",
    ),
    coded("UNKNOWN_OPERATION", "The document contains no operation named {name!r}."),
    coded("METHOD_NOT_ALLOWED", "/graphql answers GET and POST only."),
    coded("GRAPHIQL_DISABLED", "GraphiQL is not offered in production (ENVIRONMENT=production)."),
)


def request_error_message(key: str, lang: str, **params: object) -> str:
    """The message of a refused request `key` in `lang` (German unless `en`), with its params."""
    return coded_text(lang, key, _REQUEST_ERRORS[key], **params)


def negotiate_language(accept_language: str | None) -> str:
    """Pick `de` or `en` from an Accept-Language header; German unless English is preferred."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    best_lang, best_q = DEFAULT_LANGUAGE, -1.0
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        # Earlier entries win ties, as browsers list them by preference.
        score = q - position * 1e-6
        if primary in LANGUAGES and score > best_q:
            best_lang, best_q = primary, score
    return best_lang
