"""SPF record parsing (RFC 7208 sections 4.5, 4.6, 5, 6, 7): terms, record selection, syntax errors with positions."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from domaincheck.macros import MacroExpand, MacroSyntaxError, Piece, parse_macro_string

__all__ = [
    "DNS_MECHANISMS",
    "Mechanism",
    "Modifier",
    "SpfRecord",
    "SyntaxIssue",
    "Term",
    "is_spf_record",
    "parse_record",
    "select_spf_records",
]

MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
QUALIFIERS = "+-~?"

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9\-_.]*)=(.*)", re.DOTALL)
_MECHANISM = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9]*)(.*)", re.DOTALL)
_DUAL_CIDR = re.compile(r"(?:/([0-9]+))?(?://([0-9]+))?")
_DOMAIN_WITH_CIDR = re.compile(r"(.*?)((?:/[0-9]+)?(?://[0-9]+)?)", re.DOTALL)
_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]")
_VERSION = "v=spf1"


@dataclass(frozen=True, slots=True)
class SyntaxIssue:
    """A syntax error: what is wrong, where (0-based offset in the record) and in which term."""

    message: str
    position: int
    term: str


@dataclass(frozen=True, slots=True)
class Mechanism:
    """A parsed mechanism such as ``-ip4:192.0.2.0/24`` or ``include:_spf.example.com``."""

    qualifier: str
    name: str
    text: str
    position: int
    domain_spec: str | None = None
    pieces: tuple[Piece, ...] | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def queries_dns(self) -> bool:
        """True when evaluating it counts against the 10-lookup limit."""
        return self.name in DNS_MECHANISMS


@dataclass(frozen=True, slots=True)
class Modifier:
    """A parsed modifier (``redirect=``, ``exp=`` or an unknown one, which is ignored)."""

    name: str
    value: str
    text: str
    position: int
    pieces: tuple[Piece, ...] = ()


Term = Mechanism | Modifier


@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A parsed ``v=spf1`` record. ``errors`` is empty for a valid record."""

    text: str
    terms: tuple[Term, ...] = ()
    errors: tuple[SyntaxIssue, ...] = ()
    mechanisms: tuple[Mechanism, ...] = field(default=())
    redirect: Modifier | None = None
    explanation: Modifier | None = None

    @property
    def valid(self) -> bool:
        """True when the record has no syntax error."""
        return not self.errors

    @property
    def has_all(self) -> bool:
        """True when an ``all`` mechanism appears anywhere."""
        return any(m.name == "all" for m in self.mechanisms)


def is_spf_record(text: str | bytes) -> bool:
    """RFC 7208 4.5: the record starts with ``v=spf1`` (any case) followed by a space or the end."""
    head = text[:7].lower() if isinstance(text, str) else text[:7].decode("latin-1").lower()
    return head == _VERSION or head == _VERSION + " "


def select_spf_records(texts: list[bytes]) -> list[str]:
    """The SPF records among TXT strings (already joined), decoded as Latin-1 to keep every byte."""
    return [raw.decode("latin-1") for raw in texts if is_spf_record(raw)]


def _domain_spec(spec: str, position: int, term: str) -> tuple[tuple[Piece, ...], SyntaxIssue | None]:
    if not spec:
        return (), SyntaxIssue("missing domain", position, term)
    try:
        pieces = tuple(parse_macro_string(spec))
    except MacroSyntaxError as exc:
        return (), SyntaxIssue(exc.message, position + exc.position, term)
    if spec.endswith("}") and pieces and isinstance(pieces[-1], MacroExpand):
        return pieces, None
    body = spec[:-1] if spec.endswith(".") else spec
    dot = body.rfind(".")
    toplabel = body[dot + 1 :]
    if dot < 0 or not _TOPLABEL.fullmatch(toplabel):
        offset = position + (dot + 1 if dot >= 0 else 0)
        return pieces, SyntaxIssue(f"invalid domain {spec!r}: bad top label {toplabel!r}", offset, term)
    return pieces, None


def _cidr(digits: str | None, limit: int, position: int, term: str) -> tuple[int | None, SyntaxIssue | None]:
    if digits is None:
        return None, None
    if (len(digits) > 1 and digits[0] == "0") or int(digits) > limit:
        return None, SyntaxIssue(f"invalid prefix length /{digits}", position, term)
    return int(digits), None


