"""The audit's problems and findings as codes with English source texts; other languages live in texts/.

domaincheck imports nothing of the project, so it cannot render German itself: each text here is the msgid
of the project's catalogue, with its code as msgctxt (`coded`, extracted as keyword `coded:1c,2`), and
callers render them in the user's language (resolvers.spf.spf_message).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MESSAGES", "PROBLEM_CODES", "message"]

# What DomainReport.problems may hold: the four verdicts, and DNS_TEMPORARY_FAILURE, which is none
# (the resolver did not work, so nothing is known about the domain).
PROBLEM_CODES = ("DOMAIN_UNREACHABLE", "NO_MX_RECORDS", "SPF_NEEDS_UPDATE", "NO_SPF_RECORD", "DNS_TEMPORARY_FAILURE")


def coded(code: str, source: str) -> tuple[str, str]:
    """Mark `source` for extraction with `code` as its msgctxt (texts.coded, which domaincheck may not import)."""
    return code, source


# code -> English source text; `{name}` placeholders are filled from the finding's params.
MESSAGES: Mapping[str, str] = dict(
    (
        # -- problems -------------------------------------------------------------------------------
        coded("DOMAIN_UNREACHABLE", "The domain {domain} cannot be reached."),
        coded("NO_MX_RECORDS", "The domain {domain} is misconfigured. It has no MX records."),
        coded(
            "SPF_NEEDS_UPDATE",
            "The domain {domain} has an SPF record that must be updated for reliable email delivery.",
        ),
        coded("NO_SPF_RECORD", "The domain {domain} has no SPF record."),
        coded("DNS_TEMPORARY_FAILURE", "The DNS server could not be reached; please check again later."),
        # -- findings: SPF ----------------------------------------------------------------------------
        coded("SPF_TOO_MANY_LOOKUPS", "The SPF record needs {count} DNS lookups; at most {limit} are allowed."),
        coded(
            "SPF_TOO_MANY_VOID_LOOKUPS",
            "The SPF record has {count} lookups without result (void lookups); at most {limit} are allowed.",
        ),
        coded("SPF_MULTIPLE_RECORDS", "{domain} publishes {count} SPF records; only one is allowed."),
        coded(
            "SPF_SYNTAX_ERROR", "Syntax error in the SPF record of {domain} at position {position} ({term}): {detail}"
        ),
        coded("SPF_TARGET_WITHOUT_SPF", "{mechanism} in {domain} points to {target}, which has no SPF record."),
        coded("SPF_LOOP", "The SPF record loops: {chain}."),
        coded("SPF_PLUS_ALL", '{domain} allows every server on the internet to send its mail ("+all").'),
        coded("SPF_NEUTRAL_ALL", 'The SPF record ends with "?all" and so does not protect the domain.'),
        coded("SPF_NO_ALL", 'The SPF record has neither "all" nor "redirect="; other servers get a neutral result.'),
        coded("SPF_PTR_USED", '{domain} uses the "ptr" mechanism, which RFC 7208 discourages.'),
        coded("SPF_TERMS_AFTER_ALL", 'In {domain} the terms after "all" are never evaluated: {terms}.'),
        coded("SPF_REDIRECT_IGNORED", 'In {domain} "{redirect}" is ignored because the record contains "all".'),
        coded("SPF_MACRO_NOT_EVALUATED", "{mechanism} in {domain} contains macros and was not resolved."),
        coded(
            "SPF_RECORD_NEEDS_SPLIT",
            "The SPF record is {length} characters long and must be published as several "
            "strings of at most 255 characters.",
        ),
        coded("SPF_RECORD_TOO_LONG", "The SPF record is {length} characters long; at most 450 are recommended."),
        coded("SPF_TEMPERROR", "The SPF record could not be checked completely: {detail}."),
        coded("PLATFORM_AUTHORIZED", "The SPF record authorizes sending through the platform ({include})."),
        coded(
            "PLATFORM_NOT_AUTHORIZED", 'The SPF record does not authorize the platform; "include:{include}" is missing.'
        ),
        coded(
            "SUGGESTION_EXCEEDS_LOOKUP_LIMIT",
            "The suggested record would still need {count} DNS lookups (allowed: {limit}). "
            "Alternative: send through the account's own SMTP server.",
        ),
        coded(
            "PLATFORM_INCLUDE_NOT_NEEDED",
            'The account sends through its own SMTP server; "include:{include}" is not needed.',
        ),
        # -- findings: MX, DMARC, DNS -------------------------------------------------------------------
        coded("MX_NULL", '{domain} has a null MX record ("0 .") and accepts no mail.'),
        coded("MX_MISSING", "{domain} has no MX records."),
        coded("MX_HOST_WITHOUT_ADDRESS", "The mail server {host} has no address (neither A nor AAAA)."),
        coded("DMARC_PRESENT", "A DMARC record is published: {record}"),
        coded("DMARC_MISSING", "{domain} has no DMARC record (_dmarc.{domain})."),
        coded("DNS_TEMPERROR", "The DNS lookup {rdtype} {name} failed temporarily ({kind})."),
        coded(
            "DNS_RESOLVER_UNAVAILABLE",
            "The DNS server gives no valid answer for the root zone either ({kind}); this "
            "says nothing about the domain {domain}.",
        ),
        coded("DOMAIN_NXDOMAIN", "The domain {domain} does not exist."),
        coded("AUDIT_TIMEOUT", "The check was stopped after {seconds} seconds."),
    )
)


def message(code: str, **params: Any) -> str:
    """The English source text of `code` with its params (logs, tests); users get texts.translations'."""
    return MESSAGES[code].format(**params)
