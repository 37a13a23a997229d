"""Schemathesis: every operation of the app's OpenAPI document, against the running app.

The gateway is served over real HTTP on loopback, with the real providers pointed at
their simulators (also on loopback), on the session Redis, rate limits off. The document
under test is the one the running app serves at ``/docs/openapi.json``; it is asserted
to equal ``openapi_document(Settings.from_env({}))``, which ``music-gateway openapi``
writes to ``openapi/openapi.json`` (``test_openapi.py`` fails when that file is stale),
so this is a run against the committed spec.

Every response must pass ``CHECKS``: no 5xx, and a documented status code, content type,
headers and body. Generation is deterministic (fixed seed, derandomized, no example
database) and bounded: the examples and coverage phases plus ``MAX_EXAMPLES`` fuzzed
cases per operation, positive and negative.

Random ids never reach deep code, so two steers apply to positive cases: create bodies
get a model id from the running app's catalog (``GET /v1/models``), and callback paths
get a real ``(provider, job_id, token)`` triple, captured from the simulators' own
callbacks to a stand-in public URL. A second test drives a job per catalog model (and a
failing one per provider) to its final state through the document's operations, and
replays the captured provider callbacks through the callback operation.

Usage::

    python3 -m uv run --frozen pytest tests/gateway/test_schemathesis.py -q
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from litestar import Litestar, Request, post
from litestar.params import FromPath
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from gateway.api.app import create_app
from gateway.cli.main import openapi_document
from gateway.infra.settings import Settings
from providers.elevenlabs import simulator as elevenlabs_sim
from providers.musicgpt import simulator as musicgpt_sim
from providers.registry import SIMULATORS
from providers.suno import simulator as suno_sim
from providers.tempolor import simulator as tempolor_sim
from tests.conftest import TEST_KEY, app_client
from tests.support.servers import serve
from tests.support.waiting import wait_until

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
SEED = 612_024
MAX_EXAMPLES = 15
CREATE = "POST /v1/music/generate"
CALLBACK = "POST /v1/callbacks/{provider}/{job_id}/{token}"
FINAL = {"completed", "failed"}
#: Simulators that finish a job in about half a second (the demo's take six).
FAST_SIMULATORS = {
    "musicgpt": lambda: musicgpt_sim.create_simulator(
        musicgpt_sim.SimulatorConfig(queue_seconds=0.1, progress_seconds=0.3)
    ),
    "tempolor": lambda: tempolor_sim.create_simulator(
        tempolor_sim.SimulatorConfig(queue_seconds=0.1, generate_seconds=0.3)
    ),
    "suno": lambda: suno_sim.create_simulator(
        suno_sim.SimulatorConfig(text_seconds=0.1, first_seconds=0.2, complete_seconds=0.4)
    ),
    "elevenlabs": lambda: elevenlabs_sim.create_simulator(elevenlabs_sim.SimulatorConfig()),
}
#: The providers that call back (ElevenLabs answers the audio itself: no callbacks).
CALLING_BACK = ("musicgpt", "tempolor", "suno")


@dataclass
class Receiver:
    """Stands in for the gateway's public URL: keeps the providers' callbacks, answers 200."""

    url: str = ""
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def for_jobs(self, job_ids: set[str]) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(path, body) for path, body in self.calls if path["job_id"] in job_ids]


@dataclass(frozen=True)
class Gateway:
    url: str
    catalog: tuple[dict[str, Any], ...]  # GET /v1/models entries
    simulators: dict[str, str]  # provider name -> simulator base URL
    receiver: Receiver

    @property
    def models(self) -> list[str]:
        return [m["id"] for m in self.catalog]


@contextlib.contextmanager
def serve_receiver() -> Iterator[Receiver]:
    rec = Receiver()

    @post("/v1/callbacks/{provider:str}/{job_id:str}/{token:str}", status_code=200)
    async def hook(
        request: Request[Any, Any, Any],
        provider: FromPath[str],
        job_id: FromPath[str],
        token: FromPath[str],
    ) -> dict[str, bool]:
        body = await request.body()
        with rec.lock:
            rec.calls.append(({"provider": provider, "job_id": job_id, "token": token}, body))
        return {"ok": True}

    with serve(Litestar(route_handlers=[hook], openapi_config=None)) as url:
        rec.url = url
        yield rec


@pytest.fixture
def gateway(make_settings: Callable[..., Settings]) -> Iterator[Gateway]:
    """The gateway on a loopback port; every registered provider on its simulator."""
    assert set(FAST_SIMULATORS) == set(SIMULATORS), "a registered provider has no simulator here"
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(serve_receiver())
        sims = {name: stack.enter_context(serve(make())) for name, make in FAST_SIMULATORS.items()}
        env = {
            k: v for name, spec in SIMULATORS.items() for k, v in spec.env_for(sims[name]).items()
        }
        settings = make_settings(
            **env,
            GATEWAY_PUBLIC_URL=receiver.url,
            GATEWAY_RATE_LIMIT_RPM="0",
            GATEWAY_MAX_INFLIGHT_JOBS="0",
            GATEWAY_REFRESH_INTERVAL="0",
        )
        url = stack.enter_context(serve(create_app(settings)))
        catalog = httpx.get(f"{url}/v1/models", headers=AUTH).raise_for_status().json()["data"]
        assert len(catalog) >= 2 and all(m["available"] for m in catalog), catalog
        yield Gateway(url=url, catalog=tuple(catalog), simulators=sims, receiver=receiver)


def wait_for_callbacks(receiver: Receiver, job_ids: set[str]) -> None:
    def arrived() -> bool:
        return {path["job_id"] for path, _ in receiver.for_jobs(job_ids)} == job_ids

    wait_until(arrived, what=f"a provider callback for each of {job_ids}")


@pytest.fixture
def callback_targets(gateway: Gateway) -> list[dict[str, str]]:
    """A real ``(provider, job_id, token)`` per provider, from a job's first callback."""
    job_ids = set()
    for provider in CALLING_BACK:
        model = next(m for m in gateway.models if m.startswith(f"{provider}/"))
        body = {"model": model, "prompt": "callback target"}
        r = httpx.post(f"{gateway.url}/v1/music/generate", json=body, headers=AUTH)
        assert r.status_code == 200, r.text
        job_ids.add(r.json()["id"])
    wait_for_callbacks(gateway.receiver, job_ids)
    targets = {p["provider"]: p for p, _ in gateway.receiver.for_jobs(job_ids)}
    return [targets[name] for name in sorted(targets)]  # one per provider, in a fixed order


