"""The one gettext catalogue per language (German default, English) for every text a user reads.

Source texts (msgids) are English, in the code and templates; `locale/<lang>/LC_MESSAGES/messages.po`
holds the translations. The .po files are read at import, so no compiled .mo file is built or committed.
Texts keyed by a stable code (user errors, SPF problems) carry the code as their msgctxt: the code is what
clients see and branch on, the text only what they show. docs/TEXTS.md says how to add one (`make texts`).
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "coded",
    "coded_text",
    "coded_texts",
    "translations",
]

DEFAULT_LANGUAGE = "de"
LANGUAGES = ("de", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


def coded(code: str, source: str) -> tuple[str, str]:
    """Mark `source` for extraction with `code` as its msgctxt (keyword `coded:1c,2` in pyproject.toml)."""
    return code, source


def coded_texts(*entries: tuple[str, str]) -> Mapping[str, str]:
    """The code -> English source table of `coded()` entries; a code given twice is a mistake."""
    table = dict(entries)
    if len(table) != len(entries):
        raise ValueError("a code is listed twice")
    return table


def _load(lang: str) -> gettext.NullTranslations:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=lang, domain=DOMAIN)
    compiled = BytesIO()
    # Fuzzy entries are not reviewed yet: they fall back to the English source, as missing ones do.
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


# Read once at import: a broken .po file stops the process at start, not on the first request that needs it.
_TRANSLATIONS = {lang: _load(lang) for lang in LANGUAGES}


def translations(lang: str) -> gettext.NullTranslations:
    """The translations of `lang` ("de" or "en"; anything else is German), with gettext/ngettext/pgettext."""
    return _TRANSLATIONS.get(lang, _TRANSLATIONS[DEFAULT_LANGUAGE])


def coded_text(lang: str, code: str, source: str, **params: Any) -> str:
    """The text of `code` (English `source`) in `lang`, with `{name}` placeholders filled from `params`."""
    return translations(lang).pgettext(code, source).format(**params)
