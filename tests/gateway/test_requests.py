"""Bad input: every class gets a 400 (or 413) in the envelope, with its code and param."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.api.schemas import MAX_PROMPT

URL = "/v1/music/generate"


async def _err(client: httpx.AsyncClient, body: Any = None, content: bytes | None = None) -> dict:
    if content is not None:
        r = await client.post(URL, content=content, headers={"Content-Type": "application/json"})
    else:
        r = await client.post(URL, json=body)
    assert r.status_code == 400, r.text
    data = r.json()
    assert data["status_code"] == 400
    assert data["request_id"] == r.headers["x-request-id"]
    return data


async def test_unknown_top_level_fields_are_all_named(echo_client: httpx.AsyncClient) -> None:
    e = await _err(echo_client, {"model": "echo/v1", "prompt": "x", "temperature": 1, "seed": 2})
    assert e["error"] == "unknown_parameter"
    assert e["details"] == ["seed", "temperature"]
    assert "seed" in e["description"] and "temperature" in e["description"]
    assert e["param"] == "seed"


async def test_a_body_sent_in_pieces_is_explained_too(echo_client: httpx.AsyncClient) -> None:
    """The error handlers read the body the create route kept, however it arrived."""
    raw = b'{"model": "echo/v1", "prompt": "x", "temperature": 1, "seed": 2}'

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 7):
            yield raw[i : i + 7]

    r = await echo_client.post(URL, content=pieces(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "unknown_parameter"
    assert r.json()["details"] == ["seed", "temperature"]


async def test_unknown_native_field_names_its_path(echo_client: httpx.AsyncClient) -> None:
    e = await _err(echo_client, {"model": "echo/v1", "prompt": "x", "echo": {"speed": 2}})
    assert e["error"] == "unknown_parameter"
    assert e["param"] == "echo.speed"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": 5, "prompt": "x"}, "model"),
        ({"model": "echo/v1", "prompt": ["x"]}, "prompt"),
        ({"model": "echo/v1", "prompt": "x", "duration": "long"}, "duration"),
        ({"model": "echo/v1", "prompt": "x", "duration": 0}, "duration"),
        ({"model": "echo/v1", "prompt": "x", "format": "flac"}, "format"),
        ({"model": "echo/v1", "prompt": "x", "metadata": {"a": 1}}, "metadata"),
        ({"model": "echo/v1", "prompt": "x", "echo": {"steps": "two"}}, "echo.steps"),
        ({"model": "echo/v1", "prompt": "x" * (MAX_PROMPT + 1)}, "prompt"),
        (
            {"model": "echo/v1", "prompt": "x", "metadata": {f"k{i}": "v" for i in range(17)}},
            "metadata",
        ),
    ],
)
async def test_wrong_types_and_limits(
    echo_client: httpx.AsyncClient, body: dict, param: str
) -> None:
    e = await _err(echo_client, body)
    assert e["error"] == "validation_error"
    assert e["param"] == param


async def test_missing_model(echo_client: httpx.AsyncClient) -> None:
    e = await _err(echo_client, {"prompt": "x"})
    assert e["error"] == "missing_parameter"
    assert e["param"] == "model"


@pytest.mark.parametrize("content", [b"{", b"not json", b"", b"[1,2]"])
async def test_malformed_json(echo_client: httpx.AsyncClient, content: bytes) -> None:
    e = await _err(echo_client, content=content)
    assert e["error"] in {"invalid_json", "validation_error"}
    assert e["description"]


async def test_body_too_large_is_413(echo_client: httpx.AsyncClient) -> None:
    r = await echo_client.post(URL, json={"model": "echo/v1", "prompt": "x" * 70_000})
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"


async def test_unknown_model_lists_valid_ids(echo_client: httpx.AsyncClient) -> None:
    e = await _err(echo_client, {"model": "suno/v4.5plus", "prompt": "x"})
    assert e["error"] == "unknown_model"
    assert e["param"] == "model"
    assert e["details"] == ["echo/v1", "echo/i1"]
    assert "echo/v1" in e["description"]


async def test_unsupported_parameter_is_named(echo_client: httpx.AsyncClient) -> None:
    body = {"model": "echo/i1", "prompt": "x", "lyrics": "la la"}
    r = await echo_client.post(URL, json=body)
    assert r.status_code == 200, r.text
    warning = r.json()["warnings"][0]
    assert (warning["code"], warning["param"]) == ("parameter_ignored", "lyrics")
    e = await _err(echo_client, {**body, "provider": {"require_parameters": True}})
    assert e["error"] == "unsupported_parameter"
    assert e["param"] == "lyrics"


async def test_provider_check_rejects(echo_client: httpx.AsyncClient) -> None:
    e = await _err(echo_client, {"model": "echo/i1", "prompt": "x", "instrumental": False})
    assert e["error"] == "unsupported_parameter"
    assert e["param"] == "instrumental"


async def test_prompt_or_lyrics_required(echo_client: httpx.AsyncClient) -> None:
    e = await _err(echo_client, {"model": "echo/v1"})
    assert e["error"] == "missing_parameter"
    assert e["param"] == "prompt"


async def test_nothing_stored_for_rejected_input(echo_client: httpx.AsyncClient) -> None:
    store = echo_client.app.state.store
    await _err(echo_client, {"model": "echo/v1", "prompt": "x", "bogus": True})
    keys = [k async for k in store.redis.scan_iter(match=f"{store.prefix}job:*")]
    assert keys == []


async def test_a_key_whose_job_record_is_gone_starts_anew(
    echo_client: httpx.AsyncClient, echo: Any
) -> None:
    """An Idempotency-Key bound to a job whose record is missing (its create was undone
    after the key's admission ran but its answer was lost, e.g. in a Redis failover) is
    not a 409 forever: the first retry unbinds it (409, Retry-After: 1), the next one
    creates the job. Nothing was sent upstream for the missing record."""
    headers = {"Idempotency-Key": "orphan-1"}
    body = {"model": "echo/v1", "prompt": "x"}
    first = await echo_client.post(URL, json=body, headers=headers)
    assert first.status_code == 200, first.text
    store = echo_client.app.state.store  # type: ignore[attr-defined]
    await store.delete_job(first.json()["id"])  # the record undone, the key still bound
    calls = echo.calls["submit"]
    r = await echo_client.post(URL, json=body, headers=headers)
    assert r.status_code == 409 and r.headers["Retry-After"] == "1", r.text
    assert r.json()["error"] == "request_in_progress"
    again = await echo_client.post(URL, json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] != first.json()["id"]
    assert echo.calls["submit"] == calls + 1  # one new create
    replay = await echo_client.post(URL, json=body, headers=headers)
    assert replay.json()["id"] == again.json()["id"]  # bound to the new job
    assert replay.headers["Idempotent-Replayed"] == "true"
