"""GraphiQL served by the service itself: pinned files, a strict CSP, and a real browser with the internet cut off."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from orm.models import Scope
from resolvers.tokens import create_token
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.serve import uvicorn_on_loopback
from web.app import GRAPHIQL_CONTENT_SECURITY_POLICY, GRAPHIQL_DIR

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "graphiql"
ROOT = Path(__file__).resolve().parents[2]


# Playwright's waits: far above what loading 1.7 MB of scripts from loopback takes on a busy machine.
WAIT_MS = 30_000

_ASSET = re.compile(r'(?:src|href)="(/graphql/static/[^"]+)"')


async def _graphiql_page(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/graphql", headers={"Accept": "text/html"})


# --- the page and its files over HTTP -------------------------------------------------------------------


async def test_page_loads_only_its_own_files_under_a_strict_csp(client: httpx.AsyncClient) -> None:
    """The GraphiQL page names no other host, has no inline script or style, and sends the GraphiQL CSP."""
    page = await _graphiql_page(client)
    assert page.status_code == 200
    [nonce] = re.findall(r'<meta name="style-nonce" content="([\w-]{24})">', page.text)
    assert page.headers["content-security-policy"] == GRAPHIQL_CONTENT_SECURITY_POLICY.format(nonce=nonce)
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "://" not in page.text  # no CDN, no absolute URL at all
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == []  # every script is a served file
    assert "<style" not in page.text and "style=" not in page.text
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == f"'self' 'nonce-{nonce}'"
    assert "unsafe" not in page.headers["content-security-policy"]
    again = await _graphiql_page(client)
    assert nonce not in again.text and nonce not in again.headers["content-security-policy"]  # fresh per response


async def test_every_file_the_page_names_is_served(client: httpx.AsyncClient) -> None:
    """Each script and stylesheet of the page answers 200 with its own content type and `nosniff`."""
    assets = _ASSET.findall((await _graphiql_page(client)).text)
    assert len(assets) == 8
    for path in assets:
        response = await client.get(path)
        assert response.status_code == 200, path
        expected = "text/css" if path.endswith(".css") else "javascript"
        assert expected in response.headers["content-type"], path
        assert response.headers["x-content-type-options"] == "nosniff", path


async def test_production_serves_neither_page_nor_files(db: str, settings: Settings) -> None:
    """ENVIRONMENT=production: GET /graphql in a browser is a 401 and GraphiQL's files are not served."""
    app = build_app(replace(settings, environment="production"), manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        page = await _graphiql_page(http)
        assert page.status_code == 401 and "graphiql" not in page.text.lower()
        for name in ("graphiql.min.js", "start.js", "page.html"):
            assert (await http.get(f"/graphql/static/{name}")).status_code == 404, name


def test_vendored_files_are_the_pinned_ones() -> None:
    """Each third-party file in web/graphiql/ has the sha256 its README lists; each listed file has a license."""
    readme = (GRAPHIQL_DIR / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([\w.-]+) \| ([@\w/.-]+) [\d.]+ \| [\w/.-]+ \| ([0-9a-f]{64}) \|$", readme, re.MULTILINE)
    assert len(rows) == 6
    for name, _package, digest in rows:
        assert hashlib.sha256((GRAPHIQL_DIR / name).read_bytes()).hexdigest() == digest, name
    for license_file in ("LICENSE-graphiql", "LICENSE-graphiql-explorer", "LICENSE-react"):
        assert (GRAPHIQL_DIR / license_file).read_text(encoding="utf-8").startswith("MIT License"), license_file
    page = (GRAPHIQL_DIR / "page.html").read_text(encoding="utf-8")
    listed = {name for name, _, _ in rows}
    assert listed | {"page.css", "start.js"} == {path.rsplit("/", 1)[1] for path in _ASSET.findall(page)}


def test_package_data_installs_every_web_file() -> None:
    """pyproject's package-data patterns cover every file the web package reads (templates, static, GraphiQL)."""
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]["web"]
    web = ROOT / "web"
    covered = {path for pattern in patterns for path in web.glob(pattern) if path.is_file()}
    needed = {
        path
        for folder in ("templates", "static", "graphiql", "operations")
        for path in (web / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert needed - covered == set()


# --- in a real browser, offline ---------------------------------------------------------------------------


@dataclass
class Traffic:
    """What the browser asked for: every request URL, the ones stopped for leaving the test server, errors."""

    origin: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@pytest.fixture
async def base_url(db: str, settings: Settings) -> AsyncIterator[str]:
    """The real app served by uvicorn on a free loopback port, on this test's event loop and database."""
    async with uvicorn_on_loopback(build_app(settings, manage_database=False)) as url:
        yield url


@needs_chromium
async def test_graphiql_runs_a_query_offline(base_url: str) -> None:
    """With every request off the test server aborted, GraphiQL loads, sends the typed bearer header, shows data."""
    from playwright.async_api import Page, Request, Route, async_playwright, expect

    token = (await create_token("acme", Scope.WRITE)).secret
    async with httpx.AsyncClient(base_url=base_url) as http:
        created = await http.post(
            "/graphql",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "query": 'mutation { createAccount(input: {email: "offline@firma.example", senderName: "Offline"}) '
                "{ userErrors { code } } }"
            },
        )
    assert created.json() == {"data": {"createAccount": {"userErrors": []}}}

    traffic = Traffic(origin=base_url)
    api_posts: list[tuple[str | None, str | None]] = []  # (Authorization, operationName) of each API call

    async def only_the_test_server(route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == traffic.origin:
            await route.continue_()
        else:
            traffic.blocked.append(url)
            await route.abort("internetdisconnected")

    def seen(request: Request) -> None:
        traffic.requests.append(request.url)
        if request.method == "POST" and urlsplit(request.url).path == "/graphql":
            body = request.post_data_json or {}
            api_posts.append((request.headers.get("authorization"), body.get("operationName")))

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=base_url, viewport={"width": 1360, "height": 860})
        await context.route("**/*", only_the_test_server)
        page: Page = await context.new_page()
        page.on("request", seen)
        # Routes do not see WebSockets; none is expected (the API has no subscriptions), least of all elsewhere.
        page.on("websocket", lambda ws: traffic.blocked.append(ws.url))
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: traffic.problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                traffic.problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None
            ),
        )
        try:
            await page.goto("/graphql")
            query_editor = page.locator(".graphiql-query-editor .CodeMirror")
            await expect(query_editor).to_be_visible(timeout=WAIT_MS)
            await expect(page.get_by_role("button", name=re.compile("Execute query"))).to_be_visible(timeout=WAIT_MS)

            await query_editor.click()
            await page.keyboard.press("Control+A")
            await page.keyboard.press("Delete")
            await page.keyboard.type("{ accounts { totalCount edges { node { email senderName } } } }")

            # The Headers editor is open from the start, so the token's place is in sight, and the result pane
            # says that a token is missing (the schema was not even asked for without one).
            headers_editor = page.get_by_role("region", name="Headers").locator(
                ".graphiql-editor:not(.hidden) .CodeMirror"
            )
            await expect(headers_editor).to_contain_text("Authorization", timeout=WAIT_MS)
            response = page.locator(".graphiql-response .CodeMirror")
            await expect(response).to_contain_text("Kein Token", timeout=WAIT_MS)
            await headers_editor.click()
            await page.keyboard.press("Control+A")
            await page.keyboard.press("Delete")
            await page.keyboard.type(f'{{"Authorization": "Bearer {token}"}}')

            await page.get_by_role("button", name=re.compile("Execute query")).click()
            await expect(response).to_contain_text('"totalCount": 1', timeout=WAIT_MS)
            await expect(response).to_contain_text("offline@firma.example")
            await page.get_by_role("button", name=re.compile("Prettify query")).click()
            await page.keyboard.press("Home")  # the headers editor shows the start of its line
            await page.screenshot(path=str(ARTIFACTS / "graphiql-offline.png"), full_page=True)

            await page.get_by_role("button", name="Show Documentation Explorer").click()
            await expect(page.locator(".graphiql-doc-explorer")).to_contain_text(
                "MailAccountConnection", timeout=WAIT_MS
            )
            await page.get_by_role("button", name="Open settings dialog").click()  # a dialog: no CSP violation either
            await expect(page.get_by_role("dialog")).to_be_visible(timeout=WAIT_MS)
            await page.keyboard.press("Escape")
            await expect(page.get_by_role("dialog")).to_have_count(0, timeout=WAIT_MS)
            stored = await page.evaluate("JSON.stringify(Object.assign({}, window.localStorage))")
            assert '"graphiql:queries"' in stored and token not in stored  # the history is kept, the credential is not
        finally:
            await context.close()
            await browser.close()

    bearer = f"Bearer {token}"
    assert (bearer, "IntrospectionQuery") in api_posts, api_posts  # the typed token loaded the schema
    assert all(authorization == bearer for authorization, _ in api_posts), api_posts  # never a call without it
    assert (bearer, None) in api_posts  # the typed query
    assert traffic.blocked == [], "the page tried to leave the test server (or opened a WebSocket)"
    assert all(url.startswith(base_url + "/") for url in traffic.requests), traffic.requests
    assert any(url.endswith("/graphql/static/graphiql.min.js") for url in traffic.requests)
    assert traffic.problems == [], "errors or CSP violations in the browser"
