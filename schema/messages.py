"""The user-facing texts of the API in German (default) and English, and language negotiation."""

from __future__ import annotations

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "limit_message",
    "negotiate_language",
    "request_error_message",
    "user_error_message",
]

DEFAULT_LANGUAGE = "de"
LANGUAGES = ("de", "en")

_USER_ERRORS: dict[str, dict[str, str]] = {
    "INVALID_EMAIL": {
        "de": "Bitte geben Sie eine gültige E-Mail-Adresse ein.",
        "en": "Please enter a valid email address.",
    },
    # INVALID_EMAIL for a domain whose label mixes scripts (UTS #39), e.g. a Cyrillic "\u0430" among Latin letters.
    "INVALID_EMAIL:mixed_script": {
        "de": "Die Domain der E-Mail-Adresse mischt Schriften (z. B. lateinische mit kyrillischen oder griechischen "
        "Buchstaben, die gleich aussehen). Bitte geben Sie die Adresse mit der Tastatur neu ein.",
        "en": "The address's domain mixes scripts (e.g. Latin with look-alike Cyrillic or Greek letters). "
        "Please type the address again on the keyboard.",
    },
    # INVALID_EMAIL for a special-use domain (RFC 6761: .invalid, .test, .localhost, .local, …).
    "INVALID_EMAIL:special_use": {
        "de": "Domains wie .invalid, .test, .local oder .localhost können keine E-Mails empfangen. Bitte geben Sie "
        "eine Adresse mit einer echten Domain an (z. B. vertrieb@firma.de).",
        "en": "Domains such as .invalid, .test, .local or .localhost cannot receive mail. Please enter an address "
        "at a real domain (e.g. sales@company.com).",
    },
    "DUPLICATE_EMAIL": {
        "de": "Für diese E-Mail-Adresse gibt es bereits einen Mail-Account.",
        "en": "A mail account with this email address already exists.",
    },
    "INVALID_SENDER_NAME": {
        "de": "Der Absendername muss 1 bis 200 Zeichen lang sein und darf keine Zeilenumbrüche "
        "oder Steuerzeichen enthalten.",
        "en": "The sender name must be 1 to 200 characters long and must not contain line breaks "
        "or control characters.",
    },
    "NOT_FOUND": {
        "de": "Der Mail-Account wurde nicht gefunden.",
        "en": "The mail account was not found.",
    },
    "SAME_ACCOUNT": {
        "de": "Ein Mail-Account kann nicht mit sich selbst zusammengeführt werden.",
        "en": "A mail account cannot be merged into itself.",
    },
    "CONFIRMATION_MISMATCH": {
        "de": "Zur Bestätigung bitte die E-Mail-Adresse des Mail-Accounts genau eingeben.",
        "en": "To confirm, please type the mail account's email address exactly.",
    },
    "ACCOUNT_INACTIVE": {
        "de": "Der Mail-Account ist deaktiviert.",
        "en": "The mail account is inactive.",
    },
    "INVALID_RECIPIENT": {
        "de": "Bitte geben Sie gültige Empfängeradressen ein (höchstens 100).",
        "en": "Please enter valid recipient addresses (at most 100).",
    },
    "INVALID_SUBJECT": {
        "de": "Der Betreff darf höchstens 998 Zeichen lang sein und keine Zeilenumbrüche oder Steuerzeichen enthalten.",
        "en": "The subject must be at most 998 characters long and must not contain line breaks or control characters.",
    },
    "INVALID_IN_REPLY_TO": {
        "de": "Die Nachricht, auf die geantwortet wird, wurde nicht gefunden oder die Message-ID ist ungültig.",
        "en": "The message replied to was not found, or the Message-ID is invalid.",
    },
    "SEND_FAILED": {
        "de": "Der SMTP-Server hat die Nachricht nicht angenommen; sie wurde nicht gesendet. Antwort des Servers:",
        "en": "The SMTP server did not accept the message; it was not sent. The server answered:",
    },
    "RECIPIENT_REFUSED": {
        "de": "Der SMTP-Server hat diesen Empfänger abgelehnt; an die übrigen wurde die Nachricht gesendet. "
        "Antwort des Servers:",
        "en": "The SMTP server refused this recipient; the message was sent to the others. The server answered:",
    },
    # A SEND_FAILED case with its own text: the code stays SEND_FAILED, clients need not tell them apart.
    "SMTP_PASSWORD_UNREADABLE": {
        "de": "Das gespeicherte Passwort des SMTP-Servers kann nicht mehr entschlüsselt werden (SECRET_KEY wurde "
        "geändert). Bitte geben Sie das Passwort des SMTP-Servers erneut ein. Die Nachricht wurde nicht gesendet.",
        "en": "The stored SMTP server password can no longer be decrypted (SECRET_KEY was changed). Please enter "
        "the SMTP server password again. The message was not sent.",
    },
    "INVALID_SMTP_SERVER": {
        "de": "Bitte prüfen Sie die Angaben zum SMTP-Server (Host, Port, Benutzername und Passwort).",
        "en": "Please check the SMTP server details (host, port, username and password).",
    },
    # INVALID_SMTP_SERVER on the host: it is or resolves to an internal address (OUTBOUND_ALLOW_NETWORKS).
    "SMTP_SERVER_NOT_ALLOWED": {
        "de": "Dieser SMTP-Server ist nicht erlaubt: interne Adressen (localhost, private, Link-Local- und ähnliche "
        "Netze) können nicht als eigener SMTP-Server verwendet werden. Bitte geben Sie den öffentlichen Namen "
        "oder die öffentliche Adresse Ihres SMTP-Servers ein.",
        "en": "This SMTP server is not allowed: internal addresses (localhost, private, link-local and similar "
        "networks) cannot be used as an own SMTP server. Please enter the public name or address of your "
        "SMTP server.",
    },
    # SEND_FAILED before the own server answered in SMTP: one text for every cause, so it tells a prober nothing.
    "SMTP_SERVER_UNREACHABLE": {
        "de": "Der eigene SMTP-Server war nicht erreichbar; die Nachricht wurde nicht gesendet. Bitte prüfen Sie "
        "Host, Port und Verschlüsselung des SMTP-Servers.",
        "en": "The own SMTP server could not be reached; the message was not sent. Please check the SMTP "
        "server's host, port and security.",
    },
}


