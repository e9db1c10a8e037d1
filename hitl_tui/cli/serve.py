"""``hitl serve`` (the shared approval server) and ``hitl token`` (its API tokens).

``hitl token ...`` works over the server's token API (``/v1/tokens``, an admin token) when a server
is configured (``--server``, ``HITL_SERVER`` or the config file), and on the store directly otherwise,
or when the command is given its own ``--store`` (``hitl token create --store URL ...``: the first
admin token, made on the server's store by whoever can open it).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import EXIT_ERROR, add_json_flag
from .output import age, emit_json, int_between, print_table

ROLES = ("agent", "reviewer", "admin")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the shared approval server (HTTP API for consoles and agents)",
        description="Run the shared approval server. It binds to loopback by default: to serve a team, "
        "put it behind a TLS reverse proxy (see docs/server.md).",
    )
    _store_flag(p)
    p.add_argument("--host", help="address to bind (default: config serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int_between(1, 65535, "a port"), help="port (default: config serve.port, 8750)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)

    t = sub.add_parser(
        "token",
        help="create, list and revoke API tokens for `hitl serve`",
        description="Create, list and revoke API tokens. With a server configured (--server, HITL_SERVER "
        "or the config file) they go through its API with an admin token; with --store given to the "
        "action (the first admin token), or with no server, on the store directly.",
    )
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = tsub.add_parser("create", help="create a token and print it (once: it is stored only as a hash)")
    c.add_argument("--name", required=True, help="who the token is: recorded on everything done with it")
    c.add_argument("--role", required=True, choices=ROLES, help="agent, reviewer or admin")
    _store_flag(c, token=True)
    add_json_flag(c)
    c.set_defaults(func=cmd_token_create)
    ls = tsub.add_parser("ls", help="list tokens (names and roles, never the secrets)")
    _store_flag(ls, token=True)
    add_json_flag(ls)
    ls.set_defaults(func=cmd_token_ls)
    r = tsub.add_parser("revoke", help="revoke a token: it stops working at once")
    r.add_argument("name")
    _store_flag(r, token=True)
    add_json_flag(r)
    r.set_defaults(func=cmd_token_revoke)


def _store_flag(p: argparse.ArgumentParser, *, token: bool = False) -> None:
    # A different dest than the global --store: a sub-command's default would overwrite it.
    where = "the global --store / HITL_STORE"
    if token:
        where = "the configured server's API, else " + where
    p.add_argument(
        "--store", dest="cmd_store", metavar="URL",
        help=f"sqlite:///PATH, a file path, or postgresql://... (default: {where})",
    )


def store_url(args: argparse.Namespace, ctx: Any) -> str:
    from ..config import default_store_path

    return str(getattr(args, "cmd_store", None) or ctx.settings.store or default_store_path())


def open_store_at(url: str) -> Any:
    """``open_store``, plus ``?schema=NAME`` on a PostgreSQL URL: the schema to keep the tables in
    (several teams or test runs can share one database)."""
    from ..store import open_store

    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [v for k, v in query if k == "schema"]
        if schemas:
            rest = urlencode([(k, v) for k, v in query if k != "schema"])
            return open_store(urlunsplit(parts._replace(query=rest)), schema=schemas[-1])
    return open_store(url)


def redact(url: str) -> str:
    """A store URL fit for a log line: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound (in use, not an address of this machine, no such host), or
    None: each address the name resolves to is bound and released, as the server will bind them."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r} ({exc.strerror})"
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
                if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "address already in use (another server? choose a port with --port)"
            if exc.errno == errno.EADDRNOTAVAIL and family == socket.AF_INET6 and len(infos) > 1:
                continue  # no IPv6 here: the IPv4 address serves (the server skips it the same way)
            return exc.strerror or str(exc)
    return None


