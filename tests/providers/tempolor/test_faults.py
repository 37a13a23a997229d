"""Each simulator fault knob surfaces as the right ProviderError, without the token."""

from __future__ import annotations

from typing import Any

import pytest

import providers.tempolor as tempolor
from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
)
from tests.providers.tempolor.helpers import TOKEN, Sim, request
from tests.support.native import poll, ref
from tests.support.waiting import eventually

CREATE_FAULTS: list[tuple[dict[str, Any], type[ProviderError], int]] = [
    ({"fault_status": 400, "fault_message": "Parameter prompt is required"}, UpstreamRejected, 400),
    ({"fault_status": 422}, UpstreamRejected, 400),
    ({"fault_status": 401, "fault_message": "Unauthorized"}, UpstreamAuthError, 502),
    ({"fault_status": 403}, UpstreamAuthError, 502),
    (
        {"fault_status": 402, "fault_message": "Subscription required"},
        UpstreamInsufficientCredits,
        402,
    ),
    (
        {"fault_status": 412, "fault_message": "Not enough credits"},
        UpstreamInsufficientCredits,
        402,
    ),
    ({"fault_status": 429, "fault_message": "Too many parallel jobs"}, UpstreamRateLimited, 429),
    ({"fault_status": 500}, UpstreamError, 502),
    ({"fault_status": 503}, UpstreamError, 502),
    ({"fault_status": 596, "fault_message": "Session broken"}, UpstreamError, 502),
    ({"malformed_json": True}, UpstreamError, 502),
]


def no_secret(exc: BaseException) -> None:
    assert TOKEN not in str(exc)
    assert TOKEN not in getattr(exc, "message", "")
    assert TOKEN not in repr(exc.args)


@pytest.mark.parametrize(("knobs", "error", "http_status"), CREATE_FAULTS)
async def test_create_faults(
    provider: tempolor.TemPolorProvider,
    sim: Sim,
    knobs: dict[str, Any],
    error: type[ProviderError],
    http_status: int,
) -> None:
    sim.configure(fault_endpoints=["create"], **knobs)
    with pytest.raises(error) as info:
        await provider.start(request())
    exc = info.value
    assert type(exc) is error
    assert exc.http_status == http_status and exc.provider == "tempolor"
    if "fault_message" in knobs:
        assert knobs["fault_message"] in exc.message  # the native message is kept
    if "fault_status" in knobs:
        assert exc.native_status == knobs["fault_status"]
    no_secret(exc)
    assert sim.stats()["creates_accepted"] == 0


async def test_rate_limit_retry_after_header_and_default(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(fault_status=429, retry_after=17, fault_count=1)
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.start(request())
    assert info.value.retry_after == 17
    sim.configure(fault_status=429, retry_after=None, fault_count=1)
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.start(request())
    assert info.value.retry_after == 10.0  # useapi's advice: retry after 10-30 s


async def test_too_many_parallel_jobs_is_a_429(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(max_parallel_jobs=1, generate_seconds=2.0)
    await provider.start(request())
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.start(request())
    assert "parallel" in info.value.message
    sim.configure(max_parallel_jobs=None)
    with pytest.raises(UpstreamRateLimited):  # the request's own maxJobs counts too
        await provider.start(request(options={"maxJobs": 1}))


@pytest.mark.parametrize(
    ("knobs", "error"),
    [
        ({"fault_status": 404, "fault_message": "No record found for x"}, UpstreamNotFound),
        ({"fault_status": 410, "fault_message": "Job has expired"}, UpstreamError),
        ({"fault_status": 401}, UpstreamAuthError),
        ({"fault_status": 500}, UpstreamError),
        ({"malformed_json": True}, UpstreamError),
    ],
)
async def test_status_faults(
    provider: tempolor.TemPolorProvider,
    sim: Sim,
    knobs: dict[str, Any],
    error: type[ProviderError],
) -> None:
    req = request()
    sub = await provider.start(req)
    sim.configure(fault_endpoints=["status"], **knobs)
    with pytest.raises(error) as info:
        await provider.fetch(ref(sub, req))
    assert type(info.value) is error
    no_secret(info.value)


@pytest.mark.parametrize(
    ("knobs", "error"),
    [
        ({"fault_status": 500}, UpstreamError),
        ({"fault_status": 401}, UpstreamAuthError),
        ({"fault_status": 429}, UpstreamRateLimited),
        ({"malformed_json": True}, UpstreamError),
    ],
)
async def test_download_faults(
    provider: tempolor.TemPolorProvider,
    sim: Sim,
    knobs: dict[str, Any],
    error: type[ProviderError],
) -> None:
    req = request()
    sub = await provider.start(req)
    # past the simulated generation: status says 30 (the stats make no status call)
    await eventually(lambda: sim.stats()["jobs"] == {"completed": 1}, what="generation over")
    sim.configure(fault_endpoints=["download"], **knobs)
    with pytest.raises(error):
        await provider.fetch(ref(sub, req))
    assert sim.stats()["status_calls"] == 1


async def test_a_fault_for_the_next_request_only(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    req = request()
    sub = await provider.start(req)
    sim.configure(fault_status=503, fault_count=1, fault_endpoints=["status"])
    with pytest.raises(UpstreamError):
        await provider.fetch(ref(sub, req))
    snap, _ = await poll(provider, sub, req)
    assert snap.status == "completed"
    stats = sim.stats()
    assert stats["faults_injected"] == 1 and sim.configure()["fault_count"] == 0


async def test_wrong_token_is_an_auth_error_that_never_shows_the_token(sim: Sim) -> None:
    secret = "user:999-this-token-must-never-leak"
    p = tempolor.create({"USEAPI_TOKEN": secret, "USEAPI_BASE_URL": sim.api})
    try:
        with pytest.raises(UpstreamAuthError) as info:
            await p.start(request())
    finally:
        await p.aclose()
    assert "Unauthorized" in info.value.message
    assert secret not in str(info.value) and secret not in info.value.message
    assert sim.stats()["unauthorized"] == 1


async def test_an_upstream_message_echoing_the_token_is_scrubbed(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    sim.configure(fault_status=400, fault_message=f"bad token {TOKEN} for account")
    with pytest.raises(UpstreamRejected) as info:
        await provider.start(request())
    no_secret(info.value)
    assert "[redacted]" in info.value.message


async def test_missing_token_fails_before_sending(sim: Sim) -> None:
    p = tempolor.create({"USEAPI_BASE_URL": sim.api})
    try:
        with pytest.raises(UpstreamAuthError) as info:
            await p.start(request())
    finally:
        await p.aclose()
    assert info.value.sent is False
    assert sim.stats()["creates_accepted"] + sim.stats()["creates_rejected"] == 0
