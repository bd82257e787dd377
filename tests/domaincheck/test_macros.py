"""SPF macro expansion (RFC 7208 section 7), including the RFC's own examples."""

from __future__ import annotations

import ipaddress

import pytest

from domaincheck.macros import MacroContext, MacroSyntaxError, expand, parse_macro_string


def context(ip: str = "192.0.2.3") -> MacroContext:
    """The context of the RFC 7208 7.4 examples."""
    return MacroContext(
        ip=ipaddress.ip_address(ip),
        sender="strong-bad@email.example.com",
        local_part="strong-bad",
        sender_domain="email.example.com",
        domain="email.example.com",
        helo="mx.example.org",
        receiver="receiver.example.net",
        timestamp=1234567890,
    )


async def expanded(text: str, ip: str = "192.0.2.3", *, explanation: bool = False) -> str:
    """Parse and expand one macro string."""
    return await expand(parse_macro_string(text, explanation=explanation), context(ip), domain=not explanation)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("macro", "result"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%%%_%-", "% %20"),
    ],
)
async def test_rfc_examples(macro: str, result: str) -> None:
    """The examples of RFC 7208 section 7.4 expand as documented."""
    assert await expanded(macro) == result


@pytest.mark.asyncio
async def test_ipv6_reverse_nibbles() -> None:
    """%{ir} of an IPv6 address gives the reversed nibbles (case is irrelevant to DNS)."""
    result = await expanded("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01")
    assert result.lower() == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"


@pytest.mark.asyncio
async def test_uppercase_letter_url_escapes() -> None:
    """An upper-case macro letter URL-escapes the value."""
    assert await expanded("%{S}") == "strong-bad%40email.example.com"


@pytest.mark.asyncio
async def test_explanation_only_letters() -> None:
    """c, r and t expand in explanations, with spaces kept literally."""
    text = await expanded("%{c} via %{r} at %{t}", explanation=True)
    assert text == "192.0.2.3 via receiver.example.net at 1234567890"


@pytest.mark.asyncio
async def test_long_domain_is_truncated_from_the_left() -> None:
    """A domain over 253 characters loses labels on the left until it fits."""
    result = await expanded(".".join(["%{d}"] * 20))
    assert len(result) <= 253
    assert result.endswith("email.example.com")
    assert not result.startswith(".")


@pytest.mark.parametrize(
    ("text", "position"),
    [("%{x}", 0), ("ab%", 2), ("%{d0}", 0), ("%{c}", 0), ("%(ir)", 0), ("a%{d", 1), ("%{d2r!}", 0)],
)
def test_syntax_errors(text: str, position: int) -> None:
    """Malformed macros raise MacroSyntaxError with the position of the '%'."""
    with pytest.raises(MacroSyntaxError) as info:
        parse_macro_string(text)
    assert info.value.position == position


def test_space_only_in_explanations() -> None:
    """A space is a syntax error in a domain-spec but literal text in an explanation."""
    with pytest.raises(MacroSyntaxError):
        parse_macro_string("a b")
    assert parse_macro_string("a b", explanation=True) == ["a b"]
