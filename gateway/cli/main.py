"""The ``music-gateway`` command.

Usage::

    music-gateway serve [--host 127.0.0.1] [--port 8000] [--workers 1]
    music-gateway openapi [--output openapi/openapi.json]
    music-gateway keys create --name NAME [--rpm N] [--max-inflight N]   # key shown once
    music-gateway keys list
    music-gateway keys limits KEY_ID [--rpm N] [--max-inflight N]  # omitted: default
    music-gateway keys webhook-secret KEY_ID   # rotates the webhook signing secret, shown once
    music-gateway keys revoke KEY_ID

Without ``REDIS_URL``, every command uses the embedded Redis under ``GATEWAY_DATA_DIR``
(started here, or reused when a running gateway already serves that directory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.infra.settings import Settings
from gateway.store.embedded import EmbeddedRedis

DEFAULT_SPEC = Path("openapi/openapi.json")
SERVE_BACKLOG = 4096  # connections the listening socket holds (see _cmd_serve)


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The app's OpenAPI document (built without starting the app)."""
    from litestar.serialization import encode_json

    from gateway.api.app import create_app

    app = create_app(settings or Settings.from_env())
    return json.loads(encode_json(app.openapi_schema.to_schema()))


def render_openapi(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _cmd_openapi(args: argparse.Namespace) -> int:
    # The spec must not depend on the local environment: build it from a clean one.
    text = render_openapi(openapi_document(Settings.from_env({})))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from granian import Granian as Server
    from granian.constants import Interfaces

    from gateway.cli.demo import start_demo

    # Providers without credentials are stood in for by their simulators (first run).
    demo = start_demo(os.environ, port=args.port, data_dir=Settings.from_env().data_dir)
    settings = Settings.from_env()
    embedded = None
    if settings.redis_url is None:
        # Started once here and shared by every worker through REDIS_URL.
        embedded = EmbeddedRedis(settings.data_dir)
        os.environ["REDIS_URL"] = embedded.start()
        print(f"embedded Redis at {os.environ['REDIS_URL']}", file=sys.stderr)
    host = "127.0.0.1" if args.host in {"0.0.0.0", "::"} else args.host  # noqa: S104
    print(demo.banner(f"http://{host}:{args.port}"), file=sys.stderr, flush=True)
    try:
        Server(
            "gateway.api.asgi:app",
            address=args.host,
            port=args.port,
            interface=Interfaces.ASGI,
            workers=args.workers,
            # granian serves at most backlog / workers connections per worker at once; the
            # rest wait (up to its 30 s timeout). 1,024 shared by two workers was too few
            # for 1,000 clients holding keep-alive connections (benchmarks, part c.1).
            backlog=SERVE_BACKLOG,
            log_access=False,
        ).serve()
    finally:
        demo.stop()
        if embedded is not None:
            embedded.stop()
    return 0


async def _with_store(fn: Any) -> Any:
    from gateway.store.redis_pool import open_client
    from gateway.store.store import Store

    settings = Settings.from_env()
    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = embedded.start()
    redis, close = open_client(
        url, cluster=settings.redis_cluster, timeout=settings.redis_timeout, max_connections=4
    )
    try:
        store = Store(redis, prefix=settings.redis_prefix, retention_seconds=1)
        return await fn(store)
    finally:
        await close()
        if embedded is not None:
            embedded.stop()


def _cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_cmd == "create":

        async def create(store: Any) -> None:
            raw, record = await store.keys.create_key(
                args.name, rpm=args.rpm, max_inflight=args.max_inflight
            )
            print(f"id:   {record.id}\nname: {record.name}\nkey:  {raw}")
            print(f"webhook signing secret: {record.webhook_secret}")
            print("Store the key and the secret now: they are not shown again.", file=sys.stderr)

        asyncio.run(_with_store(create))
        return 0
    if args.keys_cmd == "list":

        async def list_(store: Any) -> None:
            for r in await store.keys.list_keys():
                state = "revoked" if r.revoked else "active"
                rpm = "default" if r.rpm is None else r.rpm
                inflight = "default" if r.max_inflight is None else r.max_inflight
                print(
                    f"{r.id}\t{state}\t{r.created_at}\trpm={rpm}\tmax_inflight={inflight}\t{r.name}"
                )

        asyncio.run(_with_store(list_))
        return 0

    if args.keys_cmd == "webhook-secret":

        async def rotate(store: Any) -> str | None:
            return await store.keys.rotate_webhook_secret(args.key_id)

        secret = asyncio.run(_with_store(rotate))
        if secret is None:
            print(f"no key {args.key_id}", file=sys.stderr)
            return 1
        print(f"webhook signing secret: {secret}")
        print("Store it now: it is not shown again; the old one stops working.", file=sys.stderr)
        return 0
    if args.keys_cmd == "limits":

        async def limits(store: Any) -> Any:
            return await store.keys.set_key_limits(
                args.key_id, rpm=args.rpm, max_inflight=args.max_inflight
            )

        record = asyncio.run(_with_store(limits))
        if record is None:
            print(f"no key {args.key_id}", file=sys.stderr)
            return 1
        print(f"{record.id}\trpm={record.rpm}\tmax_inflight={record.max_inflight}")
        return 0

    async def revoke(store: Any) -> bool:
        return await store.keys.revoke_key(args.key_id)

    if asyncio.run(_with_store(revoke)):
        print(f"revoked {args.key_id}")
        return 0
    print(f"no key {args.key_id}", file=sys.stderr)
    return 1


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="music-gateway", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    serve = sub.add_parser("serve", help="serve the gateway over HTTP (granian)")
    serve.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("GATEWAY_WORKERS", "1")))
    serve.set_defaults(func=_cmd_serve)

    spec = sub.add_parser("openapi", help="write the OpenAPI document")
    spec.add_argument("--output", default=str(DEFAULT_SPEC))
    spec.set_defaults(func=_cmd_openapi)

    keys = sub.add_parser("keys", help="manage client API keys")
    keys_sub = keys.add_subparsers(dest="keys_cmd", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    keys_sub.add_parser("list", help="list keys (ids, names and limits, never the keys)")
    limits = keys_sub.add_parser("limits", help="set a key's own rate limits")
    limits.add_argument("key_id")
    for cmd in (create, limits):
        cmd.add_argument("--rpm", type=_count, help="requests per minute (0: unlimited)")
        cmd.add_argument("--max-inflight", type=_count, help="jobs in flight (0: unlimited)")
    rotate = keys_sub.add_parser(
        "webhook-secret", help="rotate a key's webhook signing secret and print it once"
    )
    rotate.add_argument("key_id")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    keys.set_defaults(func=_cmd_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
