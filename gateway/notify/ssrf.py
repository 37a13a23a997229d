"""SSRF guard for client-supplied ``webhook_url`` values.

A webhook URL must be an absolute ``https`` URL without user info or fragment, at most
2048 characters, whose host resolves only to public addresses: loopback, private,
link-local (``169.254.0.0/16``), carrier-grade NAT (``100.64.0.0/10``), unique-local
(``fc00::/7``), multicast, unspecified and reserved addresses are refused, and so are the
cloud metadata services by name (``metadata.google.internal``, ``instance-data``, ...)
and by address (``169.254.169.254``, ``fd00:ec2::254``, ``100.100.100.200``, ...). IPv6
forms that embed an IPv4 address (IPv4-mapped, 6to4, NAT64) are judged by that address.

``allow_private=True`` (``GATEWAY_WEBHOOK_ALLOW_PRIVATE=true``, local development and
tests) also accepts ``http`` and skips the address-class checks; the URL must still be
absolute, without user info, and never point at a metadata service.

The only I/O is name resolution, through ``resolve`` (default: the event loop's
``getaddrinfo``) under a timeout. The answer is the list of validated addresses: a sender
calls this again before every attempt and connects only to those, never resolving the
host again (``gateway.infra.pinning.approved``; DNS rebinding).

Usage::

    addrs = await check_webhook_url(url, allow_private=settings.webhook_allow_private)
    # raises UnsafeURL (the API layer answers 400 invalid_webhook_url, param webhook_url)

    async def fake(host: str, port: int) -> list[str]:  # tests: no real DNS
        return {"hooks.example.com": ["93.184.216.34"]}[host]
    await check_webhook_url("https://hooks.example.com/x", allow_private=False, resolve=fake)
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> addresses`` (strings or ``ipaddress`` objects).
Resolver = Callable[[str, int], Awaitable[Iterable[str | IPAddress]]]

MAX_URL_LENGTH = 2048
ALLOW_SETTING = "GATEWAY_WEBHOOK_ALLOW_PRIVATE"
_HINT = f"; set {ALLOW_SETTING}=true to allow private targets"

#: Cloud instance-metadata host names (compared after lowercasing and dropping a final dot).
METADATA_HOSTS: frozenset[str] = frozenset(
    {
        "metadata",
        "metadata.google.internal",  # GCP
        "metadata.goog",  # GCP
        "instance-data",  # AWS
        "instance-data.ec2.internal",  # AWS
        "metadata.azure.internal",  # Azure (alias seen in the wild)
        "metadata.tencentyun.com",  # Tencent Cloud
        "metadata.platformequinix.com",  # Equinix Metal
    }
)
#: Metadata service addresses; refused even with ``allow_private``.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
        "fd00:ec2::254",  # AWS (IPv6)
    )
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_OK = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$")  # inet_aton forms: 2130706433, 0x7f.1, 127.1


class UnsafeURL(ValueError):
    """A client-supplied URL the guard refuses. The API layer answers it as 400
    ``invalid_webhook_url`` naming ``param``; the webhook outbox as a failed attempt."""

    code = "invalid_webhook_url"

    def __init__(self, message: str, param: str = "webhook_url") -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _reject(message: str) -> UnsafeURL:
    return UnsafeURL(message)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the event loop's ``getaddrinfo`` (TCP addresses only)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 (``64:ff9b::/96``) address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_class(ip: IPAddress) -> str | None:
    """Why ``ip`` is no public target (e.g. ``"a loopback address"``); None when public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    inner = embedded_ipv4(ip)
    if inner is not None:
        why = address_class(inner)
        return f"{why} (embedded as {ip})" if why else None
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip in _CGNAT, "a carrier-grade NAT (shared) address"),
        (ip in _UNIQUE_LOCAL, "a unique-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "a site-local address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    )
    return next((why for hit, why in checks if hit), None)


def _literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one, in any form a resolver would accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host) and not host.endswith("."):
        try:  # legacy numeric forms getaddrinfo would also accept
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _parse(url: str, allow_private: bool) -> tuple[str, int]:
    """Syntactic checks; answers the normalized host and the port."""
    if len(url) > MAX_URL_LENGTH:
        raise _reject(f"webhook_url is longer than {MAX_URL_LENGTH} characters")
    if any(c <= " " or c == "\x7f" or c == "\\" for c in url):
        raise _reject("webhook_url contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _reject("webhook_url is not a valid URL") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_private else ("https",)
    if scheme not in ("https", "http") or not parts.netloc:
        raise _reject("webhook_url must be an absolute http(s) URL, e.g. https://host/path")
    if scheme not in allowed:
        raise _reject(
            f"webhook_url must use https (got {scheme}); http is accepted only with"
            f" {ALLOW_SETTING}=true"
        )
    if "@" in parts.netloc:
        raise _reject("webhook_url must not contain user info (user:password@)")
    if "#" in url:
        raise _reject("webhook_url must not contain a fragment (#...)")
    try:
        port = parts.port
    except ValueError:
        raise _reject("webhook_url has an invalid port") from None
    if port == 0:
        raise _reject("webhook_url has an invalid port")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _reject("webhook_url has no host")
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _reject(f"webhook_url host [{host}] is not an IPv6 address") from None
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise _reject(f"webhook_url host {host!r} is not a valid host name") from None
        if not _HOST_OK.match(host):
            raise _reject(f"webhook_url host {host!r} is not a valid host name")
    return host, port or (443 if scheme == "https" else 80)


async def check_webhook_url(
    url: str, *, allow_private: bool, resolve: Resolver | None = None, timeout: float = 2.0
) -> list[IPAddress]:
    """Validate ``url`` as a webhook target; answer the addresses it may be delivered to.

    Raises ``UnsafeURL`` (answered 400 ``invalid_webhook_url``, param ``webhook_url``) naming
    what is wrong.
    """
    host, port = _parse(url, allow_private)
    if host in METADATA_HOSTS:
        raise _reject(f"webhook_url host {host} is a cloud metadata service")
    literal = _literal(host)
    if literal is not None:
        found: list[str | IPAddress] = [literal]
    else:
        try:
            async with asyncio.timeout(timeout):
                found = list(await (resolve or system_resolver)(host, port))
        except (OSError, TimeoutError, UnicodeError, ValueError):
            found = []
        if not found:
            raise _reject(f"webhook_url host {host} does not resolve")
    addresses: list[IPAddress] = []
    for raw in found:
        try:
            ip = raw if not isinstance(raw, str) else ipaddress.ip_address(raw)
        except ValueError:
            raise _reject(f"webhook_url host {host} resolves to an invalid address") from None
        why = address_class(ip)
        if why is not None:
            metadata = why.startswith("a cloud metadata")
            if metadata or not allow_private:
                subject = "is" if literal is not None else f"resolves to {ip},"
                hint = "" if metadata else _HINT
                raise _reject(f"webhook_url host {host} {subject} {why}{hint}")
        if ip not in addresses:
            addresses.append(ip)
    return addresses
