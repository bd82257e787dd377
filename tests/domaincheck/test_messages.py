"""The message catalogue: both languages for every code."""

from __future__ import annotations

import string

from domaincheck.messages import MESSAGES, PROBLEM_CODES, message


def test_catalogue_has_both_languages_with_the_same_placeholders() -> None:
    """Every code has a German and an English text using the same parameters."""
    for code, texts in MESSAGES.items():
        assert set(texts) == {"de", "en"}, code
        fields = [{name for _, name, _, _ in string.Formatter().parse(t) if name} for t in texts.values()]
        assert fields[0] == fields[1], code
    assert set(PROBLEM_CODES) <= set(MESSAGES)


def test_message_renders_german_by_default() -> None:
    """message() renders German unless English is asked for."""
    assert message("NO_MX_RECORDS", domain="example.com") == (
        "Die Domain example.com ist fehlerhaft konfiguriert. Es sind keine MX-Einträge hinterlegt."
    )
    assert message("NO_MX_RECORDS", "en", domain="example.com") == (
        "The domain example.com is misconfigured. It has no MX records."
    )
