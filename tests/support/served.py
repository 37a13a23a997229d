"""Gateways served over HTTP on loopback (in this process, a thread each), for end-to-end
tests whose provider calls back: ``GATEWAY_PUBLIC_URL`` is the gateway's own address.

Usage (in a fixture)::

    with served_gateways(make_settings, "sk-client", {"SUNO_API_KEY": ...}) as start:
        gw = start(callbacks=True, GATEWAY_X="...")     # an httpx.Client with the key
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from gateway.api.app import create_app
from tests.support.servers import free_port, serve

__all__ = ["served_gateways"]


@contextlib.contextmanager
def served_gateways(
    make_settings: Callable[..., Any], client_key: str, env: Mapping[str, str]
) -> Iterator[Callable[..., httpx.Client]]:
    """``start(callbacks=False, **more_env)`` serves a gateway (``client_key`` its one
    API key, refreshes on every poll, ``env`` on top) and answers a client of it; all
    are stopped on exit."""
    with contextlib.ExitStack() as stack:

        def start(callbacks: bool = False, **more: str) -> httpx.Client:
            port = free_port()
            public = {"GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}"} if callbacks else {}
            settings = make_settings(
                GATEWAY_API_KEYS=client_key,
                GATEWAY_REFRESH_INTERVAL="0",
                **env,
                **public,
                **more,
            )
            base = stack.enter_context(serve(create_app(settings), port))
            auth = {"Authorization": f"Bearer {client_key}"}
            return stack.enter_context(httpx.Client(base_url=base, headers=auth))

        yield start
