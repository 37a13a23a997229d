"""``check_webhook_url``: the SSRF guard, table-driven over an injected resolver (no DNS)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.notify.ssrf import ALLOW_SETTING, UnsafeURL, check_webhook_url

HOSTS: dict[str, list[str]] = {
    "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "v4.example.com": ["93.184.216.34", "93.184.216.34"],
    "internal.example.com": ["10.0.0.5"],
    "mixed.example.com": ["93.184.216.34", "192.168.1.10"],
    "rebind.example.com": ["127.0.0.1"],
    "cgnat.example.com": ["100.64.1.1"],
    "alibaba.example.com": ["100.100.100.200"],
    "ula.example.com": ["fd12:3456::1"],
    "awsv6.example.com": ["fd00:ec2::254"],
    "mapped.example.com": ["::ffff:10.0.0.1"],
    "nat64.example.com": ["64:ff9b::7f00:1"],
    "nat64-public.example.com": ["64:ff9b::808:808"],
    "sixtofour.example.com": ["2002:c0a8:101::1"],
    "multicast.example.com": ["224.0.0.251"],
    "linklocal.example.com": ["169.254.10.1"],
    "metadata.example.com": ["169.254.169.254"],
    "empty.example.com": [],
}


class FakeDNS:
    """A resolver over ``HOSTS``; unknown names fail like getaddrinfo does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in HOSTS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return HOSTS[host]


async def check(url: str, allow_private: bool = False) -> list[str]:
    return [
        str(a) for a in await check_webhook_url(url, allow_private=allow_private, resolve=FakeDNS())
    ]


async def rejected(url: str, allow_private: bool = False) -> str:
    with pytest.raises(UnsafeURL) as info:
        await check(url, allow_private)
    exc = info.value
    assert (exc.code, exc.param) == ("invalid_webhook_url", "webhook_url")
    return exc.message


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        (
            "https://hooks.example.com/cb?x=1",
            ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        ),
        ("https://v4.example.com:8443/a/b", ["93.184.216.34"]),  # de-duplicated
        ("HTTPS://HOOKS.EXAMPLE.COM./x", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]),
        ("https://8.8.8.8/hook", ["8.8.8.8"]),
        ("https://[2606:4700::1111]/hook", ["2606:4700::1111"]),
        ("https://nat64-public.example.com/", ["64:ff9b::808:808"]),
    ],
)
async def test_public_targets_are_accepted(url: str, addresses: list[str]) -> None:
    assert await check(url) == addresses


