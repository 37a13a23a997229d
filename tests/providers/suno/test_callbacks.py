"""Simulator callbacks to ``callBackUrl``, received over HTTP and applied by
``provider.callback``: stages, duplicates, any order, errors, a lost create."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import providers.suno as suno
from providers.base import JobRef, Snapshot
from tests.providers.suno.helpers import Sim, request
from tests.support.native import CallbackReceiver, ref
from tests.support.servers import serve
from tests.support.waiting import eventually


class Receiver(CallbackReceiver):
    def __init__(self) -> None:
        super().__init__("suno")

    async def wait_for_json(self, count: int) -> list[dict[str, Any]]:
        return [json.loads(b) for b in await self.wait_for(count)]


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    r = Receiver()
    with serve(r.app) as base:
        r.base = base
        yield r


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.clear()
    return receiver_server


async def apply_all(
    provider: suno.SunoProvider, job: JobRef, bodies: list[dict[str, Any]]
) -> list[Snapshot]:
    out = []
    for body in bodies:
        snap = await provider.callback(job, {}, json.dumps(body).encode())
        job = JobRef(
            job_id=job.job_id,
            model=job.model,
            native_id=job.native_id or (snap.native_ids[0] if snap.native_ids else ""),
            native_ids=job.native_ids or snap.native_ids,
            format=job.format,
            last=snap,
        )
        out.append(snap)
    return out


async def test_three_stages_are_called_back_and_complete_the_job(
    provider: suno.SunoProvider, sim: Sim, receiver: Receiver
) -> None:
    req = request(callback=receiver.callback("mus_cb1", "tok-1"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for_json(3)
    assert receiver.bodies[0][0] == "/v1/callbacks/suno/mus_cb1/tok-1"
    assert [b["data"]["callbackType"] for b in bodies] == ["text", "first", "complete"]
    assert {b["data"]["task_id"] for b in bodies} == {sub.native_id}
    first = bodies[1]["data"]["data"]
    assert first[0]["stream_audio_url"] and not first[0]["audio_url"]  # snake_case
    snaps = await apply_all(provider, ref(sub, req, job_id="mus_cb1"), bodies)
    assert [s.status for s in snaps] == ["in_progress", "in_progress", "completed"]
    assert snaps[1].outputs[0].stream_audio_url and not snaps[1].outputs[0].audio_url
    assert all(o.audio_url for o in snaps[-1].outputs) and len(snaps[-1].outputs) == 2
    await eventually(lambda: sim.stats()["callbacks_sent"] >= 3, what="3 callbacks counted")
    assert sim.stats()["status_calls"] == 0  # no polling was needed


async def test_duplicated_and_reversed_callbacks_converge(
    provider: suno.SunoProvider, sim: Sim, receiver: Receiver
) -> None:
    sim.configure(callback_order="reverse", callback_duplicates=1)
    req = request(callback=receiver.callback("mus_cb2", "tok-2"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for_json(6)
    assert [b["data"]["callbackType"] for b in bodies][::2] == ["complete", "first", "text"]
    snaps = await apply_all(provider, ref(sub, req, job_id="mus_cb2"), bodies)
    assert {s.status for s in snaps} == {"completed"}
    assert len({tuple(o.audio_url for o in s.outputs) for s in snaps}) == 1


@pytest.mark.parametrize(
    ("prompt", "stages", "code", "word"),
    [
        ("failme please", ["text", "error"], "generation_failed", "error"),
        ("sensitiveme", ["error"], "generation_failed", "error"),
        ("createfailme", ["error"], "generation_failed", "error"),
    ],
)
async def test_error_callbacks_fail_the_job_with_the_native_reason(
    provider: suno.SunoProvider,
    sim: Sim,
    receiver: Receiver,
    prompt: str,
    stages: list[str],
    code: str,
    word: str,
) -> None:
    req = request(prompt=prompt, callback=receiver.callback("mus_cb3", "tok-3"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for_json(len(stages))
    assert [b["data"]["callbackType"] for b in bodies] == stages
    assert bodies[-1]["code"] == 501
    snap = (await apply_all(provider, ref(sub, req), bodies))[-1]
    assert snap.status == "failed" and snap.error is not None
    assert snap.error.code == code and snap.error.native_status == word
    assert snap.error.message == bodies[-1]["msg"]


async def test_a_lost_create_answer_is_reconciled_from_the_callback(
    provider: suno.SunoProvider, sim: Sim, receiver: Receiver
) -> None:
    req = request(callback=receiver.callback("mus_cb4", "tok-4"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for_json(3)
    lost = JobRef(
        job_id="mus_cb4", model=req.model, native_id="", native_ids=[], format="mp3",
        last=Snapshot(status="queued"),
    )  # fmt: skip
    first = await provider.callback(lost, {}, json.dumps(bodies[0]).encode())
    assert first.native_ids == [sub.native_id] and first.status == "in_progress"


async def test_foreign_or_unreadable_callbacks_are_value_errors(
    provider: suno.SunoProvider, sim: Sim
) -> None:
    req = request()
    sub = await provider.start(req)
    job = ref(sub, req)
    other = {"code": 200, "msg": "ok", "data": {"callbackType": "text", "task_id": "other"}}
    for raw in (b"not json", b"{}", json.dumps(other).encode()):
        with pytest.raises(ValueError):
            await provider.callback(job, {}, raw)


async def test_undeliverable_callbacks_turn_the_status_into_callback_exception(
    provider: suno.SunoProvider, sim: Sim, receiver: Receiver
) -> None:
    """The placeholder (or a gateway answering 500): sunoapi.org reports
    CALLBACK_EXCEPTION, and the job still completes once its audio exists."""
    receiver.fail = True
    sim.configure(callback_retries=0)
    req = request(callback=receiver.callback("mus_cb5", "tok-5"))
    sub = await provider.start(req)
    await receiver.wait_for_json(3)
    await eventually(lambda: sim.stats()["callbacks_failed"] >= 3, what="3 failures counted")
    snap = await provider.fetch(ref(sub, req))
    assert snap.native_status == "CALLBACK_EXCEPTION" and snap.status == "completed"
    assert all(o.audio_url for o in snap.outputs)
