"""SPF macro strings (RFC 7208 section 7): syntax check and expansion."""

from __future__ import annotations

import ipaddress
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "MacroContext",
    "MacroExpand",
    "MacroSyntaxError",
    "expand",
    "needs_dns",
    "parse_macro_string",
    "reverse_pointer_name",
]

_LETTERS = frozenset("slodiphv")
_EXPLANATION_LETTERS = frozenset("crt")
_DELIMITERS = frozenset(".-+,/_=")
_MAX_DOMAIN_LENGTH = 253


class MacroSyntaxError(ValueError):
    """A malformed macro string; ``position`` is the offset of the offending character."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True, slots=True)
class MacroExpand:
    """One ``%{...}`` expansion."""

    letter: str  # lower case
    url_escape: bool
    digits: int | None
    reverse: bool
    delimiters: str


Piece = str | MacroExpand


def needs_dns(pieces: Sequence[Piece]) -> bool:
    """True when expanding needs DNS lookups (the ``p`` macro)."""
    return any(isinstance(piece, MacroExpand) and piece.letter == "p" for piece in pieces)


def parse_macro_string(text: str, *, explanation: bool = False) -> list[Piece]:
    """Split a macro string into literal text and expansions, or raise :class:`MacroSyntaxError`.

    ``explanation=True`` parses an explain-string: spaces are literal and ``c``, ``r``, ``t`` are allowed.
    """
    pieces: list[Piece] = []
    literal: list[str] = []
    i = 0
    length = len(text)
    while i < length:
        char = text[i]
        if char != "%":
            if not ("\x21" <= char <= "\x7e" or (explanation and char == " ")):
                raise MacroSyntaxError(f"invalid character {char!r}", i)
            literal.append(char)
            i += 1
            continue
        if i + 1 >= length:
            raise MacroSyntaxError("'%' at the end of the string", i)
        nxt = text[i + 1]
        if nxt == "%":
            literal.append("%")
        elif nxt == "_":
            literal.append(" ")
        elif nxt == "-":
            literal.append("%20")
        elif nxt == "{":
            end = text.find("}", i + 2)
            if end < 0:
                raise MacroSyntaxError("unterminated macro '%{'", i)
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append(_parse_expand(text[i + 2 : end], i, explanation))
            i = end + 1
            continue
        else:
            raise MacroSyntaxError(f"invalid macro escape '%{nxt}'", i)
        i += 2
    if literal:
        pieces.append("".join(literal))
    return pieces


def _parse_expand(body: str, position: int, explanation: bool) -> MacroExpand:
    if not body:
        raise MacroSyntaxError("empty macro '%{}'", position)
    letter = body[0]
    lower = letter.lower()
    if lower not in _LETTERS and not (explanation and lower in _EXPLANATION_LETTERS):
        if lower in _EXPLANATION_LETTERS:
            raise MacroSyntaxError(f"macro letter '{letter}' is only allowed in explanations", position)
        raise MacroSyntaxError(f"unknown macro letter '{letter}'", position)
    i = 1
    while i < len(body) and body[i].isdigit():
        i += 1
    digits = int(body[1:i]) if i > 1 else None
    if digits == 0:
        raise MacroSyntaxError("macro digit transformer must not be zero", position)
    reverse = False
    if i < len(body) and body[i] in "rR":
        reverse = True
        i += 1
    delimiters = body[i:]
    if any(d not in _DELIMITERS for d in delimiters):
        raise MacroSyntaxError(f"invalid macro delimiter in '%{{{body}}}'", position)
    return MacroExpand(lower, letter.isupper(), digits, reverse, delimiters)


def reverse_pointer_name(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The in-addr.arpa / ip6.arpa name of an address."""
    return f"{_dotted_ip(ip, reverse=True)}.{'in-addr' if ip.version == 4 else 'ip6'}.arpa"


def _dotted_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, reverse: bool = False) -> str:
    # Upper-case nibbles for IPv6, as the RFC 7208 test suite expects for %{i}; DNS ignores case.
    parts = str(ip).split(".") if ip.version == 4 else list(f"{int(ip):032X}")
    if reverse:
        parts.reverse()
    return ".".join(parts)


@dataclass(slots=True)
class MacroContext:
    """The values the macro letters stand for in one check_host() invocation."""

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    sender: str
    local_part: str
    sender_domain: str
    domain: str
    helo: str
    receiver: str = "unknown"
    timestamp: int | None = None
    validated_name: Callable[[str], Awaitable[str]] | None = None

    def for_domain(self, domain: str) -> MacroContext:
        """The same context with another current domain (include/redirect targets)."""
        return MacroContext(
            self.ip,
            self.sender,
            self.local_part,
            self.sender_domain,
            domain,
            self.helo,
            self.receiver,
            self.timestamp,
            self.validated_name,
        )


async def _letter_value(letter: str, ctx: MacroContext) -> str:
    if letter == "s":
        return ctx.sender
    if letter == "l":
        return ctx.local_part
    if letter == "o":
        return ctx.sender_domain
    if letter == "d":
        return ctx.domain
    if letter == "i":
        return _dotted_ip(ctx.ip)
    if letter == "p":
        return await ctx.validated_name(ctx.domain) if ctx.validated_name is not None else "unknown"
    if letter == "h":
        return ctx.helo
    if letter == "v":
        return "in-addr" if ctx.ip.version == 4 else "ip6"
    if letter == "c":
        return str(ctx.ip)
    if letter == "r":
        return ctx.receiver
    if letter == "t":
        return str(int(time.time()) if ctx.timestamp is None else ctx.timestamp)
    raise AssertionError(letter)


def _transform(value: str, macro: MacroExpand) -> str:
    if macro.digits is not None or macro.reverse or macro.delimiters:
        delimiters = macro.delimiters or "."
        parts = [value]
        for delimiter in delimiters:
            parts = [piece for part in parts for piece in part.split(delimiter)]
        if macro.reverse:
            parts.reverse()
        if macro.digits is not None and macro.digits < len(parts):
            parts = parts[-macro.digits :]
        value = ".".join(parts)
    if macro.url_escape:
        value = urllib.parse.quote(value, safe="")
    return value


async def expand(pieces: Sequence[Piece], ctx: MacroContext, *, domain: bool = True) -> str:
    """Expand parsed pieces; for a domain-spec (``domain=True``) shorten over-long results.

    RFC 7208 7.3: when the expanded domain exceeds 253 characters, labels are removed from the
    left until it fits.
    """
    out: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        else:
            out.append(_transform(await _letter_value(piece.letter, ctx), piece))
    result = "".join(out)
    if domain:
        while len(result.rstrip(".")) > _MAX_DOMAIN_LENGTH and "." in result:
            result = result.split(".", 1)[1]
    return result
