"""The provider kit: ``Retry-After``, strict configuration, ``Upstream``'s one mapping
of HTTP answers to the ``ProviderError`` tree (the transport failures are
``test_http.py``'s), and the simulators' config patches."""

from __future__ import annotations

import email.utils

import msgspec
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from structlog.testing import capture_logs

from providers.base import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
)
from providers.kit import (
    Answer,
    Timeouts,
    Upstream,
    UpstreamHTTP,
    count,
    retry_after,
    seconds,
    text,
    timeouts_from,
)
from providers.kit.simulation import apply_patch

SECRET = "sk-kit-secret-0123456789"


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("12") == 12.0 and retry_after(" 1.5 ") == 1.5
    assert retry_after("-3") == 0.0
    assert retry_after(None) is None and retry_after("") is None and retry_after("soon") is None
    assert retry_after("nan") is None
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after(date, now=now) == pytest.approx(30.0)
    assert retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_configuration_is_strict() -> None:
    env = {"X_READ_TIMEOUT": "2.5", "X_MAX": "7", "X_URL": "  https://h  ", "X_BLANK": " "}
    assert timeouts_from(env, "X") == Timeouts(read=2.5)
    assert count(env, "X_MAX", 1) == 7 and count(env, "X_NONE", 3) == 3
    assert text(env, "X_URL") == "https://h" and text(env, "X_BLANK", "d") == "d"
    assert seconds({}, "X_T", 4.0) == 4.0
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ValueError, match="X_T"):
            seconds({"X_T": bad}, "X_T", 1.0)
    with pytest.raises(ValueError, match="X_MAX"):
        count({"X_MAX": "2.5"}, "X_MAX", 1)


def _api(**kw: object) -> Upstream:
    return Upstream(
        provider="kit",
        label="Kit",
        http=UpstreamHTTP("http://127.0.0.1:9"),
        secret=SECRET,
        **kw,  # type: ignore[arg-type]
    )


def _answer(status: int, body: bytes, **headers: str) -> Answer:
    return Answer(status, "Reason", CIMultiDictProxy(CIMultiDict(headers)), body)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, UpstreamRejected),
        (422, UpstreamRejected),
        (401, UpstreamAuthError),
        (403, UpstreamAuthError),
        (402, UpstreamInsufficientCredits),
        (404, UpstreamNotFound),
        (429, UpstreamRateLimited),
        (500, UpstreamError),
        (503, UpstreamError),
    ],
)
def test_status_errors_follow_the_design_table(status: int, kind: type) -> None:
    body = f'{{"error": "bad key {SECRET}"}}'.encode()
    with capture_logs() as logs:
        exc = _api().status_error("create", _answer(status, body))
    assert type(exc) is kind and exc.native_status == status and exc.provider == "kit"
    assert SECRET not in exc.message and "[redacted]" in exc.message
    assert exc.message.startswith(f"Kit create answered {status}: bad key")
    assert SECRET not in repr(logs)


def test_rate_limits_carry_retry_after_or_the_providers_default() -> None:
    api = _api(rate_limit_retry=10.0)
    assert api.status_error("status", _answer(429, b"", **{"Retry-After": "3"})).retry_after == 3
    assert api.status_error("status", _answer(429, b"")).retry_after == 10.0
    assert _api().status_error("status", _answer(429, b"")).retry_after is None
    # A body that is not the JSON envelope: the HTTP reason stands in.
    assert _api().status_error("status", _answer(502, b"<html>")).message.endswith(": Reason")


async def test_a_call_without_a_credential_never_leaves() -> None:
    api = Upstream(provider="kit", label="Kit", http=UpstreamHTTP("http://127.0.0.1:9"), secret="")
    with pytest.raises(UpstreamAuthError) as info:
        await api.call("create", "POST", "/x", content=b"{}")
    assert info.value.sent is False
    await api.aclose()


class _Knobs(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    latency: float = 0.0
    faults: list[str] = []


def test_a_config_patch_changes_the_shared_config_in_place() -> None:
    knobs = _Knobs()
    assert apply_patch(knobs, b'{"latency": 0.5}') == {"latency": 0.5}
    assert (knobs.latency, knobs.faults) == (0.5, [])


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{", "config patch must be JSON"),
        (b"[1]", "config patch must be a JSON object"),
        (b'{"nope": 1}', "nope"),
        (b'{"latency": "slow"}', "latency"),
    ],
)
def test_a_bad_config_patch_says_why_and_changes_nothing(raw: bytes, says: str) -> None:
    knobs = _Knobs(latency=1.0)
    with pytest.raises(ValueError, match=says):
        apply_patch(knobs, raw)
    assert (knobs.latency, knobs.faults) == (1.0, [])