def cmd_serve(args: argparse.Namespace, ctx: Any) -> int:
    import uvicorn

    from ..backend.local import LocalBackend
    from ..server import create_app

    settings = ctx.settings
    host = args.host or settings.serve.host
    port = args.port if args.port is not None else settings.serve.port
    if not 0 < port < 65536:  # --port is checked when parsed: this one is the config's serve.port
        print(f"hitl: serve.port must be between 1 and 65535, not {port}", file=sys.stderr)
        return EXIT_ERROR
    problem = _cannot_listen(host, port)
    if problem:  # before anything is announced (uvicorn would log its start-up first, then fail)
        print(f"hitl serve: cannot listen on {host}:{port}: {problem}", file=sys.stderr)
        return EXIT_ERROR
    url = store_url(args, ctx)
    store = open_store_at(url)
    if hasattr(store, "prevent_self_review"):
        store.prevent_self_review = settings.serve.prevent_self_review
    backend = LocalBackend(store, actor="server", settings=settings.policy)
    app = create_app(backend, settings, close_backend=True)
    if not _is_loopback(host):
        print(
            f"hitl serve: warning: listening on {host} without TLS; put a TLS reverse proxy in front "
            "(docs/server.md)",
            file=sys.stderr,
        )
    print(f"hitl serve: http://{host}:{port} (store: {redact(url)})", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=20,  # longer than clients keep idle connections (HttpBackend: 5 s)
        backlog=4096,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind (the reason is already logged)
        if exc.code not in (0, None):
            print(f"hitl serve: could not serve on {host}:{port}", file=sys.stderr)
            return EXIT_ERROR
    return 0 if server.started else EXIT_ERROR


def _over_server(args: argparse.Namespace, ctx: Any) -> bool:
    """A configured server, unless this command was given its own ``--store``."""
    return bool(ctx.settings.server) and not getattr(args, "cmd_store", None)


async def _with_store(args: argparse.Namespace, ctx: Any, action: Any) -> Any:
    store = open_store_at(store_url(args, ctx))
    try:
        return await action(store)
    finally:
        await store.close()


async def cmd_token_create(args: argparse.Namespace, ctx: Any) -> int:
    from ..models import TokenRole
    from ..server.credentials import check_token_name, hash_token, new_token

    name = check_token_name(args.name)
    if _over_server(args, ctx):
        # ctx.backend() is an HttpBackend (a server is set): a bad token is a 401, a token that is not
        # an admin's a 403, a server that is down unreachable, as for every other call
        made = await ctx.backend().create_token(name, TokenRole(args.role))
        secret, info = made.token, made.info
    else:
        secret = new_token()
        info = await _with_store(
            args, ctx, lambda s: s.create_token(name, TokenRole(args.role), hash_token(secret), ctx.reviewer)
        )
    if args.json:
        emit_json({"token": secret, **info.model_dump(mode="json")})
        return 0
    print(secret)
    print(
        f"token for {info.name} ({info.role.value}): shown once; it is stored only as a hash. "
        f"Use it as --token or HITL_TOKEN.",
        file=sys.stderr,
    )
    return 0


async def cmd_token_ls(args: argparse.Namespace, ctx: Any) -> int:
    if _over_server(args, ctx):
        tokens = await ctx.backend().list_tokens()
    else:
        tokens = await _with_store(args, ctx, lambda s: s.list_tokens())
    if args.json:
        emit_json(tokens)
        return 0
    if not tokens:
        print("no tokens (create one with: hitl token create --name NAME --role reviewer)")
        return 0
    rows = [
        (t.name, t.role.value, "active" if t.active else f"revoked {age(t.revoked_at)} ago", age(t.created_at),
         t.created_by or "-")
        for t in tokens
    ]
    print_table(["name", "role", "status", "age", "created by"], rows)
    return 0


async def cmd_token_revoke(args: argparse.Namespace, ctx: Any) -> int:
    if _over_server(args, ctx):
        info = await ctx.backend().revoke_token(args.name)
    else:
        info = await _with_store(args, ctx, lambda s: s.revoke_token(args.name, ctx.reviewer))
    if args.json:
        emit_json(info)
    else:
        print(f"revoked token {info.name} ({info.role.value})")
    return 0
