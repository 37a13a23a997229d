"""ASGI apps that ``benchmarks/bench.py`` serves under granian beside the gateway.

* ``bare``: a bare Litestar endpoint on the gateway's job route that answers one constant
  job object (``BENCH_BARE_JOB``, the JSON of the gateway's own completed job, so both
  answers are the same bytes): the framework-and-server floor the gateway is measured
  against.
* ``static``: a plain static file server (Litestar's static files router) over
  ``BENCH_STATIC_DIR``, the floor the gateway's signed artefact route is measured against.
* ``elevenlabs``: the ElevenLabs Music simulator (key ``BENCH_ELEVENLABS_KEY``).
* ``musicgpt``, ``tempolor``: the provider simulators (callbacks off; timings are set over
  ``POST /__sim__/config``), each in its own process so that they neither share a GIL
  with the load generator nor with the gateway.

Usage::

    BENCH_BARE_JOB='{"id": ...}' python -m granian --interface asgi benchmarks.bench_apps:bare
"""

from __future__ import annotations

import os

import msgspec
from litestar import Litestar, get
from litestar.static_files import create_static_files_router

from gateway.api.schemas import MusicJob
from providers.elevenlabs.simulator import SimulatorConfig as ElevenLabsConfig
from providers.elevenlabs.simulator import create_simulator as elevenlabs_simulator
from providers.musicgpt.simulator import SimulatorConfig as MusicGPTConfig
from providers.musicgpt.simulator import create_simulator as musicgpt_simulator
from providers.tempolor.simulator import SimulatorConfig as TemPolorConfig
from providers.tempolor.simulator import create_simulator as tempolor_simulator

MUSICGPT_KEY = "bench-musicgpt-key-0001"
USEAPI_TOKEN = "user:4242-bench-token-0001"

_PLACEHOLDER = (
    b'{"id":"mus_0","object":"music","status":"completed","provider":"bare","model":"bare",'
    b'"nativeResponseId":null,"created_at":0,"updated_at":0,"progress":100,"output":[],'
    b'"usage":null,"error":null,"metadata":null}'
)
_JOB = msgspec.json.decode(
    os.environ.get("BENCH_BARE_JOB", "").encode() or _PLACEHOLDER, type=MusicJob
)


@get("/v1/music/generate/{music_id:str}")
async def constant_job(music_id: str) -> MusicJob:
    """The same job object for every id: no auth, no store, no logging."""
    return _JOB


bare = Litestar([constant_job])
static = Litestar(
    [
        create_static_files_router(
            path="/files", directories=[os.environ.get("BENCH_STATIC_DIR", ".")]
        )
    ]
)
ELEVENLABS_KEY = "bench-elevenlabs-key-0001"
elevenlabs = elevenlabs_simulator(ElevenLabsConfig(api_key=ELEVENLABS_KEY))
musicgpt = musicgpt_simulator(MusicGPTConfig(api_key=MUSICGPT_KEY, callbacks=False))
tempolor = tempolor_simulator(TemPolorConfig(api_token=USEAPI_TOKEN, callbacks=False))