@pytest.fixture(scope="module")
def source_document() -> dict[str, Any]:
    """What ``music-gateway openapi`` writes to ``openapi/openapi.json``. (Built before
    any gateway starts: building an app reconfigures the process-wide logging.)"""
    return openapi_document(Settings.from_env({}))


@pytest.fixture
def api_schema(
    source_document: dict[str, Any],
    gateway: Gateway,
    callback_targets: list[dict[str, str]],
    request: pytest.FixtureRequest,
) -> OpenApiSchema:
    """The running app's own document, loaded into schemathesis."""
    # schemathesis 4.32.5's lazy loader reads pytest's private ``Node._nodeid``, which
    # pytest 9.2 renamed; give it one (it only labels the per-operation reports with it).
    request.node._nodeid = request.node.nodeid
    doc = httpx.get(f"{gateway.url}/docs/openapi.json").raise_for_status().json()
    assert doc == source_document, "the app serves another document than the committed one's"
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["too_slow"],  # timing-based: flaky on a loaded CI box
            "base-url": gateway.url,
            "headers": AUTH,
            "request-timeout": 10,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},  # the document declares no links
        }
    )
    schema = schemathesis.openapi.from_dict(doc, config=config)
    schema.hook(steer(gateway.models, callback_targets))
    return schema


def steer(models: list[str], targets: list[dict[str, str]]) -> Callable[..., Any]:
    """A ``flatmap_case`` hook: positive creates name a catalog model, positive callbacks
    a real job and token. Negative cases are left as generated."""

    def flatmap_case(ctx: schemathesis.HookContext, case: schemathesis.Case) -> Any:
        if case.meta is not None and not case.meta.generation.mode.is_positive:
            return st.just(case)
        body = case.body
        if ctx.operation.label == CREATE and isinstance(body, dict):

            def with_model(model: str) -> schemathesis.Case:
                case.body = {**body, "model": model}
                return case

            return st.sampled_from(models).map(with_model)
        if ctx.operation.label == CALLBACK:

            def with_target(target: dict[str, str]) -> schemathesis.Case:
                case.path_parameters = dict(target)
                return case

            return st.sampled_from(targets).map(with_target)
        return st.just(case)

    return flatmap_case


lazy_schema = schemathesis.pytest.from_fixture("api_schema")


