"""The committed OpenAPI document matches the live app, and documents every operation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli.main import DEFAULT_SPEC, openapi_document, render_openapi
from gateway.infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live() -> dict:
    return openapi_document(Settings.from_env({}))


def test_committed_spec_has_not_drifted(live: dict) -> None:
    committed = (ROOT / DEFAULT_SPEC).read_text()
    assert committed == render_openapi(live), (
        "openapi/openapi.json is stale: run `uv run music-gateway openapi` and commit it"
    )


def test_every_operation_is_documented(live: dict) -> None:
    ops = [
        (path, method, op)
        for path, item in live["paths"].items()
        for method, op in item.items()
        if method in {"get", "head", "post", "put", "patch", "delete"}
    ]
    assert len(ops) >= 6
    seen = set()
    for path, method, op in ops:
        where = f"{method.upper()} {path}"
        assert op.get("operationId"), where
        assert op["operationId"] not in seen, where
        seen.add(op["operationId"])
        assert op.get("summary"), where
        assert op.get("description"), where
        ok = op["responses"].get("200") or op["responses"].get("201")
        media = "text/plain" if path == "/metrics" else "application/json"
        if path.endswith("/events"):
            media = "text/event-stream"
        if path.startswith("/v1/artefacts/"):
            media = "application/octet-stream"  # and audio/mpeg, audio/wav, ...
        if method == "head":  # headers only
            assert ok and "content" not in ok and "Content-Length" in ok["headers"], where
        else:
            assert ok and ok["content"][media]["schema"], where
        if method == "post":
            assert op["requestBody"]["content"]["application/json"]["schema"], where
        errors = [code for code in op["responses"] if code.startswith(("4", "5"))]
        assert errors, f"{where} documents no error response"
        for code in errors:
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema, f"{where} {code}"


def test_request_schema_has_native_blocks_and_error_envelope(live: dict) -> None:
    schemas = live["components"]["schemas"]
    req = schemas["MusicGenerateRequest"]
    assert req["required"] == ["model"]
    for name in (
        "model",
        "prompt",
        "lyrics",
        "instrumental",
        "title",
        "style",
        "duration",
        "format",
        "webhook_url",
        "metadata",
        "musicgpt",
        "tempolor",
    ):
        assert name in req["properties"], name
    err = schemas["ErrorResponse"]
    assert {"error", "description", "status_code", "request_id"} <= set(err["required"])
    assert "BearerAuth" in live["components"]["securitySchemes"]
    text = json.dumps(live)
    assert "sk-" not in text and "mgw_" not in text


async def test_interactive_docs_page(echo_client) -> None:  # type: ignore[no-untyped-def]
    r = await echo_client.get("/docs", headers={"Authorization": ""})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/docs/openapi.json" in r.text
    spec = await echo_client.get("/docs/openapi.json", headers={"Authorization": ""})
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "Music Gateway API"
