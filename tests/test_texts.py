"""The text catalogue (texts/): German complete, current with the sources, and counts in proper plural forms."""

from __future__ import annotations

import ast
import re
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from texts import LOCALE_DIR, translations
from web.dashboard import flash_text, template_environment
from web.formatting import format_age, format_count, format_datetime, format_size
from web.mime import HEADER_LABELS, header_rows
from web.views.accounts import SPF_FILTERS, STATUS_FILTERS, filter_options
from web.views.spf import spf_summary_text

Key = tuple[str | None, str | tuple[str, ...]]


def _catalog(path: Path) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file)


def _key(message: Message) -> Key:
    return message.context, message.id if isinstance(message.id, str) else tuple(message.id)


def _keys(catalog: Catalog) -> set[Key]:
    return {_key(message) for message in catalog if message.id}


def _forms(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


POT = LOCALE_DIR / "messages.pot"
GERMAN = _catalog(LOCALE_DIR / "de" / "LC_MESSAGES" / "messages.po")


def test_every_text_has_a_german_translation() -> None:
    """Each msgid of messages.pot has a reviewed (non-fuzzy), non-empty German text, every plural form filled."""
    assert GERMAN.plural_forms == "nplurals=2; plural=(n != 1);"
    german = {_key(message): message for message in GERMAN if message.id}
    missing = []
    for key in sorted(_keys(_catalog(POT)), key=repr):
        message = german.get(key)
        forms = _forms(message.string) if message else ()
        complete = len(forms) == (GERMAN.num_plurals if message and message.pluralizable else 1) and all(forms)
        if message is None or message.fuzzy or not complete:
            missing.append(key)
    assert missing == [], "translate these in texts/locale/de/LC_MESSAGES/messages.po"


def _placeholders(text: str) -> set[str]:
    braces = {name for _, name, _, _ in string.Formatter().parse(text) if name} if "{" in text else set()
    return braces | set(re.findall(r"%\((\w+)\)[sd]", text))


def test_german_texts_keep_the_placeholders() -> None:
    """A German text names the same placeholders as its English msgid (a singular form may say "one" in words)."""
    for message in GERMAN:
        if not message.id:
            continue
        ids, forms = _forms(message.id), _forms(message.string)
        assert _placeholders(forms[-1]) == _placeholders(ids[-1]), message.id
        assert all(_placeholders(form) <= _placeholders(ids[-1]) for form in forms), message.id


def test_messages_pot_is_current(repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Extracting from the sources and templates, as `make texts` does, gives exactly the msgids of messages.pot."""
    monkeypatch.chdir(repo_root)  # pybabel reads [tool.babel.*] from ./pyproject.toml
    extracted = tmp_path / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-o", str(extracted)])
    assert _keys(_catalog(extracted)) == _keys(_catalog(POT)), "run `make texts`"


@pytest.mark.parametrize("lang", ["de", "en"])
def test_po_files_hold_exactly_the_texts_in_use(lang: str) -> None:
    """Each .po file has an entry for every msgid of messages.pot and none beyond it (nothing obsolete)."""
    catalog = _catalog(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po")
    assert not catalog.obsolete
    assert _keys(catalog) == _keys(_catalog(POT)), "run `make texts`"


def test_code_texts_are_keyed_by_their_code() -> None:
    """A text with a stable code (user errors, SPF findings) is found by the code as msgctxt, in both languages."""
    source = "The domain {domain} has no SPF record."
    assert (
        translations("de").pgettext("NO_SPF_RECORD", source)
        == "Für die Domain {domain} ist kein SPF-Eintrag hinterlegt."
    )
    assert translations("en").pgettext("NO_SPF_RECORD", source) == source
    assert translations("de").gettext(source) == source  # the same words without their code are another text


FLASHES = [
    ("deleted", "de", 0, "Der Mail-Account wurde gelöscht; er enthielt keine Nachrichten."),
    ("deleted", "de", 1, "Der Mail-Account wurde gelöscht, mit seiner einzigen Nachricht."),
    ("deleted", "de", 2, "Der Mail-Account wurde gelöscht, mit allen 2 Nachrichten."),
    ("deleted", "en", 0, "The mail account was deleted; it had no messages."),
    ("deleted", "en", 1, "The mail account was deleted, with its only message."),
    ("deleted", "en", 2, "The mail account was deleted, with all 2 messages."),
    ("merged", "de", 0, "Die Mail-Accounts wurden zusammengeführt; es gab keine Nachrichten zu verschieben."),
    ("merged", "de", 1, "Die Mail-Accounts wurden zusammengeführt: 1 Nachricht verschoben."),
    ("merged", "de", 2, "Die Mail-Accounts wurden zusammengeführt: 2 Nachrichten verschoben."),
    ("merged", "en", 0, "The mail accounts were merged; there were no messages to move."),
    ("merged", "en", 1, "The mail accounts were merged: 1 message moved."),
    ("merged", "en", 2, "The mail accounts were merged: 2 messages moved."),
]


@pytest.mark.parametrize(("code", "lang", "count", "text"), FLASHES)
def test_flash_counts_messages_in_words(code: str, lang: str, count: int, text: str) -> None:
    """The delete and merge notices use the plural form for the count, and words for none: no "Nachricht(en)"."""
    assert flash_text(translations(lang), code, {"count": count}) == ("success", text)


ACCOUNT = {
    "id": "TWFpbEFjY291bnQ6MQ==",
    "email": "alt@firma.example",
    "senderName": "Alt",
    "inboundAddress": "p1@mailbox.example.com",
}
PAGE = {"lang": "de", "flashes": [], "csrf_field": "csrf_token", "csrf": "t", "identity": None, "spf_include": "x"}


def _page(lang: str, name: str, count: int, **context: Any) -> str:
    page = template_environment(lang, time.time).get_template(name)
    html = page.render({**PAGE, "lang": lang, "account": {**ACCOUNT, "messageCount": count}, **context})
    return " ".join(html.split())


DELETE_PAGES = [
    ("de", 0, "Er enthält keine Nachrichten."),
    ("de", 1, "mit <strong>seiner einzigen Nachricht</strong>. Die Nachricht kann"),
    ("de", 2, "mit <strong>allen 2 Nachrichten</strong>. Die Nachrichten können"),
    ("en", 0, "It holds no messages."),
    ("en", 1, "with <strong>its only message</strong>. The message <strong>cannot"),
    ("en", 2, "with <strong>all 2 messages</strong>. The messages"),
]


@pytest.mark.parametrize(("lang", "count", "text"), DELETE_PAGES)
def test_delete_page_counts_messages(lang: str, count: int, text: str) -> None:
    """The delete warning says none, the only message or all n messages; never "allen 0" or "1 Nachricht(en)"."""
    html = _page(lang, "account_delete.html", count, error=None)
    assert text in html
    assert "allen 0" not in html and "all 0" not in html and "(en)" not in html
    # Nothing to keep, so no advice on keeping the messages.
    assert ("/merge" in html) is (count > 0)


MERGE_PAGES = [
    (
        "de",
        0,
        "<strong>alt@firma.example</strong> enthält keine Nachrichten; es wird nichts verschoben.",
        "0 Nachrichten",
    ),
    ("de", 1, "Die <strong>einzige Nachricht</strong> von <strong>alt@firma.example</strong> wird", "1 Nachricht)"),
    ("de", 2, "Alle <strong>2 Nachrichten</strong> von <strong>alt@firma.example</strong> werden", "2 Nachrichten)"),
    ("en", 0, "<strong>alt@firma.example</strong> holds no messages; nothing is moved.", "0 messages"),
    ("en", 1, "The <strong>only message</strong> of <strong>alt@firma.example</strong> is moved", "1 message)"),
    ("en", 2, "All <strong>2 messages</strong> of <strong>alt@firma.example</strong> are moved", "2 messages)"),
]


@pytest.mark.parametrize(("lang", "count", "text", "option"), MERGE_PAGES)
def test_merge_page_counts_messages(lang: str, count: int, text: str, option: str) -> None:
    """The merge warning and each target's label use the plural form of their own count."""
    target = {"id": "T", "email": "neu@firma.example", "senderName": "<b>Neu</b>", "messageCount": count}
    html = _page(
        lang,
        "account_merge.html",
        count,
        targets=[target],
        values={"targetId": "", "confirm": ""},
        errors={},
        more_targets=False,
    )
    assert text in html
    assert f"neu@firma.example (&lt;b&gt;Neu&lt;/b&gt;, {option}" in html  # values escaped, the text's markup kept
    assert "Alle 1" not in html and "allen 0" not in html


WEB = Path(__file__).resolve().parent.parent / "web"
WORD = re.compile(r"[^\W\d_]+")
UMLAUT = re.compile(r"[äöüÄÖÜß]")
# Names that read the same in every language and stand in a template as they are.
PRODUCT_NAMES = {"SPF", "DMARC"}
# Blocks that fill an attribute with CSS classes (base.html's `class="page {% block page_class %}"`).
CLASS_BLOCKS = {"page_class"}
TRANSLATION_CALLS = {"_", "gettext", "ngettext", "pgettext", "npgettext"}


def _german_only_words() -> set[str]:
    """Words of the German texts that no English msgid uses: a literal with one of them is German."""
    english: set[str] = set()
    german: set[str] = set()
    for message in GERMAN:
        if message.id:
            english.update(word.lower() for form in _forms(message.id) for word in WORD.findall(form))
            german.update(word.lower() for form in _forms(message.string) for word in WORD.findall(form))
    return {word for word in german - english if len(word) > 2}


GERMAN_ONLY = _german_only_words()
# A lowercase name, path or URL fragment ("lang", "#domainkonfiguration"): code, not text.
IDENTIFIER = re.compile(r"[#/]?[a-z_][a-z0-9_/-]*")


def _looks_german(text: str, identifiers: bool = False) -> bool:
    """An umlaut or a German-only word; with `identifiers`, a lone name or path is code, not text."""
    if identifiers and IDENTIFIER.fullmatch(text):
        return False
    return bool(UMLAUT.search(text)) or any(word.lower() in GERMAN_ONLY for word in WORD.findall(text))


# Attributes people read: labels for screen readers, tooltips, placeholders, the phone layout's cell labels.
READ_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "data-label"}


class _ReadText(HTMLParser):
    """The text nodes of an HTML page and the attributes people read (labels, titles, placeholders)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.texts.extend(value for name, value in attrs if name in READ_ATTRIBUTES and value)


def _template_texts(name: str) -> tuple[list[str], list[str]]:
    """What a template writes itself (its HTML's text, an expression as a blank) and its string literals
    outside translation calls."""
    source = (WEB / "templates" / name).read_text()
    html: list[str] = []
    literals: list[str] = []
    in_call: list[bool] = []  # per open parenthesis: inside a translation call
    calls_next = in_class_block = False
    previous = ""
    for _, kind, value in template_environment("de", time.time).lex(source):
        if kind == "whitespace":
            continue
        if kind == "name" and (previous == "block" or value == "endblock"):
            in_class_block = value in CLASS_BLOCKS
        previous = value
        if kind == "data" and not in_class_block:
            html.append(value)
        elif kind in ("variable_begin", "block_begin"):
            html.append(" ")
        elif kind == "string" and not any(in_call):
            literals.append(value)
        elif kind == "operator" and value == "(":
            in_call.append(calls_next)
        elif kind == "operator" and value == ")" and in_call:
            in_call.pop()
        calls_next = kind == "name" and value in TRANSLATION_CALLS
    parser = _ReadText()
    parser.feed("".join(html))
    parser.close()
    return parser.texts, literals


TEMPLATES = sorted(path.name for path in (WEB / "templates").glob("*.html"))


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_write_no_text_of_their_own(name: str) -> None:
    """A template's words come from the catalogue: outside `_()`/`ngettext()` only product names, and no
    string literal in an expression that reads German ("Aktiv" if … else "Inaktiv")."""
    texts, literals = _template_texts(name)
    words = {word for text in texts for word in WORD.findall(text)} - PRODUCT_NAMES
    assert words == set(), f"put these texts of {name} into the catalogue"
    assert [literal for literal in literals if _looks_german(literal)] == []


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
    }


@pytest.mark.parametrize("path", sorted(WEB.rglob("*.py")), ids=lambda path: str(path.relative_to(WEB)))
def test_web_code_has_no_german_literal(path: Path) -> None:
    """No string in web/ code (docstrings aside) reads German: the English source goes through the catalogue."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    german = [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        if _looks_german(node.value, identifiers=True)
    ]
    assert german == []


JS_STRING = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`""")


@pytest.mark.parametrize("path", sorted((WEB / "static").glob("*.js")), ids=lambda path: path.name)
def test_scripts_carry_no_german(path: Path) -> None:
    """The dashboard's script takes its words from the page (rendered through the catalogue), none of its own."""
    code = re.sub(r"(^|\s)//.*", "", path.read_text())
    assert [text for text in JS_STRING.findall(code) if _looks_german(text)] == []


NOW = 1_767_000_000.0  # the clock of the rendered pages
CHECKED = "2025-12-29T08:00:00+00:00"
PROBLEMS = [
    {"code": code, "message": f"The domain firm.example: {code}."}
    for code in ("DOMAIN_UNREACHABLE", "NO_MX_RECORDS", "SPF_NEEDS_UPDATE", "NO_SPF_RECORD", "DNS_TEMPORARY_FAILURE")
]
SPF_REPORT = {
    "ok": False,
    "domain": "firm.example",
    "checkedAt": CHECKED,
    "record": "v=spf1 mx -all",
    "suggestedRecord": "v=spf1 mx include:_spf.example.net -all",
    "lookupCount": 3,
    "mxHosts": [],
    "dmarcRecord": None,
    "problems": PROBLEMS,
    "findings": [
        {"code": "X", "severity": severity, "message": "A finding."} for severity in ("ERROR", "WARNING", "INFO")
    ],
}
ROW = {
    "id": "TWFpbEFjY291bnQ6MQ==",
    "email": "sales@firm.example",
    "senderName": "Sales",
    "status": "ACTIVE",
    "inboundAddress": "p1@mailbox.example.com",
    "outboundAddress": "b1@mailbox.example.com",
    "messageCount": 3,
    "spf": None,
    "pendingOperation": None,
}
MERGING = {"kind": "MERGE", "progress": 2000, "total": 5300, "targetId": "TWFpbEFjY291bnQ6Mg=="}
DELETING = {"kind": "DELETE", "progress": 0, "total": 1, "targetId": None}


def _list_context(lang: str, rows: list[dict[str, Any]], total: int, filtered: bool) -> dict[str, Any]:
    t = translations(lang)
    return {
        "accounts": rows,
        "total": total,
        "search": "",
        "status": "",
        "status_filters": filter_options(t, STATUS_FILTERS),
        "spf": "",
        "spf_filters": filter_options(t, SPF_FILTERS),
        "spf_summary": {"text": spf_summary_text(t, 12, 3), "withProblems": 3},
        "problems_link": "/mail-accounts?spf=problem",
        "filtered": filtered,
        "page": 2,
        "pages": 3,
        "next_link": "?after=b",
        "previous_link": "?after=a",
        "here": "/mail-accounts",
    }


def _account_context(
    lang: str, spf: dict[str, Any] | None, smtp: bool, pending: dict[str, Any] | None = None
) -> dict[str, Any]:
    account = {
        **ROW,
        "status": "INACTIVE",
        "createdAt": CHECKED,
        "spf": spf,
        "smtpServer": {"host": "smtp.firm.example", "port": 587, "security": "STARTTLS"} if smtp else None,
        "pendingOperation": pending,
    }
    return {"account": account, "values": {"email": ROW["email"], "senderName": "Sales"}, "errors": {}, "general": []}


MESSAGE = {
    "id": "TWVzc2FnZTox",
    "date": CHECKED,
    "receivedAt": CHECKED,
    "direction": "INBOUND",
    "from": "client@example.org",
    "to": "sales@firm.example",
    "subject": None,
    "size": 123_456,
    "isBounce": False,
    "messageId": "<1@example.org>",
    "content": {
        "headers": [{"name": name, "value": "x"} for name in HEADER_LABELS],
        "text": "Hello",
        "htmlOnly": True,
        "attachments": ["offer.pdf"],
        "truncated": True,
    },
}


def _messages_context(lang: str, count: int) -> dict[str, Any]:
    rows = [
        {**MESSAGE, "direction": direction, "isBounce": bounce}
        for direction, bounce in [("INBOUND", False), ("OUTBOUND", False), ("INBOUND", True)]
    ]
    return {
        "account": {"id": ROW["id"], "email": ROW["email"], "senderName": "Sales"},
        "messages": rows[:count],
        "total": count,
        "direction": "",
        "next_link": "?after=x",
        "first_link": "?",
    }


def _message_context(lang: str) -> dict[str, Any]:
    message: Any = MESSAGE
    return {
        "account": {"id": ROW["id"], "email": ROW["email"]},
        "message": message,
        "content": message["content"],
        "header_rows": header_rows(message, lang),
    }


PAGES: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "list": (
        "accounts.html",
        lambda lang: _list_context(
            lang,
            [
                {**ROW, "messageCount": 0},
                {
                    **ROW,
                    "status": "INACTIVE",
                    "messageCount": 1,
                    "spf": {"ok": True, "problems": [], "checkedAt": CHECKED},
                },
                {
                    **ROW,
                    "spf": {"ok": False, "problems": [{"code": p["code"]} for p in PROBLEMS], "checkedAt": CHECKED},
                },
                {**ROW, "pendingOperation": MERGING},
                {**ROW, "pendingOperation": DELETING},
            ],
            total=41,
            filtered=True,
        ),
    ),
    "list empty": ("accounts.html", lambda lang: _list_context(lang, [], total=0, filtered=False)),
    "list nothing found": ("accounts.html", lambda lang: _list_context(lang, [], total=0, filtered=True)),
    "account with problems": ("account.html", lambda lang: _account_context(lang, SPF_REPORT, smtp=False)),
    "account unchecked": ("account.html", lambda lang: _account_context(lang, None, smtp=True)),
    "account ok": (
        "account.html",
        lambda lang: _account_context(
            lang,
            {
                **SPF_REPORT,
                "ok": True,
                "problems": [],
                "suggestedRecord": None,
                "mxHosts": ["mx.firm.example"],
                "dmarcRecord": "v=DMARC1",
            },
            smtp=False,
        ),
    ),
    "account, DNS down": (
        "account.html",
        lambda lang: _account_context(
            lang, {**SPF_REPORT, "problems": PROBLEMS[-1:], "suggestedRecord": None}, smtp=False
        ),
    ),
    "account being merged": ("account.html", lambda lang: _account_context(lang, None, smtp=False, pending=MERGING)),
    "account being deleted": (
        "account.html",
        lambda lang: _account_context(lang, None, smtp=False, pending=DELETING),
    ),
    "messages": ("messages.html", lambda lang: _messages_context(lang, 3)),
    "one message": ("messages.html", lambda lang: _messages_context(lang, 1)),
    "no messages": ("messages.html", lambda lang: _messages_context(lang, 0)),
    "message": ("message.html", _message_context),
}


def _read_words(lang: str, page: str) -> list[str]:
    name, context = PAGES[page]
    identity = {"email": "boss@firm.example", "principal": {"tenant_name": "Acme"}}
    flashes = [flash_text(translations(lang), "spf_checked", {})]
    html = (
        template_environment(lang, lambda: NOW)
        .get_template(name)
        .render({**PAGE, "lang": lang, "identity": identity, "flashes": flashes, **context(lang)})
    )
    parser = _ReadText()
    parser.feed(html)
    parser.close()
    return [word for text in parser.texts for word in WORD.findall(text)]


@pytest.mark.parametrize("page", PAGES)
def test_pages_in_english_read_no_german(page: str) -> None:
    """With the English catalogue the list, account, SPF panel and message pages read no German word: every
    text on them, the views' labels, dates and counts included, goes through the catalogue."""
    german = [word for word in _read_words("en", page) if UMLAUT.search(word) or word.lower() in GERMAN_ONLY]
    assert german == []
    # The same page in German does read German: the check above is not blind to this page.
    assert any(UMLAUT.search(word) or word.lower() in GERMAN_ONLY for word in _read_words("de", page))


@pytest.mark.parametrize(
    ("count", "lead"),
    [(0, "keine Nachrichten</p>"), (1, "1 Nachricht</p>"), (3, "3 Nachrichten, die neuesten zuerst</p>")],
)
def test_message_list_says_none_one_or_n_messages(count: int, lead: str) -> None:
    """The message list's lead says none in words, one message without an order, n messages newest first."""
    page = template_environment("de", lambda: NOW).get_template("messages.html")
    html = page.render({**PAGE, **_messages_context("de", count)})
    assert f"sales@firm.example · {lead}" in html


AGES = [
    ("de", 30, "gerade eben"),
    ("de", 60, "vor 1 Minute"),
    ("de", 179, "vor 2 Minuten"),
    ("de", 5400, "vor 1 Stunde"),
    ("de", 86400, "vor 1 Tag"),
    ("de", 10 * 86400, "vor 10 Tagen"),
    ("en", 30, "just now"),
    ("en", 7200, "2 hours ago"),
    ("en", 86400, "1 day ago"),
]


@pytest.mark.parametrize(("lang", "seconds", "text"), AGES)
def test_age_counts_whole_units_in_plural_forms(lang: str, seconds: int, text: str) -> None:
    """An age is the whole count of its largest unit, in the plural form of that count ("vor 1 Tag", "vor 10 Tagen")."""
    moment = datetime.fromtimestamp(NOW - seconds, UTC).isoformat()
    assert format_age(moment, lang, NOW) == text


NOTATIONS: list[tuple[Callable[[Any, str], str], Any, str, str]] = [
    (format_size, 512, "de", "512 B"),
    (format_size, 1536, "de", "1,5 KB"),
    (format_size, 1536, "en", "1.5 KB"),
    (format_size, 5 * 1024 * 1024, "de", "5,0 MB"),
    (format_count, 1_000_000, "de", "1.000.000"),
    (format_count, 1_000_000, "en", "1,000,000"),
    (format_datetime, "2025-02-03T13:05:00Z", "de", "03.02.2025, 14:05"),
    (format_datetime, "2025-02-03T13:05:00Z", "en", "Feb 3, 2025, 2:05\u202fPM"),
    (format_datetime, "not a date", "de", "\N{EN DASH}"),
]


@pytest.mark.parametrize(("write", "value", "lang", "text"), NOTATIONS)
def test_sizes_and_dates_in_the_notation_of_the_language(
    write: Callable[[Any, str], str], value: Any, lang: str, text: str
) -> None:
    """Sizes, counts and dates are written as the language does: a decimal comma, grouping dots and
    day.month.year in German."""
    assert write(value, lang) == text


SUMMARIES = [
    ("de", 4, 0, "4 geprüft, keine Probleme"),
    ("de", 1, 1, "1 geprüft, 1 mit Problem"),
    ("de", 12, 3, "12 geprüft, 3 mit Problemen"),
    ("en", 4, 0, "4 checked, no problems"),
    ("en", 1, 1, "1 checked, 1 with a problem"),
    ("en", 12, 3, "12 checked, 3 with problems"),
]


@pytest.mark.parametrize(("lang", "checked", "with_problems", "text"), SUMMARIES)
def test_bulk_check_summary_counts_problems(lang: str, checked: int, with_problems: int, text: str) -> None:
    """The summary of "SPF check for all" says none in words and uses the plural form of the problem count."""
    assert spf_summary_text(translations(lang), checked, with_problems) == text