@lazy_schema.parametrize()
def test_every_operation_conforms(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def call(schema: OpenApiSchema, path: str, method: str, **kw: Any) -> Any:
    """One request through the document's operation, under ``CHECKS``; the JSON answer."""
    response = schema[path][method].Case(**kw).call_and_validate(headers=AUTH, checks=CHECKS)
    assert response.status_code == 200, (path, kw, response.text)
    return response.json()


def test_jobs_and_callbacks_conform(api_schema: OpenApiSchema, gateway: Gateway) -> None:
    """A job per catalog model and a failing job per provider, read until final; then
    every callback the providers sent for them, delivered through the document."""
    bodies = [{"model": m, "prompt": "a calm lofi beat for schema checks"} for m in gateway.models]
    jobs = {call(api_schema, "/v1/music/generate", "POST", body=b)["id"]: b for b in bodies}
    # The MusicGPT simulator fails a prompt containing "failme"; TemPolor's the next N jobs.
    tp = httpx.post(f"{gateway.simulators['tempolor']}/__sim__/config", json={"fail_next_jobs": 1})
    assert tp.status_code == 200, tp.text
    for provider in CALLING_BACK:
        body = {"model": next(m for m in gateway.models if m.startswith(f"{provider}/"))}
        body["prompt"] = "failme"
        jobs[call(api_schema, "/v1/music/generate", "POST", body=body)["id"]] = body

    final: dict[str, str] = {}

    def all_final() -> bool:
        for music_id in set(jobs) - set(final):
            job = call(
                api_schema,
                "/v1/music/generate/{music_id}",
                "GET",
                path_parameters={"music_id": music_id},
            )
            if job["status"] in FINAL:
                final[music_id] = job["status"]
        return len(final) == len(jobs)

    wait_until(all_final, interval=0.05, what="every job final")
    failing = {i for i, b in jobs.items() if b["prompt"] == "failme"}
    assert {final[i] for i in failing} == {"failed"}, final
    assert {final[i] for i in set(jobs) - failing} == {"completed"}, final

    # Every read of a job (the JSON object, the event stream, ...) of each final job.
    reads = [
        op.ok()
        for op in api_schema.get_all_operations()
        if op.ok().method == "get" and op.ok().path.startswith("/v1/music/generate/{music_id}")
    ]
    assert len(reads) >= 2, [op.label for op in reads]
    for music_id, op in itertools.product(sorted(final), reads):
        case = op.Case(path_parameters={"music_id": music_id})
        response = case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=10)
        assert response.status_code == 200 and music_id in response.text, (op.label, response.text)

    called_back = {i for i, b in jobs.items() if b["model"].split("/")[0] in CALLING_BACK}
    wait_for_callbacks(gateway.receiver, called_back)
    delivered = set()
    for path, raw in gateway.receiver.for_jobs(called_back):
        ack = call(
            api_schema,
            "/v1/callbacks/{provider}/{job_id}/{token}",
            "POST",
            path_parameters=path,
            body=json.loads(raw),
        )
        assert ack["status"] == final[path["job_id"]], (path, raw, ack)
        delivered.add(path["provider"])
    assert delivered == set(CALLING_BACK)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/music/generate", 429),
        ("GET", "/v1/music/generate/{music_id}", 429),
        ("GET", "/v1/models", 429),
        ("GET", "/v1/music/generate/{music_id}/events", 429),
        ("POST", "/v1/music/generate", 413),
        ("POST", "/v1/callbacks/{provider}/{job_id}/{token}", 413),
    ],
)
async def test_limit_answers_are_documented(
    make_settings: Callable[..., Settings], method: str, path: str, status: int
) -> None:
    """A rate-limited (429) or oversized (413) request answers a documented response.

    The fuzzing run has the limits off, so these answers are produced here on purpose.
    """
    settings = make_settings(GATEWAY_RATE_LIMIT_RPM="1", GATEWAY_MAX_BODY_BYTES="1024")
    params = {"music_id": "mus_x", "provider": "musicgpt", "job_id": "mus_x", "token": "tok"}
    async with app_client(create_app(settings)) as client:
        schema = schemathesis.openapi.from_dict((await client.get("/docs/openapi.json")).json())
        if status == 429:
            assert (await client.get("/v1/models")).status_code == 200  # spends the minute's one
            body: dict[str, Any] | None = {"model": "musicgpt/v7", "prompt": "a lofi beat"}
        else:
            body = {"model": "musicgpt/v7", "prompt": "x" * 2048}
        if method == "GET":
            body = None
        response = await client.request(method, path.format(**params), json=body)
    assert response.status_code == status, response.text
    sent: dict[str, Any] = {
        "path_parameters": {k: v for k, v in params.items() if f"{{{k}}}" in path}
    }
    if body is not None:
        sent["body"] = body
    schema[path][method].Case(**sent).validate_response(response, checks=CHECKS)
