"""Each simulator fault knob surfaces as the right ProviderError, without the key.

sunoapi.org answers errors as a body ``code`` inside an HTTP 200; a fault can also use
the code as its HTTP status: both read the same."""

from __future__ import annotations

from typing import Any

import pytest

import providers.suno as suno
from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.providers.suno.helpers import KEY, Sim, request
from tests.support.native import poll, ref

CODES: list[tuple[int, type[ProviderError], int]] = [
    (400, UpstreamRejected, 400),
    (401, UpstreamAuthError, 502),
    (405, UpstreamRateLimited, 429),
    (413, UpstreamRejected, 400),
    (429, UpstreamInsufficientCredits, 402),
    (430, UpstreamRateLimited, 429),
    (455, UpstreamUnavailable, 503),
    (500, UpstreamError, 502),
]


def no_secret(exc: BaseException) -> None:
    assert KEY not in str(exc) and KEY not in getattr(exc, "message", "")
    assert KEY not in repr(exc.args)


@pytest.mark.parametrize("http_status", [None, "code"])
@pytest.mark.parametrize(("code", "error", "client_status"), CODES)
async def test_create_codes(
    provider: suno.SunoProvider,
    sim: Sim,
    code: int,
    error: type[ProviderError],
    client_status: int,
    http_status: str | None,
) -> None:
    fault: dict[str, Any] = {"code": code, "message": f"native says {code}"}
    if http_status == "code":  # the code as the HTTP status too: read the same
        fault["http_status"] = code
    sim.configure(faults=[{**fault, "endpoints": ["create"]}], echo_auth_in_errors=True)
    with pytest.raises(error) as info:
        await provider.start(request())
    exc = info.value
    assert type(exc) is error and exc.http_status == client_status
    assert exc.provider == "suno" and f"native says {code}" in exc.message
    no_secret(exc)
    assert "[redacted]" in exc.message  # the echoed key was scrubbed
    if error is UpstreamRateLimited:
        assert exc.retry_after == 10.0  # sunoapi.org's window: 20 creates per 10 s
    assert sim.stats()["creates_accepted"] == 0


async def test_retry_after_header_wins_over_the_default(
    provider: suno.SunoProvider, sim: Sim
) -> None:
    sim.configure(faults=[{"code": 430, "retry_after": 17, "endpoints": ["create"]}])
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.start(request())
    assert info.value.retry_after == 17


async def test_the_documented_window_is_a_rate_limit(provider: suno.SunoProvider, sim: Sim) -> None:
    sim.configure(creates_per_window=2, window_seconds=60.0, callbacks=False)
    await provider.start(request())
    await provider.start(request())
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.start(request())
    assert info.value.native_status == 430 and sim.stats()["rate_limited"] == 1


async def test_simulator_validation_is_upstream_rejected(sim: Sim) -> None:
    """A body sunoapi.org refuses (one ``check`` would have stopped): code 413 -> 400."""
    from providers.suno import mapping
    from providers.suno.client import SunoClient

    client = SunoClient(api_key=KEY, base_url=sim.base)
    body = mapping.encode(mapping.to_native(request(prompt="x" * 600)))
    try:
        with pytest.raises(UpstreamRejected) as info:
            await client.create(body)
    finally:
        await client.aclose()
    assert info.value.native_status == 413 and info.value.http_status == 400


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"code": 404, "message": "Task not found"}, UpstreamNotFound),
        ({"code": 401}, UpstreamAuthError),
        ({"code": 455}, UpstreamUnavailable),
        ({"code": 500, "http_status": 500}, UpstreamError),
        ({"malformed": True}, UpstreamError),
    ],
)
async def test_status_faults(
    provider: suno.SunoProvider, sim: Sim, fault: dict[str, Any], error: type[ProviderError]
) -> None:
    req = request()
    sub = await provider.start(req)
    sim.configure(faults=[{**fault, "endpoints": ["status"]}], echo_auth_in_errors=True)
    with pytest.raises(error) as info:
        await provider.fetch(ref(sub, req))
    assert type(info.value) is error
    no_secret(info.value)


async def test_a_fault_for_the_next_request_only(provider: suno.SunoProvider, sim: Sim) -> None:
    req = request()
    sub = await provider.start(req)
    sim.configure(faults=[{"code": 500, "endpoints": ["status"], "count": 1}])
    with pytest.raises(UpstreamError):
        await provider.fetch(ref(sub, req))
    done, _ = await poll(provider, sub, req)
    assert done.status == "completed" and sim.stats()["faults_injected"] == 1


async def test_malformed_create_answer_is_an_error_whose_outcome_is_unknown(
    provider: suno.SunoProvider, sim: Sim
) -> None:
    sim.configure(faults=[{"malformed": True, "endpoints": ["create"], "after_create": True}])
    with pytest.raises(UpstreamError) as info:
        await provider.start(request())
    assert info.value.sent is True and sim.stats()["creates_accepted"] == 1


async def test_a_late_create_answer_is_a_timeout_after_sending(sim: Sim) -> None:
    sim.configure(faults=[{"latency": 3.0, "endpoints": ["create"], "after_create": True}])
    p = suno.create({"SUNO_API_KEY": KEY, "SUNO_BASE_URL": sim.base, "SUNO_READ_TIMEOUT": "0.5"})
    try:
        with pytest.raises(UpstreamTimeout) as info:
            await p.start(request())
    finally:
        await p.aclose()
    assert info.value.sent is True and sim.stats()["creates_accepted"] == 1
