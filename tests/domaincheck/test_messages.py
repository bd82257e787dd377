"""The audit's texts: codes with English source texts in domaincheck, rendered from the project's catalogue."""

from __future__ import annotations

from domaincheck.messages import MESSAGES, PROBLEM_CODES, message
from resolvers.spf import spf_message


def test_every_problem_code_has_a_source_text() -> None:
    """Each code DomainReport.problems may hold has an English source text."""
    assert set(PROBLEM_CODES) <= set(MESSAGES)


def test_message_renders_german_by_default() -> None:
    """spf_message() renders the catalogue's German unless English is asked for; domaincheck's own is English."""
    assert spf_message("NO_MX_RECORDS", "de", domain="example.com") == (
        "Die Domain example.com ist fehlerhaft konfiguriert. Es sind keine MX-Einträge hinterlegt."
    )
    assert spf_message("NO_MX_RECORDS", "fr", domain="example.com") == spf_message(
        "NO_MX_RECORDS", "de", domain="example.com"
    )
    assert spf_message("NO_MX_RECORDS", "en", domain="example.com") == (
        "The domain example.com is misconfigured. It has no MX records."
    )
    assert message("NO_MX_RECORDS", domain="example.com") == spf_message("NO_MX_RECORDS", "en", domain="example.com")
