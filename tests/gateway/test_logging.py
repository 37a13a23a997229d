"""Logging: one canonical JSON line per request; secrets never logged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.api.app import create_app
from gateway.infra import log
from gateway.infra.log import redact
from tests.conftest import OTHER_KEY, TEST_KEY, app_client
from tests.support.echo import EchoProvider


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_canonical_line_and_redaction(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    provider_key = "mgpt-live-SECRET-123456"
    app = create_app(make_settings(MUSICGPT_API_KEY=provider_key), providers=[EchoProvider()])
    async with app_client(app) as client:
        capsys.readouterr()
        r = await client.post("/v1/music/generate", json={"model": "echo/v1", "prompt": "x"})
        await client.get("/v1/models", headers={"Authorization": f"Bearer {OTHER_KEY}x"})
        import structlog

        structlog.get_logger("t").warning(
            "leak_attempt", detail=f"key {provider_key} and Bearer {TEST_KEY}", api_key=TEST_KEY
        )
    out = capsys.readouterr().err
    assert provider_key not in out and TEST_KEY not in out and OTHER_KEY not in out
    lines = _lines(out)
    requests = [ln for ln in lines if ln["event"] == "request"]
    assert len(requests) == 2  # exactly one line per request
    create = requests[0]
    assert create["route"] == "/v1/music/generate" and create["status"] == 200
    assert create["request_id"] == r.headers["x-request-id"]
    assert create["model"] == "echo/v1" and create["provider"] == "echo"
    assert create["key_id"].startswith("key_") and "upstream_ms" in create
    leak = next(ln for ln in lines if ln["event"] == "leak_attempt")
    assert leak["api_key"] == "[REDACTED]"
    assert "[REDACTED]" in leak["detail"]


async def test_callback_token_not_logged(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(
        make_settings(GATEWAY_PUBLIC_URL="https://gw.example"), providers=[EchoProvider()]
    )
    async with app_client(app) as client:
        job = (
            await client.post("/v1/music/generate", json={"model": "echo/v1", "prompt": "x"})
        ).json()
        token = (await app.state.store.get_job(job["id"])).callback_token
        await client.post(f"/v1/callbacks/echo/{job['id']}/{token}", content=b'{"step": 1}')
    out = capsys.readouterr().err
    assert token not in out
    assert any(ln.get("route") == "/v1/callbacks/{provider}/{job_id}/{token}" for ln in _lines(out))


def test_redact_scrubs_bearer_tokens() -> None:
    assert redact("Authorization: Bearer abc.def-123") == "Authorization: Bearer [REDACTED]"


def test_redaction_touches_only_what_holds_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """All string values are searched at once; when a secret turns up, each value is
    scrubbed on its own and the clean ones stay as they were."""
    monkeypatch.setattr(log, "_known_secrets", ("sk-live-0123456789",))
    clean = {"event": "request", "route": "/v1/music/generate", "status": 200, "ms": 1.5}
    assert log._redact_processor(None, "", dict(clean)) == clean

    event = {
        **clean,
        "job_id": "mus_sk-live-0123456789",  # a secret pasted into a path
        "note": "Bearer abc.def",
        "token": "opaque",  # a sensitive field name
        "model": "echo/v1",
    }
    assert log._redact_processor(None, "", event) == {
        **clean,
        "job_id": "mus_[REDACTED]",
        "note": "Bearer [REDACTED]",
        "token": "[REDACTED]",
        "model": "echo/v1",
    }
    # Two values whose ends would spell a secret together are not one value.
    split = {"a": "sk-live-01234", "b": "56789"}
    assert log._redact_processor(None, "", dict(split)) == split


def test_request_ids_are_unique_and_differ_per_process() -> None:
    """Generated ids: ``req_`` + 24 hex digits, counted within a process, with a random
    prefix that a forked worker draws anew (so two workers never share one)."""
    import re

    from gateway.infra import log

    ids = {log._new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids)
    prefix = next(iter(ids))[:16]
    log._reset_request_ids()  # what os.register_at_fork runs in a child
    assert log._new_request_id()[:16] != prefix
