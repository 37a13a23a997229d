"""Bearer-key auth: missing, malformed, wrong, revoked keys; jobs visible only to their key."""

from __future__ import annotations

import httpx

from tests.conftest import OTHER_KEY, TEST_KEY

BODY = {"model": "echo/v1", "prompt": "a calm piano piece"}


async def test_missing_key_is_401_in_envelope(echo_client: httpx.AsyncClient) -> None:
    r = await echo_client.post("/v1/music/generate", json=BODY, headers={"Authorization": ""})
    assert r.status_code == 401
    body = r.json()
    assert body["error"] == "missing_api_key"
    assert body["status_code"] == 401
    assert body["request_id"] == r.headers["x-request-id"]
    assert r.headers["www-authenticate"] == "Bearer"


async def test_malformed_and_wrong_keys_are_401(echo_client: httpx.AsyncClient) -> None:
    for header in ("Basic abc", "Bearer", f"Token {TEST_KEY}", "Bearer not-a-real-key"):
        r = await echo_client.get("/v1/models", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["error"] == "invalid_api_key"


async def test_revoked_key_is_rejected(echo_client: httpx.AsyncClient) -> None:
    store = echo_client.app.state.store
    raw, record = await store.keys.create_key("temp")
    headers = {"Authorization": f"Bearer {raw}"}
    assert (await echo_client.get("/v1/models", headers=headers)).status_code == 200
    assert await store.keys.revoke_key(record.id)
    r = await echo_client.get("/v1/models", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_api_key"


async def test_keys_are_stored_hashed(echo_client: httpx.AsyncClient) -> None:
    store = echo_client.app.state.store
    raw, _ = await store.keys.create_key("hashed")
    async for name in store.redis.scan_iter(match=f"{store.prefix}*"):
        assert raw.encode() not in name
        value = await store.redis.get(name)
        assert raw.encode() not in value
    assert TEST_KEY not in str([k async for k in store.redis.scan_iter(match=f"{store.prefix}*")])


async def test_other_key_gets_404_exactly_like_missing(echo_client: httpx.AsyncClient) -> None:
    job = (await echo_client.post("/v1/music/generate", json=BODY)).json()
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    theirs = await echo_client.get(f"/v1/music/generate/{job['id']}", headers=other)
    missing = await echo_client.get(
        "/v1/music/generate/mus_01jzzzzzzzzzzzzzzzzzzzzzzz", headers=other
    )
    assert theirs.status_code == missing.status_code == 404
    a, b = theirs.json(), missing.json()
    assert a["error"] == b["error"] == "not_found"
    assert a["param"] == b["param"] == "music_id"
    assert set(a) == set(b)
    mine = await echo_client.get(f"/v1/music/generate/{job['id']}")
    assert mine.status_code == 200


async def test_health_and_ready_need_no_key(echo_client: httpx.AsyncClient) -> None:
    no_auth = {"Authorization": ""}
    assert (await echo_client.get("/health", headers=no_auth)).json() == {"status": "ok"}
    r = await echo_client.get("/ready", headers=no_auth)
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "redis": True,
        "providers": {
            "echo": {
                "configured": True,
                "circuit": "closed",
                "callbacks": False,  # it could call back, but there is no public URL
                "note": "GATEWAY_PUBLIC_URL is unset: no provider callbacks; jobs are"
                " followed by polling only.",
            }
        },
    }


async def test_options_and_docs_need_no_key_but_music_routes_do(
    echo_client: httpx.AsyncClient,
) -> None:
    no_auth = {"Authorization": ""}
    r = await echo_client.options("/v1/music/generate", headers=no_auth)
    assert r.status_code == 204 and "POST" in r.headers["allow"]
    assert (await echo_client.get("/docs/openapi.json", headers=no_auth)).status_code == 200
    r = await echo_client.get("/v1/music/generate/mus_x", headers=no_auth)
    assert r.status_code == 401 and r.json()["error"] == "missing_api_key"
