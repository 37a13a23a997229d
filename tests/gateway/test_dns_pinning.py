"""DNS pinning: an outbound fetch of a URL we were given connects only to the addresses the
SSRF guard approved for that attempt (``gateway/infra/pinning.py``).

The guard resolves through an injected resolver (no real DNS). Where a test needs the
public internet, ``FakeNetwork`` stands in for it: it routes a public address to a local
server, resolves names with the same injected resolver (as a connect by name would),
simulates the TLS handshake (the bytes stay plain: the receivers speak HTTP) and records
every connect and the TLS server name (SNI) asked for. Nothing leaves loopback.
"""

from __future__ import annotations

import functools
import ipaddress
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

import httpcore
import httpx
import pytest
from redis.asyncio import Redis

from gateway.infra.pinning import PinnedTransport, approved
from gateway.infra.settings import Settings
from gateway.notify.ssrf import check_webhook_url
from gateway.notify.webhooks import WebhookOutbox
from gateway.store.artefacts import ArtefactStore, trusting
from gateway.store.keys import new_signing_secret
from gateway.store.objects import open_backend
from gateway.store.signing import UrlSigner
from tests.support.files import FileServer
from tests.support.receiver import Receiver, Recorder
from tests.support.servers import serve

PUBLIC = "93.184.216.34"  # a global address: the check approves it; never dialled here
PAYLOAD = b'{"id":"mus_01","object":"music","status":"completed"}'