@pytest.mark.parametrize(
    ("url", "says"),
    [
        # syntax
        ("http://hooks.example.com/cb", "must use https (got http)"),
        ("ftp://hooks.example.com/cb", "absolute http(s) URL"),
        ("file:///etc/passwd", "absolute http(s) URL"),
        ("//hooks.example.com/cb", "absolute http(s) URL"),
        ("/relative/path", "absolute http(s) URL"),
        ("hooks.example.com/cb", "absolute http(s) URL"),
        ("https:///cb", "absolute http(s) URL"),
        ("https://:443/cb", "has no host"),
        ("https://user:pw@hooks.example.com/cb", "user info"),
        ("https://hooks.example.com@127.0.0.1/", "user info"),
        ("https://hooks.example.com/cb#frag", "fragment"),
        ("https://hooks.example.com/cb#", "fragment"),
        ("https://hooks.example.com:99999/", "invalid port"),
        ("https://hooks.example.com:0/", "invalid port"),
        ("https://hooks.example.com/" + "a" * 2048, "longer than 2048"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://hooks.example.com\\@127.0.0.1/", "backslash"),
        (" https://hooks.example.com/", "whitespace"),
        ("https://hooks.example.com/\n", "whitespace"),
        ("https://%31%32%37.0.0.1/", "not a valid host name"),
        ("https://[v1.fe80::1]/", "not an IPv6 address"),
        ("https://[::1/", "not a valid URL"),
        # literal addresses, by class
        ("https://127.0.0.1/cb", "127.0.0.1 is a loopback address"),
        ("https://127.8.9.10/cb", "loopback"),
        ("https://[::1]/cb", "loopback"),
        ("https://0.0.0.0/cb", "unspecified"),
        ("https://[::]/cb", "unspecified"),
        ("https://10.1.2.3/cb", "private"),
        ("https://172.16.0.1/cb", "private"),
        ("https://192.168.0.1/cb", "private"),
        ("https://169.254.1.1/cb", "link-local"),
        ("https://[fe80::1]/cb", "link-local"),
        ("https://100.64.0.1/cb", "carrier-grade NAT"),
        ("https://[fd12:3456::1]/cb", "unique-local"),
        ("https://224.0.0.1/cb", "multicast"),
        ("https://[ff02::1]/cb", "multicast"),
        ("https://240.0.0.1/cb", "reserved"),
        ("https://255.255.255.255/cb", "255.255.255.255 is a"),
        ("https://198.18.0.1/cb", "198.18.0.1 is a"),  # benchmarking range
        ("https://192.0.2.1/cb", "192.0.2.1 is a"),  # documentation range
        ("https://[2001:db8::1]/cb", "2001:db8::1 is a"),  # documentation range
        # embedded IPv4 and legacy numeric forms
        ("https://[::ffff:127.0.0.1]/cb", "loopback address (embedded as ::ffff:7f00:1)"),
        ("https://[::ffff:169.254.169.254]/cb", "cloud metadata"),
        ("https://[64:ff9b::a00:1]/cb", "private address (embedded"),
        ("https://[2002:7f00:1::1]/cb", "loopback address (embedded"),
        ("https://2130706433/cb", "loopback"),
        ("https://0x7f.1/cb", "loopback"),
        ("https://127.1/cb", "loopback"),
        ("https://017700000001/cb", "loopback"),
        # metadata services, by address and by name
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("https://100.100.100.200/latest/meta-data/", "cloud metadata address"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "cloud metadata address"),
        ("https://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("https://METADATA.google.internal./computeMetadata/v1/", "cloud metadata service"),
        ("https://metadata/computeMetadata/v1/", "cloud metadata service"),
        ("https://instance-data/latest/", "cloud metadata service"),
        # names resolving to forbidden addresses
        ("https://internal.example.com/cb", "resolves to 10.0.0.5, a private address"),
        ("https://mixed.example.com/cb", "resolves to 192.168.1.10, a private address"),
        ("https://rebind.example.com/cb", "resolves to 127.0.0.1, a loopback address"),
        ("https://cgnat.example.com/cb", "carrier-grade NAT"),
        ("https://alibaba.example.com/cb", "cloud metadata address"),
        ("https://ula.example.com/cb", "unique-local"),
        ("https://awsv6.example.com/cb", "cloud metadata address"),
        ("https://mapped.example.com/cb", "private address (embedded"),
        ("https://nat64.example.com/cb", "loopback address (embedded"),
        ("https://sixtofour.example.com/cb", "private address (embedded"),
        ("https://multicast.example.com/cb", "multicast"),
        ("https://linklocal.example.com/cb", "link-local"),
        ("https://metadata.example.com/cb", "cloud metadata address"),
        # names that do not resolve
        ("https://nowhere.example.com/cb", "nowhere.example.com does not resolve"),
        ("https://empty.example.com/cb", "does not resolve"),
    ],
)
async def test_rejections_say_what_is_wrong(url: str, says: str) -> None:
    assert says in await rejected(url)


async def test_private_rejections_name_the_setting() -> None:
    message = await rejected("https://127.0.0.1/cb")
    assert message == (
        f"webhook_url host 127.0.0.1 is a loopback address; set {ALLOW_SETTING}=true"
        " to allow private targets"
    )
    assert ALLOW_SETTING in await rejected("https://internal.example.com/cb")
    assert ALLOW_SETTING in await rejected("http://hooks.example.com/cb")
    assert ALLOW_SETTING not in await rejected("https://169.254.169.254/")  # never allowed


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("http://127.0.0.1:8080/cb", ["127.0.0.1"]),
        ("http://[::1]:8080/cb", ["::1"]),
        ("https://10.1.2.3/cb", ["10.1.2.3"]),
        ("http://internal.example.com/cb", ["10.0.0.5"]),
        ("http://mixed.example.com/cb", ["93.184.216.34", "192.168.1.10"]),
        ("https://hooks.example.com/cb", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]),
    ],
)
async def test_allow_private_accepts_private_targets_and_http(
    url: str, addresses: list[str]
) -> None:
    assert await check(url, allow_private=True) == addresses


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://127.0.0.1/cb", "absolute http(s) URL"),
        ("127.0.0.1:8080/cb", "absolute http(s) URL"),
        ("http://user:pw@127.0.0.1/cb", "user info"),
        ("http://127.0.0.1/cb#x", "fragment"),
        ("http://nowhere.example.com/cb", "does not resolve"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("http://metadata.google.internal/", "cloud metadata service"),
        ("http://metadata.example.com/", "cloud metadata address"),
    ],
)
async def test_allow_private_still_requires_a_sane_url(url: str, says: str) -> None:
    assert says in await rejected(url, allow_private=True)


async def test_literals_skip_dns_and_names_get_the_port() -> None:
    dns = FakeDNS()
    await check_webhook_url("https://8.8.8.8/x", allow_private=False, resolve=dns)
    await check_webhook_url("https://[2606:4700::1111]:8443/x", allow_private=False, resolve=dns)
    assert dns.calls == []
    await check_webhook_url("https://hooks.example.com/x", allow_private=False, resolve=dns)
    await check_webhook_url("https://hooks.example.com:8443/x", allow_private=False, resolve=dns)
    await check_webhook_url("http://hooks.example.com/x", allow_private=True, resolve=dns)
    assert dns.calls == [
        ("hooks.example.com", 443),
        ("hooks.example.com", 8443),
        ("hooks.example.com", 80),
    ]


async def test_slow_resolution_times_out_as_does_not_resolve() -> None:
    async def hang(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return ["93.184.216.34"]

    with pytest.raises(UnsafeURL, match="does not resolve"):
        await check_webhook_url(
            "https://slow.example.com/", allow_private=False, resolve=hang, timeout=0.05
        )


async def test_localhost_with_the_real_resolver() -> None:
    """``localhost`` comes from /etc/hosts (no network): rejected, unless private is allowed."""
    with pytest.raises(UnsafeURL, match=r"localhost resolves to .*a loopback address"):
        await check_webhook_url("https://localhost:8443/cb", allow_private=False)
    addresses = await check_webhook_url("http://localhost:8443/cb", allow_private=True)
    assert addresses and all(a.is_loopback for a in addresses)


_FORBIDDEN_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]


# Reproducible (fixed seed, no example database) and no timing-based health check, like
# the providers' property tests: the same examples on every run, however loaded the box.
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(net=st.sampled_from(_FORBIDDEN_V4), offset=st.integers(min_value=0))
async def test_every_address_in_a_forbidden_range_is_rejected_in_every_form(
    net: ipaddress.IPv4Network, offset: int
) -> None:
    ip = net[offset % net.num_addresses]
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ip))
    for url in (
        f"https://{ip}/cb",
        f"https://{int(ip)}/cb",
        f"https://[{mapped}]/cb",
        f"https://[{nat64}]/cb",
    ):
        with pytest.raises(UnsafeURL):
            await check_webhook_url(url, allow_private=False, resolve=FakeDNS())