def user_error_message(key: str, lang: str, reason: object = None) -> str:
    """The message for a user error code (or a named case of one) in `lang`; falls back to German.

    With a `reason` that has a text of its own (`CODE:reason`), that text.
    """
    texts = _USER_ERRORS.get(f"{key}:{reason}", {}) if reason else {}
    texts = texts or _USER_ERRORS.get(key, {})
    return texts.get(lang) or texts.get(DEFAULT_LANGUAGE) or key


# Top-level errors of the request limits (extensions.code is the key); `{limit}` and `{seconds}` are filled in.
_LIMIT_ERRORS: dict[str, dict[str, str]] = {
    "QUERY_TOO_COMPLEX": {
        "de": "Die Anfrage ist zu umfangreich: Mit allen Fragmenten ausgeschrieben wählt sie mehr als {limit} "
        "Felder aus (GRAPHQL_MAX_FIELDS). Bitte teilen Sie sie auf.",
        "en": "The query is too complex: with its fragments expanded it selects more than {limit} fields "
        "(GRAPHQL_MAX_FIELDS). Please split it up.",
    },
    # QUERY_TOO_COMPLEX when the same field or many fragments meet in one selection set too often.
    "QUERY_REPEATS_FIELDS": {
        "de": "Die Anfrage ist zu umfangreich: Sie wählt dieselben Felder oder Fragmente so oft an einer Stelle "
        "aus, dass mehr als {limit} Paare zu vergleichen wären (GRAPHQL_MAX_FIELDS). Bitte fassen Sie sie zusammen.",
        "en": "The query is too complex: it selects the same fields or fragments in one place so often that more "
        "than {limit} pairs would have to be compared (GRAPHQL_MAX_FIELDS). Please merge them.",
    },
    "TOO_MANY_NETWORK_FIELDS": {
        "de": "Eine Anfrage darf höchstens {limit} Felder enthalten, die auf das Netz warten (spfCheck, "
        "spfCheckAll, sendMessage, setSmtpServer).",
        "en": "A request may contain at most {limit} fields that wait on the network (spfCheck, spfCheckAll, "
        "sendMessage, setSmtpServer).",
    },
    "RATE_LIMITED": {
        "de": "Zu viele Anfragen mit diesem Token; bitte in {seconds} Sekunden erneut versuchen.",
        "en": "Too many requests with this token; please try again in {seconds} seconds.",
    },
}


def limit_message(code: str, lang: str, **params: int) -> str:
    """The message of a request-limit error `code` in `lang` (German unless `en`), with its numbers."""
    texts = _LIMIT_ERRORS[code]
    return (texts.get(lang) or texts[DEFAULT_LANGUAGE]).format(**params)


# Top-level BAD_USER_INPUT errors: a request no form would send, so no userError of an input field.
_REQUEST_ERRORS: dict[str, dict[str, str]] = {
    "UPDATE_WITHOUT_CHANGES": {
        "de": "updateAccount braucht mindestens eines der Felder `email` oder `senderName`.",
        "en": "updateAccount needs at least one of the fields `email` or `senderName`.",
    },
}


def request_error_message(key: str, lang: str) -> str:
    """The message of a top-level BAD_USER_INPUT error `key` in `lang` (German unless `en`)."""
    texts = _REQUEST_ERRORS[key]
    return texts.get(lang) or texts[DEFAULT_LANGUAGE]


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