class Resolver:
    """Answers ``answers`` in turn (the last one from then on); counts the queries."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.queries: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.queries.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class PlainTLS(httpcore.AsyncNetworkStream):
    """A connection whose TLS handshake is simulated: it records the server name."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, names: list[str | None]) -> None:
        self.stream, self.names = stream, names

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def start_tls(
        self, ssl_context: object, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self.names.append(server_hostname)
        return self

    def get_extra_info(self, info: str) -> object:
        return self.stream.get_extra_info(info)


class FakeNetwork(httpcore.AsyncNetworkBackend):
    """The test's network. ``routes``: (address, port) -> the loopback endpoint it leads
    to; other loopback addresses are dialled as they are, anything else is unreachable.
    A host name is resolved with ``dns`` first, as a connect by name would."""

    def __init__(self, dns: Resolver, routes: dict[tuple[str, int], tuple[str, int]]) -> None:
        self.dns, self.routes = dns, routes
        self.real = httpcore.AnyIOBackend()
        self.connects: list[tuple[str, int]] = []
        self.server_names: list[str | None] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            ipaddress.ip_address(host)
        except ValueError:  # a name: resolved again, here, at connect time
            host = (await self.dns(host, port))[0]
        self.connects.append((host, port))
        target = self.routes.get((host, port))
        if target is None:
            if not ipaddress.ip_address(host).is_loopback:
                raise httpcore.ConnectError(f"{host} is unreachable in the test network")
            target = (host, port)
        stream = await self.real.connect_tcp(*target, timeout=timeout)
        return PlainTLS(stream, self.server_names)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("no unix sockets in the test network")

    async def sleep(self, seconds: float) -> None:
        await self.real.sleep(seconds)


@pytest.fixture(scope="module")
def public_side() -> Iterator[Receiver]:
    """The receiver that stands for the public host the check approved."""
    app = Receiver()
    with serve(app) as base:
        app.base = base
        yield app


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def outbox_for(
    redis: Redis, http: httpx.AsyncClient, dns: Resolver, *, allow_private: bool
) -> WebhookOutbox:
    check = functools.partial(check_webhook_url, allow_private=allow_private, resolve=dns)
    prefix = f"t{secrets.token_hex(4)}:"
    return WebhookOutbox(redis, prefix=prefix, http=http, url_check=check, schedule=(0, 0))


async def deliver_one(outbox: WebhookOutbox, url: str) -> dict[str, object]:
    """Queue one message to ``url``, run one attempt; answer the dead letter, if any."""
    msg_id = "msg_" + secrets.token_hex(8)
    secret = new_signing_secret()
    assert await outbox.enqueue(
        msg_id=msg_id, url=url, secret=secret, event_type="music.completed", payload=PAYLOAD
    )
    assert await outbox.deliver_due() == 1
    return {"id": msg_id, "pending": await outbox.pending()}


def port_of(url: str) -> int:
    port = httpx.URL(url).port
    assert port is not None
    return port


async def test_a_rebinding_name_never_reaches_the_loopback_receiver(
    redis: Redis, receiver: Receiver, public_side: Receiver
) -> None:
    """The classic rebinding: public for the check, loopback for the connection."""
    target, loopback = receiver.add()  # what the attacker wants reached: 127.0.0.1
    port, path = port_of(target), httpx.URL(target).path
    public = public_side.routes[path.removeprefix("/r/")] = Recorder()  # same path there
    url = f"https://hooks.rebind.test:{port}{path}"
    dns = Resolver([PUBLIC], ["127.0.0.1"])
    net = FakeNetwork(dns, {(PUBLIC, port): ("127.0.0.1", port_of(public_side.base))})
    async with httpx.AsyncClient(
        transport=PinnedTransport(backend=net), trust_env=False, timeout=10
    ) as http:
        outbox = outbox_for(redis, http, dns, allow_private=False)
        first = await deliver_one(outbox, url)
        assert loopback.calls == []  # the rebound address was never contacted
        assert first["pending"] == 0  # delivered: 2xx from the approved address
        assert dns.queries == ["hooks.rebind.test"]  # resolved once, by the check
        assert net.connects == [(PUBLIC, port)]
        assert net.server_names == ["hooks.rebind.test"]  # SNI: the original name
        [(headers, body)] = public.calls
        assert headers["host"] == f"hooks.rebind.test:{port}" and body == PAYLOAD
        # The next attempt resolves again: loopback now, refused by the check.
        second = await deliver_one(outbox, url)
        assert second["pending"] == 1  # a failed attempt, retried later
        assert dns.queries == ["hooks.rebind.test"] * 2
        assert net.connects == [(PUBLIC, port)]  # nothing dialled for it
    assert loopback.calls == [] and len(public.calls) == 1


async def test_delivery_connects_to_the_approved_address_with_the_original_host(
    redis: Redis, receiver: Receiver
) -> None:
    """A name only the injected resolver knows (``.test`` never resolves for real): the
    request can only have arrived through the approved address."""
    target, rec = receiver.add()
    port = port_of(target)
    url = f"http://hooks.pinned.test:{port}{httpx.URL(target).path}"
    dns = Resolver(["127.0.0.1"])
    async with httpx.AsyncClient(transport=PinnedTransport(), trust_env=False) as http:
        outbox = outbox_for(redis, http, dns, allow_private=True)
        assert (await deliver_one(outbox, url))["pending"] == 0
    [(headers, body)] = rec.calls
    assert headers["host"] == f"hooks.pinned.test:{port}" and body == PAYLOAD
    assert dns.queries == ["hooks.pinned.test"]


async def test_approved_addresses_are_tried_in_order(receiver: Receiver) -> None:
    target, rec = receiver.add()
    port = port_of(target)
    url = f"http://hooks.order.test:{port}{httpx.URL(target).path}"
    # Nothing listens on 127.0.0.2 (the receiver is bound to 127.0.0.1): refused, next.
    dns = Resolver(["127.0.0.2", "127.0.0.1"])
    net = FakeNetwork(dns, {})
    addresses = await check_webhook_url(url, allow_private=True, resolve=dns)
    async with httpx.AsyncClient(transport=PinnedTransport(backend=net), trust_env=False) as http:
        with approved(url, addresses):
            r = await http.post(url, content=b"{}")
    assert r.status_code == 200 and len(rec.calls) == 1
    assert net.connects == [("127.0.0.2", port), ("127.0.0.1", port)]


async def test_without_an_approval_nothing_is_dialled(receiver: Receiver) -> None:
    target, rec = receiver.add()
    net = FakeNetwork(Resolver(["127.0.0.1"]), {})
    async with httpx.AsyncClient(transport=PinnedTransport(backend=net), trust_env=False) as http:
        with pytest.raises(httpx.ConnectError, match="no approved address"):
            await http.post(target, content=b"{}")
        other = "http://127.0.0.1:1/elsewhere"  # approved for another origin only
        with approved(other, ["127.0.0.1"]), pytest.raises(httpx.ConnectError):
            await http.post(target, content=b"{}")
        with approved(target, []), pytest.raises(httpx.ConnectError):
            await http.post(target, content=b"{}")
    assert net.connects == [] and rec.calls == []


async def test_an_artefact_copy_connects_to_the_approved_address(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """``put_url`` through the SSRF guard (an untrusted host): pinned the same way."""
    files = FileServer()
    with serve(files) as base:
        files.base = base
        source = files.add(b"abc" * 1000, "audio/mpeg")
        port = port_of(source)
        url = f"http://cdn.pinned.test:{port}{httpx.URL(source).path}"
        dns = Resolver(["127.0.0.1"])
        guard = functools.partial(check_webhook_url, allow_private=True, resolve=dns)
        settings = make_settings(GATEWAY_ARTEFACT_STORE=f"file://{tmp_path}/store")
        backend, presigned = open_backend(settings)
        async with httpx.AsyncClient(transport=PinnedTransport(), trust_env=False) as http:
            store = ArtefactStore(backend, presigned=presigned, signer=UrlSigner(b"k"), http=http)
            stored = await store.put_url("mus_pin/0.mp3", url, check=trusting([], guard))
        assert stored.size == 3000
        assert dns.queries == ["cdn.pinned.test"]
        assert files.requests  # served by the local file server
