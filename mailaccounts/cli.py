"""The `mailaccounts` command: serve, smtp, worker, jobs, migrate, token, user, spf."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mailaccounts.settings import Settings, SettingsError, load_settings

__all__ = ["main"]

DEMO_TENANT = "demo"
DEMO_USER_EMAIL = "demo@example.com"


class CommandError(Exception):
    """A failure the command reports in one line, without a traceback."""


async def _with_database(settings: Settings, work: Callable[[], Awaitable[int]]) -> int:
    from mailaccounts.database import database

    try:
        async with database(settings.database_url, global_fallback=False):
            return await work()
    except (OSError, ConnectionError) as exc:
        raise CommandError(f"cannot reach the database at DATABASE_URL: {exc}") from exc


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from mailaccounts.database import migrate_database

    try:
        asyncio.run(migrate_database(settings.database_url))
    except (OSError, ConnectionError) as exc:
        raise CommandError(f"cannot reach the database at DATABASE_URL: {exc}") from exc
    print("migrations applied")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from orm.models import Scope
    from resolvers import tokens

    async def create() -> int:
        issued = await tokens.create_token(args.tenant, Scope(args.scope), args.name or "")
        print(f"token {issued.token.id} for tenant {args.tenant!r}, scope {args.scope}:", file=sys.stderr)
        print(issued.secret)
        return 0

    async def listing() -> int:
        for token in await tokens.list_tokens(args.tenant):
            state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            print(
                f"{token.id}\t{token.tenant.name}\t{token.scope.value}\t{token.label or '-'}\t"
                f"created {token.created_at:%Y-%m-%d %H:%M}\tlast used {used}\t{state}"
            )
        return 0

    async def revoke() -> int:
        if not await tokens.revoke_token(args.id):
            raise CommandError(f"no active token with id {args.id}")
        print(f"token {args.id} revoked")
        return 0

    work = {"create": create, "list": listing, "revoke": revoke}[args.token_command]
    return asyncio.run(_with_database(settings, work))


def _read_password(args: argparse.Namespace) -> str | None:
    """The new user's password: from stdin (--password-stdin), asked twice on a terminal, or None (generate)."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("--password-stdin: no password on stdin")
        return password
    if not sys.stdin.isatty():
        return None
    password = getpass.getpass("Password (empty: generate one): ")
    if password and getpass.getpass("Repeat the password: ") != password:
        raise CommandError("the passwords differ")
    return password or None


def cmd_user(settings: Settings, args: argparse.Namespace) -> int:
    from mailaccounts.app import build_sign_in_limits
    from resolvers import sign_in, users
    from resolvers.errors import AccountError, NotFound

    password = _read_password(args) if args.user_command in ("create", "reset-password") else None
    limits = build_sign_in_limits(settings)

    async def create() -> int:
        try:
            created = await users.create_user(args.tenant, args.email, password)
        except users.WeakPassword as exc:
            raise CommandError(f"the password needs at least {users.PASSWORD_MIN} characters") from exc
        except users.DuplicateUser as exc:
            raise CommandError(f"a dashboard user {args.email!r} exists already") from exc
        except AccountError as exc:
            raise CommandError(f"{args.email!r} is not a valid email address") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        print(f"dashboard user {created.user.email} created for tenant {created.tenant_name!r}", file=sys.stderr)
        if created.generated_password:
            print("password (shown only now):", file=sys.stderr)
            print(created.generated_password)
        return 0

    async def unlock() -> int:
        try:
            lifted = await sign_in.unlock_user(args.email, limits)
        except NotFound as exc:
            raise CommandError(f"no dashboard user {args.email!r}") from exc
        print(f"dashboard user {args.email} {'unlocked' if lifted else 'was not locked'}", file=sys.stderr)
        return 0

    async def reset_password() -> int:
        try:
            reset = await sign_in.reset_password(args.email, password, limits)
        except NotFound as exc:
            raise CommandError(f"no dashboard user {args.email!r}") from exc
        except users.WeakPassword as exc:
            raise CommandError(f"the password needs at least {users.PASSWORD_MIN} characters") from exc
        print(f"new password set for {reset.user.email}; its sessions ended, a lock was lifted", file=sys.stderr)
        if reset.generated_password:
            print("password (shown only now):", file=sys.stderr)
            print(reset.generated_password)
        return 0

    work = {"create": create, "unlock": unlock, "reset-password": reset_password}[args.user_command]
    return asyncio.run(_with_database(settings, work))


