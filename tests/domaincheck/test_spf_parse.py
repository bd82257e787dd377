"""The SPF record parser: terms, record selection and syntax errors with their positions."""

from __future__ import annotations

import ipaddress

import pytest

from domaincheck.spf import Mechanism, Modifier, is_spf_record, parse_record, select_spf_records


def test_terms_are_parsed_in_order() -> None:
    """Mechanisms keep qualifier, domain and dual CIDR; modifiers are recognised."""
    record = parse_record(
        "v=spf1 a/24//64 -mx:mail.example.com ~ip4:192.0.2.0/24 include:_spf.example.com "
        "?all redirect=example.net exp=explain.example.com"
    )
    assert record.valid
    kinds = [(t.qualifier, t.name) for t in record.mechanisms]
    assert kinds == [("+", "a"), ("-", "mx"), ("~", "ip4"), ("+", "include"), ("?", "all")]
    a, mx, ip4, include, _ = record.mechanisms
    assert (a.cidr4, a.cidr6, a.domain_spec) == (24, 64, None)
    assert mx.domain_spec == "mail.example.com"
    assert ip4.network == ipaddress.ip_network("192.0.2.0/24")
    assert include.domain_spec == "_spf.example.com"
    assert isinstance(record.redirect, Modifier) and record.redirect.value == "example.net"
    assert record.explanation is not None and record.explanation.value == "explain.example.com"


def test_unknown_term_reports_its_position() -> None:
    """An unknown mechanism is an error located at its first character."""
    record = parse_record("v=spf1 ip4:192.0.2.1 -all moo")
    assert not record.valid
    (issue,) = record.errors
    assert (issue.position, issue.term) == (26, "moo")


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("v=spf1 a/33 -all", 8),
        ("v=spf1 ip4:192.0.2.1/032", 20),
        ("v=spf1 ip6:2001:db8::/129", 21),
        ("v=spf1 a:example.-com", 17),
        ("v=spf1 exists:%{x}.example.com", 14),
        ("v=spf1 include:", 15),
        ("v=spf1 ptr/0", 10),
        ("v=spf1 ip4:192.0.2", 11),
    ],
)
def test_syntax_error_positions(text: str, position: int) -> None:
    """Each kind of syntax error points into the offending term."""
    record = parse_record(text)
    assert record.errors, text
    assert record.errors[0].position == position


def test_repeated_redirect_and_exp_are_errors() -> None:
    """redirect and exp may appear once only."""
    assert not parse_record("v=spf1 redirect=a.example.com redirect=b.example.com").valid
    assert not parse_record("v=spf1 exp=a.example.com exp=b.example.com").valid


def test_control_characters_and_non_ascii_are_errors() -> None:
    """Only printable ASCII is allowed; the error gives the character's offset."""
    record = parse_record("v=spf1 a:example.com\rptr -all")
    assert any(issue.position == 20 for issue in record.errors)
    assert not parse_record("v=spf1 \x80a:example.net -all").valid


def test_macro_domains_and_unknown_modifiers_are_accepted() -> None:
    """Macros in domains and unknown modifiers with valid macro strings are valid."""
    record = parse_record("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} moo.cow-far_out=man:dog/cat -all")
    assert record.valid
    assert isinstance(record.terms[0], Mechanism)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v=spf1 -all", True), ("V=SPF1", True), ("v=spf10 mx", False), ("v=spf1mx", False), ("spf1", False)],
)
def test_version_tag(text: str, expected: bool) -> None:
    """The version tag is case-insensitive and must end the record or be followed by a space."""
    assert is_spf_record(text) is expected


def test_record_selection_keeps_only_spf_strings() -> None:
    """Only v=spf1 TXT strings are selected; other TXT data (even non-ASCII) is ignored."""
    assert select_spf_records([b"google-site-verification=x", b"v=spf1 -all", b"\x96"]) == ["v=spf1 -all"]