def _parse_mechanism(text: str, position: int) -> tuple[Mechanism | None, SyntaxIssue | None]:
    match = _MECHANISM.fullmatch(text)
    if match is None:
        return None, SyntaxIssue(f"unknown term {text!r}", position, text)
    qualifier = match.group(1) or "+"
    name = match.group(2).lower()
    rest = match.group(3)
    rest_pos = position + match.start(3)
    if name not in MECHANISMS:
        return None, SyntaxIssue(f"unknown mechanism {match.group(2)!r}", position, text)

    def issue(message: str, offset: int = rest_pos) -> tuple[None, SyntaxIssue]:
        return None, SyntaxIssue(message, offset, text)

    if name == "all":
        if rest:
            return issue("'all' takes no argument")
        return Mechanism(qualifier, name, text, position), None

    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            return issue(f"'{name}' needs an address")
        addr, sep, length = rest[1:].partition("/")
        try:
            if name == "ip4":
                address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(addr)
            else:
                if "%" in addr:
                    raise ValueError(addr)
                address = ipaddress.IPv6Address(addr)
        except ValueError:
            return issue(f"invalid {name} address {addr!r}", rest_pos + 1)
        limit = 32 if name == "ip4" else 128
        if sep and not re.fullmatch(r"[0-9]+", length):
            return issue(f"invalid prefix length /{length}", rest_pos + 1 + len(addr))
        cidr, problem = _cidr(length if sep else None, limit, rest_pos + 1 + len(addr), text)
        if problem:
            return None, problem
        network = ipaddress.ip_network((address, limit if cidr is None else cidr), strict=False)
        return Mechanism(qualifier, name, text, position, network=network), None

    domain_spec: str | None = None
    pieces: tuple[Piece, ...] | None = None
    cidr_text = ""
    cidr_pos = rest_pos
    if rest.startswith(":"):
        if name in ("a", "mx"):
            split = _DOMAIN_WITH_CIDR.fullmatch(rest[1:])
            assert split is not None
            domain_spec, cidr_text = split.group(1), split.group(2)
            cidr_pos = rest_pos + 1 + len(domain_spec)
        else:
            domain_spec = rest[1:]
        pieces, problem = _domain_spec(domain_spec, rest_pos + 1, text)
        if problem:
            return None, problem
    elif rest.startswith("/") and name in ("a", "mx"):
        cidr_text = rest
    elif rest:
        return issue(f"unexpected {rest!r} after '{name}'")
    elif name in ("include", "exists"):
        return issue(f"'{name}' needs a domain")

    cidr4 = cidr6 = None
    if cidr_text:
        dual = _DUAL_CIDR.fullmatch(cidr_text)
        if dual is None:
            return issue(f"invalid prefix length {cidr_text!r}", cidr_pos)
        cidr4, problem = _cidr(dual.group(1), 32, cidr_pos, text)
        if problem:
            return None, problem
        cidr6, problem = _cidr(dual.group(2), 128, cidr_pos, text)
        if problem:
            return None, problem
    return Mechanism(qualifier, name, text, position, domain_spec, pieces, None, cidr4, cidr6), None


def _parse_modifier(match: re.Match[str], text: str, position: int) -> tuple[Modifier | None, SyntaxIssue | None]:
    name = match.group(1).lower()
    value = match.group(2)
    value_pos = position + match.start(2)
    if name in ("redirect", "exp"):
        pieces, problem = _domain_spec(value, value_pos, text)
        if problem:
            return None, problem
        return Modifier(name, value, text, position, pieces), None
    try:
        pieces = tuple(parse_macro_string(value))
    except MacroSyntaxError as exc:
        return None, SyntaxIssue(exc.message, value_pos + exc.position, text)
    return Modifier(name, value, text, position, pieces), None


def parse_record(text: str) -> SpfRecord:
    """Parse one SPF record, collecting every syntax error with its position.

    The text must start with the version tag (see :func:`is_spf_record`). Characters outside
    printable ASCII, unknown mechanisms, bad domains, prefix lengths and macros, and repeated
    ``redirect``/``exp`` modifiers are errors; evaluation treats any error as permerror.
    """
    errors: list[SyntaxIssue] = []
    terms: list[Term] = []
    for index, char in enumerate(text):
        if not " " <= char <= "~":
            errors.append(SyntaxIssue(f"invalid character {char!r} (only printable ASCII)", index, ""))
    if not is_spf_record(text):
        errors.append(SyntaxIssue("record does not start with 'v=spf1'", 0, text[:6]))
        return SpfRecord(text, (), tuple(errors))
    position = len(_VERSION)
    redirect: Modifier | None = None
    explanation: Modifier | None = None
    for raw in text[len(_VERSION) :].split(" "):
        start = position
        position = start + len(raw) + 1
        if not raw:
            continue
        term_errors_before = len(errors)
        modifier_match = _MODIFIER.fullmatch(raw)
        if modifier_match is not None:
            modifier, problem = _parse_modifier(modifier_match, raw, start)
            if modifier is not None:
                terms.append(modifier)
                if modifier.name == "redirect":
                    if redirect is not None:
                        errors.append(SyntaxIssue("'redirect' appears twice", start, raw))
                    redirect = modifier
                elif modifier.name == "exp":
                    if explanation is not None:
                        errors.append(SyntaxIssue("'exp' appears twice", start, raw))
                    explanation = modifier
        else:
            mechanism, problem = _parse_mechanism(raw, start)
            if mechanism is not None:
                terms.append(mechanism)
        if problem is not None and len(errors) == term_errors_before:
            errors.append(problem)
    errors.sort(key=lambda issue: issue.position)
    mechanisms = tuple(t for t in terms if isinstance(t, Mechanism))
    return SpfRecord(text, tuple(terms), tuple(errors), mechanisms, redirect, explanation)
