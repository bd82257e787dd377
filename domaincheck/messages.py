"""Message catalogue (German default, English) for the audit's problems and findings, keyed by stable code."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LANGUAGES", "MESSAGES", "PROBLEM_CODES", "message"]

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"

# What DomainReport.problems may hold: the four verdicts, and DNS_TEMPORARY_FAILURE, which is none
# (the resolver did not work, so nothing is known about the domain).
PROBLEM_CODES = ("DOMAIN_UNREACHABLE", "NO_MX_RECORDS", "SPF_NEEDS_UPDATE", "NO_SPF_RECORD", "DNS_TEMPORARY_FAILURE")

MESSAGES: Mapping[str, Mapping[str, str]] = {
    # -- problems -------------------------------------------------------------------------------
    "DOMAIN_UNREACHABLE": {
        "de": "Die Domain {domain} ist nicht erreichbar.",
        "en": "The domain {domain} cannot be reached.",
    },
    "NO_MX_RECORDS": {
        "de": "Die Domain {domain} ist fehlerhaft konfiguriert. Es sind keine MX-Einträge hinterlegt.",
        "en": "The domain {domain} is misconfigured. It has no MX records.",
    },
    "SPF_NEEDS_UPDATE": {
        "de": "Für die Domain {domain} ist ein SPF-Eintrag hinterlegt, der für einen reibungslosen "
        "E-Mailversand angepasst werden muss.",
        "en": "The domain {domain} has an SPF record that must be updated for reliable email delivery.",
    },
    "NO_SPF_RECORD": {
        "de": "Für die Domain {domain} ist kein SPF-Eintrag hinterlegt.",
        "en": "The domain {domain} has no SPF record.",
    },
    "DNS_TEMPORARY_FAILURE": {
        "de": "Der DNS-Server war nicht erreichbar; bitte später erneut prüfen.",
        "en": "The DNS server could not be reached; please check again later.",
    },
    # -- findings: SPF ----------------------------------------------------------------------------
    "SPF_TOO_MANY_LOOKUPS": {
        "de": "Der SPF-Eintrag benötigt {count} DNS-Abfragen; erlaubt sind höchstens {limit}.",
        "en": "The SPF record needs {count} DNS lookups; at most {limit} are allowed.",
    },
    "SPF_TOO_MANY_VOID_LOOKUPS": {
        "de": "Der SPF-Eintrag enthält {count} Abfragen ohne Ergebnis; erlaubt sind höchstens {limit}.",
        "en": "The SPF record has {count} lookups without result (void lookups); at most {limit} are allowed.",
    },
    "SPF_MULTIPLE_RECORDS": {
        "de": "{domain} hat {count} SPF-Einträge; es darf nur einen geben.",
        "en": "{domain} publishes {count} SPF records; only one is allowed.",
    },
    "SPF_SYNTAX_ERROR": {
        "de": "Syntaxfehler im SPF-Eintrag von {domain} an Position {position} ({term}): {detail}",
        "en": "Syntax error in the SPF record of {domain} at position {position} ({term}): {detail}",
    },
    "SPF_TARGET_WITHOUT_SPF": {
        "de": "{mechanism} in {domain} verweist auf {target}, das keinen SPF-Eintrag hat.",
        "en": "{mechanism} in {domain} points to {target}, which has no SPF record.",
    },
    "SPF_LOOP": {
        "de": "Der SPF-Eintrag verweist im Kreis: {chain}.",
        "en": "The SPF record loops: {chain}.",
    },
    "SPF_PLUS_ALL": {
        "de": "{domain} erlaubt mit „+all“ jedem Server, E-Mails für die Domain zu versenden.",
        "en": '{domain} allows every server on the internet to send its mail ("+all").',
    },
    "SPF_NEUTRAL_ALL": {
        "de": "Der SPF-Eintrag endet mit „?all“ und schützt die Domain damit nicht.",
        "en": 'The SPF record ends with "?all" and so does not protect the domain.',
    },
    "SPF_NO_ALL": {
        "de": "Der SPF-Eintrag endet weder mit „all“ noch mit „redirect=“; nicht erfasste Server sind neutral.",
        "en": 'The SPF record has neither "all" nor "redirect="; other servers get a neutral result.',
    },
    "SPF_PTR_USED": {
        "de": "{domain} verwendet den Mechanismus „ptr“, von dem RFC 7208 abrät.",
        "en": '{domain} uses the "ptr" mechanism, which RFC 7208 discourages.',
    },
    "SPF_TERMS_AFTER_ALL": {
        "de": "In {domain} werden die Angaben nach „all“ nie ausgewertet: {terms}.",
        "en": 'In {domain} the terms after "all" are never evaluated: {terms}.',
    },
    "SPF_REDIRECT_IGNORED": {
        "de": "In {domain} wird „{redirect}“ ignoriert, weil der Eintrag „all“ enthält.",
        "en": 'In {domain} "{redirect}" is ignored because the record contains "all".',
    },
    "SPF_MACRO_NOT_EVALUATED": {
        "de": "{mechanism} in {domain} enthält Makros und wurde nicht aufgelöst.",
        "en": "{mechanism} in {domain} contains macros and was not resolved.",
    },
    "SPF_RECORD_NEEDS_SPLIT": {
        "de": "Der SPF-Eintrag ist {length} Zeichen lang und muss als mehrere Zeichenketten "
        "(je höchstens 255 Zeichen) veröffentlicht werden.",
        "en": "The SPF record is {length} characters long and must be published as several strings "
        "of at most 255 characters.",
    },
    "SPF_RECORD_TOO_LONG": {
        "de": "Der SPF-Eintrag ist {length} Zeichen lang; empfohlen sind höchstens 450.",
        "en": "The SPF record is {length} characters long; at most 450 are recommended.",
    },
    "SPF_TEMPERROR": {
        "de": "Der SPF-Eintrag konnte nicht vollständig geprüft werden: {detail}.",
        "en": "The SPF record could not be checked completely: {detail}.",
    },
    "PLATFORM_AUTHORIZED": {
        "de": "Der SPF-Eintrag erlaubt den Versand über die Plattform ({include}).",
        "en": "The SPF record authorizes sending through the platform ({include}).",
    },
    "PLATFORM_NOT_AUTHORIZED": {
        "de": "Der SPF-Eintrag erlaubt den Versand über die Plattform nicht; es fehlt „include:{include}“.",
        "en": 'The SPF record does not authorize the platform; "include:{include}" is missing.',
    },
    "SUGGESTION_EXCEEDS_LOOKUP_LIMIT": {
        "de": "Auch der vorgeschlagene Eintrag bräuchte {count} DNS-Abfragen (erlaubt: {limit}). "
        "Alternative: Versand über den eigenen SMTP-Server des Kontos.",
        "en": "The suggested record would still need {count} DNS lookups (allowed: {limit}). "
        "Alternative: send through the account's own SMTP server.",
    },
    "PLATFORM_INCLUDE_NOT_NEEDED": {
        "de": "Das Konto versendet über den eigenen SMTP-Server; „include:{include}“ wird nicht benötigt.",
        "en": 'The account sends through its own SMTP server; "include:{include}" is not needed.',
    },
    # -- findings: MX, DMARC, DNS -------------------------------------------------------------------
    "MX_NULL": {
        "de": "{domain} hat einen Null-MX-Eintrag („0 .“) und nimmt keine E-Mails an.",
        "en": '{domain} has a null MX record ("0 .") and accepts no mail.',
    },
    "MX_MISSING": {
        "de": "{domain} hat keine MX-Einträge.",
        "en": "{domain} has no MX records.",
    },
    "MX_HOST_WITHOUT_ADDRESS": {
        "de": "Der Mailserver {host} hat keine IP-Adresse (weder A noch AAAA).",
        "en": "The mail server {host} has no address (neither A nor AAAA).",
    },
    "DMARC_PRESENT": {
        "de": "Ein DMARC-Eintrag ist hinterlegt: {record}",
        "en": "A DMARC record is published: {record}",
    },
    "DMARC_MISSING": {
        "de": "Für {domain} ist kein DMARC-Eintrag (_dmarc.{domain}) hinterlegt.",
        "en": "{domain} has no DMARC record (_dmarc.{domain}).",
    },
    "DNS_TEMPERROR": {
        "de": "Die DNS-Abfrage {rdtype} {name} ist vorübergehend fehlgeschlagen ({kind}).",
        "en": "The DNS lookup {rdtype} {name} failed temporarily ({kind}).",
    },
    "DNS_RESOLVER_UNAVAILABLE": {
        "de": "Der DNS-Server gibt auch für die Root-Zone keine gültige Antwort ({kind}); über die Domain "
        "{domain} sagt das nichts aus.",
        "en": "The DNS server gives no valid answer for the root zone either ({kind}); this says nothing "
        "about the domain {domain}.",
    },
    "DOMAIN_NXDOMAIN": {
        "de": "Die Domain {domain} existiert nicht.",
        "en": "The domain {domain} does not exist.",
    },
    "AUDIT_TIMEOUT": {
        "de": "Die Prüfung wurde nach {seconds} Sekunden abgebrochen.",
        "en": "The check was stopped after {seconds} seconds.",
    },
}


def message(code: str, lang: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``code`` in ``lang`` ("de" or "en"; anything else falls back to German)."""
    templates = MESSAGES[code]
    template = templates.get(lang) or templates[DEFAULT_LANGUAGE]
    return template.format(**params)
