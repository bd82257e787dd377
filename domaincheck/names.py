"""Domain names as people type them: the one canonical ASCII form, DNS length limits, look-alike scripts.

Pure functions, no DNS: every entry point of the engine runs them before it sends a query.

- ``canonical_domain`` turns a name given as U-labels (``bücher.example``) or A-labels
  (``xn--bcher-kva.example``) into one form: lowercase A-labels (IDNA 2008 with the UTS #46 mapping,
  non-transitional, as email-validator does for addresses), or raises ``InvalidDomainName``.
- ``mixed_script_label`` finds a label that mixes scripts beyond UTS #39's *Highly Restrictive*
  level (``paypal`` written with U+0430 CYRILLIC SMALL LETTER A), per label, since UTS #39 judges one
  identifier at a time.
"""

from __future__ import annotations

import re
from functools import lru_cache

import idna
import unicodedataplus

__all__ = [
    "MAX_LABEL_OCTETS",
    "MAX_NAME_OCTETS",
    "InvalidDomainName",
    "canonical_domain",
    "label_scripts_allowed",
    "mixed_script_label",
]

MAX_LABEL_OCTETS = 63
# 255 octets on the wire are 253 in text: the root label and the first length octet are not written.
MAX_NAME_OCTETS = 253
# No valid name is longer than this before the UTS #46 mapping (which may drop ignored characters):
# bounding the raw text keeps the IDNA work linear and small on hostile input.
_MAX_INPUT_CHARACTERS = 1024
# Letters, digits, hyphen, and the underscore of service labels (_dmarc, _spf) that operators check too.
_ASCII_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?", re.ASCII)
# UTS #46 maps these to a full stop before labels are split.
_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})

# UTS #39 section 5.2, Highly Restrictive: one script per label, or one of the combinations a
# language writes with (Japanese, Chinese with Bopomofo, Korean). Moderately Restrictive would also
# allow Latin with any other script but Cyrillic and Greek, e.g. Latin with Armenian U+0585 that
# looks like "o". ICANN's IDN guidelines let registries sell no such mixed label, so the stricter
# level loses no real domain.
_ALLOWED_SCRIPT_MIXES = (
    frozenset({"Latn", "Hani", "Hira", "Kana"}),
    frozenset({"Latn", "Hani", "Bopo"}),
    frozenset({"Latn", "Hani", "Hang"}),
)
# Common and Inherited characters (digits, hyphen, combining marks without extensions) fit any script.
_ANY_SCRIPT = frozenset({"Zyyy", "Zinh"})


class InvalidDomainName(ValueError):
    """A name that is no domain the engine may ask for; ``reason`` is a stable word for callers and tests."""

    def __init__(self, name: str, reason: str) -> None:
        shown = name if len(name) <= 80 else f"{name[:77]}..."
        super().__init__(f"{shown!r} is not a valid domain name ({reason.replace('_', ' ')})")
        self.name = name
        self.reason = reason


def _ascii_label(label: str, name: str) -> str:
    if not label:
        raise InvalidDomainName(name, "empty_label")
    if len(label) > MAX_LABEL_OCTETS:
        raise InvalidDomainName(name, "label_too_long")
    if label.startswith("-") or label.endswith("-"):
        raise InvalidDomainName(name, "hyphen")
    if not _ASCII_LABEL.fullmatch(label):
        raise InvalidDomainName(name, "invalid_character")
    if label.startswith("xn--"):
        try:
            idna.ulabel(label)
        except (idna.IDNAError, UnicodeError):
            raise InvalidDomainName(name, "invalid_idna") from None
    return label


def _unicode_label(label: str, name: str) -> str:
    try:
        encoded = idna.alabel(label).decode("ascii")
    except idna.IDNAError as exc:
        reason = "label_too_long" if "too long" in str(exc).lower() else "invalid_idna"
        raise InvalidDomainName(name, reason) from None
    except UnicodeError:
        raise InvalidDomainName(name, "invalid_idna") from None
    return encoded


def canonical_domain(name: str, *, multi_label: bool = False) -> str:
    """The lowercase A-label form of ``name`` (one trailing dot allowed), or InvalidDomainName.

    Refused: empty names and labels (``a..b``, ``.a``), labels over 63 and names over 253 octets in
    their A-label form, a hyphen at the start or end of a label, characters other than letters,
    digits, hyphen and underscore, invalid IDNA (``xn--zz``); with ``multi_label`` also a name of
    one label (RFC 7208 4.3 gives such a domain no SPF lookup).
    """
    text = name.strip()
    if len(text) > _MAX_INPUT_CHARACTERS:
        raise InvalidDomainName(name, "name_too_long")
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidDomainName(name, "empty")
    if text.isascii():
        labels = [_ascii_label(label, name) for label in text.lower().split(".")]
    else:
        try:
            mapped = idna.uts46_remap(text.translate(_FULL_STOPS), std3_rules=False, transitional=False)
        except (idna.IDNAError, UnicodeError):
            raise InvalidDomainName(name, "invalid_idna") from None
        labels = [
            _ascii_label(label, name) if label.isascii() else _unicode_label(label, name) for label in mapped.split(".")
        ]
    canonical = ".".join(labels)
    if len(canonical) > MAX_NAME_OCTETS:
        raise InvalidDomainName(name, "name_too_long")
    if multi_label and len(labels) < 2:
        raise InvalidDomainName(name, "single_label")
    return canonical


@lru_cache(maxsize=4096)
def _script_extensions(character: str) -> frozenset[str]:
    """The character's Script_Extensions, augmented as UTS #39 section 5.1 says (Han is Japanese too, …)."""
    scripts = set(unicodedataplus.script_extensions(character))
    if "Hani" in scripts:
        scripts |= {"Hanb", "Jpan", "Kore"}
    if scripts & {"Hira", "Kana"}:
        scripts.add("Jpan")
    if "Hang" in scripts:
        scripts.add("Kore")
    if "Bopo" in scripts:
        scripts.add("Hanb")
    return frozenset(scripts)


def label_scripts_allowed(label: str) -> bool:
    """Whether one label (a U-label) is Highly Restrictive under UTS #39: one script or an allowed mix.

    Single script means the augmented Script_Extensions of its characters (Common and Inherited
    fitting all) still share a script; otherwise the label must be covered by Latin + Han + Hiragana
    + Katakana, Latin + Han + Bopomofo or Latin + Han + Hangul.
    """
    if label.isascii():
        return True
    character_scripts = [scripts for ch in label if not (scripts := _script_extensions(ch)) <= _ANY_SCRIPT]
    if not character_scripts:
        return True
    if frozenset.intersection(*character_scripts):
        return True
    return any(all(scripts & mix for scripts in character_scripts) for mix in _ALLOWED_SCRIPT_MIXES)


def mixed_script_label(domain: str) -> str | None:
    """The first label of a canonical (A-label) domain that mixes scripts beyond Highly Restrictive, as a U-label.

    None when every label passes. A label that is no valid A-label is not judged here:
    ``canonical_domain`` refuses it.
    """
    for label in domain.split("."):
        if label[:4].lower() != "xn--":
            continue  # ASCII: one script, Latin, and digits or hyphens that fit it
        try:
            unicode_label = idna.ulabel(label)
        except (idna.IDNAError, UnicodeError):
            continue
        if not label_scripts_allowed(unicode_label):
            return unicode_label
    return None