async def _create_demo_user(settings: Settings) -> None:
    """On the first start (no dashboard user yet) create one in the demo tenant and print how to sign in."""
    from resolvers import users

    if await users.has_users():
        return
    created = await users.create_user(DEMO_TENANT, DEMO_USER_EMAIL)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(
        "\n".join(
            [
                "",
                "Dashboard (Einstellungen > Nachrichten > Mail-Accounts): open in a browser and sign in",
                "",
                f"    http://{host}:{settings.port}/",
                "",
                f"    E-Mail:   {created.user.email}",
                f"    Passwort: {created.generated_password}",
                "",
                "The password is shown only now. More users: mailaccounts user create --tenant demo --email ADDR",
                "",
            ]
        ),
        flush=True,
    )


async def _create_demo_login(settings: Settings) -> None:
    """On the very first start (no tenant yet) create a demo tenant and print how to use it."""
    from orm.models import Scope, Tenant
    from resolvers import tokens

    if await Tenant.exists():
        return
    issued = await tokens.create_token(DEMO_TENANT, Scope.WRITE, "make run")
    base = f"http://{settings.host}:{settings.port}"
    print(
        "\n".join(
            [
                "",
                "First start: created tenant 'demo' with a write token:",
                "",
                f"    {issued.secret}",
                "",
                f"GraphiQL: {base}/graphql  (add the header  Authorization: Bearer <token>)",
                "Try it:",
                f"    curl -s {base}/graphql -H 'Authorization: Bearer {issued.secret}' \\",
                "      -H 'Content-Type: application/json' \\",
                '      -d \'{"query":"mutation { createAccount(input: {email: \\"vertrieb@example.com\\", '
                'senderName: \\"Vertrieb\\"}) { account { id inboundAddress } userErrors { code message } } }"}\'',
                "",
            ]
        ),
        flush=True,
    )


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy headers from FORWARDED_ALLOW_IPS alone.

    Left to itself uvicorn trusts X-Forwarded-For from 127.0.0.1 (and reads its own FORWARDED_ALLOW_IPS,
    which means something else): any local process could then choose the address the sign-in limit counts.
    """
    if not settings.forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": [str(network) for network in settings.forwarded_allow_ips]}


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """HTTP and SMTP until SIGINT or SIGTERM; a stop by either is the ordinary end and exits 0."""
    import contextlib
    from collections.abc import Iterator

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn raises a caught SIGTERM again after its graceful shutdown, so the process ends with
            # 143 and `make run` reports an error; the service has stopped as asked, so it exits 0.
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()

    from mailaccounts.app import build_app
    from mailaccounts.database import database

    settings.require_secret_key()

    async def serve() -> int:
        async with database(settings.database_url):
            if args.demo:
                await _create_demo_login(settings)
                await _create_demo_user(settings)
            app = build_app(settings, manage_database=False, run_smtp_listener=True)
            config = uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level.lower(),
                lifespan="on",
                **uvicorn_proxy_options(settings),
            )
            await Server(config).serve()
        return 0

    return asyncio.run(serve())


def cmd_smtp(settings: Settings, args: argparse.Namespace) -> int:
    """Run only the SMTP listener (scaled apart from the web front), until SIGINT or SIGTERM."""
    import signal

    from mailaccounts.app import smtp_listener
    from mailaccounts.database import database

    async def listen() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with database(settings.database_url), smtp_listener(settings):
            print(f"SMTP listener on {settings.smtp_listen_host}:{settings.smtp_listen_port}", flush=True)
            await stop.wait()
        return 0

    try:
        return asyncio.run(listen())
    except OSError as exc:
        raise CommandError(f"cannot listen on SMTP_LISTEN or reach the database: {exc}") from exc


def _print_report(view: Any, lang: str) -> None:
    """The report as a postmaster reads it, labelled in `lang`."""
    from texts import translations

    _ = translations(lang).gettext
    print(_("Domain: {domain}").format(domain=view.domain))
    print(_("Result: ok") if view.ok else _("Result: action needed"))
    for problem in view.problems:
        print(f"  ! {problem.code}: {problem.message(lang)}")
    print(_("SPF record: {record}").format(record=view.record or "-"))
    if view.suggested_record:
        # Translators: the value starts in the same column as the line above's.
        print(_("Suggested:  {record}").format(record=view.suggested_record))
    print(_("DNS lookups: {count} / 10").format(count=view.lookup_count))
    print("MX: " + (", ".join(view.mx_hosts) or "-"))
    print("DMARC: " + (view.dmarc_record or "-"))
    if view.tree:
        print(_("Include tree:"))
        for entry in view.tree:
            via = f"{entry.mechanism} -> " if entry.mechanism else ""
            error = f"  [{entry.error}]" if entry.error else ""
            print(f"  {'  ' * entry.depth}{via}{entry.domain} ({entry.lookups}){error}")
    if view.findings:
        print(_("Findings:"))
        for finding in view.findings:
            print(f"  [{finding.severity}] {finding.code}: {finding.message(lang)}")


def cmd_spf(settings: Settings, args: argparse.Namespace) -> int:
    from mailaccounts.app import build_spf_checker
    from resolvers import spf
    from resolvers.errors import AccountError

    checker = build_spf_checker(settings)

    async def report() -> int:
        if "@" in args.target:
            view = await spf.check_address(args.target, checker)
        else:
            view = await spf.check_domain_name(args.target, checker)
        if args.json:
            print(json.dumps(view.to_api_dict(args.lang), ensure_ascii=False, indent=2))
        else:
            _print_report(view, args.lang)
        return 0 if view.ok else 1

    async def evaluate() -> int:
        result = await spf.evaluate_client(checker, args.ip, args.target, sender=args.sender, helo=args.helo or "")
        if args.json:
            print(json.dumps({"result": result.result, "explanation": result.explanation, "term": result.term}))
        else:
            print(f"result: {result.result}")
            print(f"explanation: {result.explanation or result.reason or '-'}")
            print(f"term: {result.term or '-'}")
        return 0

    try:
        return asyncio.run(evaluate() if args.ip else report())
    except AccountError as exc:
        raise CommandError(f"{args.target!r} is not a valid address") from exc
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailaccounts", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve HTTP (GraphQL, health, dashboard) on HOST:PORT")
    serve.add_argument("--demo", action="store_true", help="on the first start, create a demo tenant and token")
    serve.set_defaults(handler=cmd_serve)

    commands.add_parser("migrate", help="apply the database migrations").set_defaults(handler=cmd_migrate)
    commands.add_parser("smtp", help="run only the SMTP listener on SMTP_LISTEN").set_defaults(handler=cmd_smtp)
    from mailaccounts.cli_jobs import add_job_commands

    add_job_commands(commands)

    user = commands.add_parser("user", help="manage dashboard users")
    user.set_defaults(handler=cmd_user)
    user_commands = user.add_subparsers(dest="user_command", required=True)
    user_create = user_commands.add_parser(
        "create", help="create a dashboard user (and the tenant if new); asks for or generates a password"
    )
    user_create.add_argument("--tenant", required=True)
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user_unlock = user_commands.add_parser(
        "unlock", help="lift the lock of a user after too many failed sign-ins (and forget the failures)"
    )
    user_unlock.add_argument("--email", required=True)
    user_reset = user_commands.add_parser(
        "reset-password",
        help="give a user a new password (asked for or generated); ends its sessions and lifts a lock",
    )
    user_reset.add_argument("--email", required=True)
    user_reset.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    spf = commands.add_parser("spf", help="check a domain's SPF/MX/DMARC, or evaluate check_host for an IP")
    spf.add_argument("target", metavar="DOMAIN_OR_ADDRESS")
    spf.add_argument("--ip", help="evaluate check_host for this client address")
    spf.add_argument("--sender", help="MAIL FROM for --ip (default: the address, or postmaster@DOMAIN)")
    spf.add_argument("--helo", help="HELO name for --ip")
    spf.add_argument("--json", action="store_true", help="JSON with the GraphQL field names")
    spf.add_argument("--lang", choices=["de", "en"], default="de", help="language of the messages")
    spf.set_defaults(handler=cmd_spf)

    token = commands.add_parser("token", help="manage API tokens")
    token.set_defaults(handler=cmd_token)
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="create a token (and the tenant if new)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--scope", required=True, choices=["read", "write"])
    create.add_argument("--name", help="a label for the token")
    listing = token_commands.add_parser("list", help="list tokens")
    listing.add_argument("--tenant")
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", type=int)
    return parser


def _configure_logging(level: str) -> None:
    from web.request_id import RequestIdLogFilter

    handler = logging.StreamHandler()
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        _configure_logging(settings.log_level)
        status: int = args.handler(settings, args)
    except (SettingsError, CommandError) as exc:
        print(f"mailaccounts: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    # `python -m mailaccounts.cli`: run the module as imported, whose CommandError the command modules raise.
    from mailaccounts.cli import main as run_command

    sys.exit(run_command())
