"""Simulator callbacks to ``replyUrl``, received over HTTP and applied by ``provider.callback``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import providers.tempolor as tempolor
from providers.base import JobRef, Snapshot
from tests.providers.tempolor.helpers import Sim, request
from tests.support.native import CallbackReceiver, ref
from tests.support.servers import serve
from tests.support.waiting import eventually

# The simulator reads a callback's status when it sends it, at the start, the middle and
# the end of the generation: where a test checks which callback says what, a generation
# long enough that a sender held up on a loaded machine still sends the middle one mid-way.
GENERATE = 2.0


class Receiver(CallbackReceiver):
    def __init__(self) -> None:
        super().__init__("tempolor")


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
    provider: tempolor.TemPolorProvider, job: JobRef, bodies: list[bytes]
) -> list[Snapshot]:
    out = []
    for body in bodies:
        snap = await provider.callback(job, {}, body)
        job = JobRef(
            job_id=job.job_id,
            model=job.model,
            native_id=job.native_id,
            native_ids=job.native_ids,
            format=job.format,
            last=snap,
        )
        out.append(snap)
    return out


async def test_callbacks_carry_reply_ref_and_complete_the_job(
    provider: tempolor.TemPolorProvider, sim: Sim, receiver: Receiver
) -> None:
    sim.configure(generate_seconds=GENERATE)
    req = request(callback=receiver.callback("mus_cb1", "tok-secret-1"))
    sub = await provider.start(req)
    assert sim.creates()[0]["body"]["replyUrl"] == req.callback.url  # type: ignore[union-attr]
    bodies = await receiver.wait_for(3)
    assert receiver.bodies[0][0] == "/v1/callbacks/tempolor/mus_cb1/tok-secret-1"
    decoded = [json.loads(b) for b in bodies]
    assert {d["replyRef"] for d in decoded} == {"mus_cb1:tok-secret-1"}
    assert {d["job_id"] for d in decoded} == {sub.native_id}
    assert [d["status"] for d in decoded] == [0, 0, 30]
    assert decoded[0]["progress"] < decoded[1]["progress"] < decoded[2]["progress"] == 100

    job = ref(sub, req, job_id="mus_cb1")
    snaps = await apply_all(provider, job, bodies)
    assert [s.status for s in snaps] == ["in_progress", "in_progress", "completed"]
    assert snaps[-1].outputs[0].audio_url  # the intake fetched the URL at once
    # The simulator counts a callback once the receiver's answer is back.
    await eventually(lambda: sim.stats()["callbacks_sent"] >= 3, what="3 callbacks counted")
    assert sim.stats()["callbacks_sent"] == 3
    assert sim.stats()["status_calls"] == 0  # no polling was needed


async def test_callbacks_in_any_order_and_duplicated_never_regress(
    provider: tempolor.TemPolorProvider, sim: Sim, receiver: Receiver
) -> None:
    req = request(callback=receiver.callback("mus_cb2", "tok-2"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for(3)
    job = ref(sub, req, job_id="mus_cb2")
    snaps = await apply_all(provider, job, [bodies[2], bodies[0], bodies[2], bodies[1]])
    assert [s.status for s in snaps] == ["completed"] * 4
    assert len({s.outputs[0].audio_url for s in snaps}) == 1  # not re-fetched each time
    assert sim.stats()["download_calls"] == 1


async def test_completion_callback_during_the_404_window_waits_for_a_fetch(
    provider: tempolor.TemPolorProvider, sim: Sim, receiver: Receiver
) -> None:
    sim.configure(download_404_seconds=2.0)  # the callback is applied well within it
    req = request(callback=receiver.callback("mus_cb3", "tok-3"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for(3)
    (snap,) = await apply_all(provider, ref(sub, req, job_id="mus_cb3"), bodies[2:])
    assert snap.status == "in_progress" and snap.native_status == "COMPLETED"

    async def fetched_completed() -> Snapshot | None:  # a fetch after the 404 window
        done = await provider.fetch(ref(sub, req, snap, job_id="mus_cb3"))
        return done if done.status == "completed" else None

    done = await eventually(fetched_completed, what="a fetch past the 404 window")
    assert done.status == "completed" and done.outputs[0].audio_url


async def test_multi_job_callbacks(
    provider: tempolor.TemPolorProvider, sim: Sim, receiver: Receiver
) -> None:
    sim.configure(jobs_per_create=2, generate_seconds=GENERATE)
    req = request("tempolor/i3", callback=receiver.callback("mus_cb4", "tok-4"))
    sub = await provider.start(req)
    bodies = await receiver.wait_for(6)
    finals = [b for b in bodies if json.loads(b)["status"] == 30]
    job = ref(sub, req, job_id="mus_cb4")
    first, both = await apply_all(provider, job, finals)
    assert first.status == "in_progress"  # one of two native jobs done
    assert both.status == "completed" and len(both.outputs) == 2


async def test_unreadable_or_foreign_callbacks_are_value_errors(
    provider: tempolor.TemPolorProvider, sim: Sim
) -> None:
    req = request()
    sub = await provider.start(req)
    job = ref(sub, req, job_id="mus_cb5")
    with pytest.raises(ValueError):
        await provider.callback(job, {}, b"not json")
    with pytest.raises(ValueError):
        await provider.callback(job, {}, b'{"job_id": "user:1-tempolor:x-job:other", "status": 30}')
    with pytest.raises(ValueError):
        await provider.callback(
            job, {}, json.dumps({"job_id": sub.native_id, "replyRef": "mus_other:tok"}).encode()
        )
    # A body without job_id is accepted for a single-native-job gateway job.
    snap = await provider.callback(job, {}, b'{"status": 0, "progress": 12}')
    assert snap.status == "in_progress" and snap.progress == 12


async def test_callback_delivery_failures_are_counted_and_retried(
    provider: tempolor.TemPolorProvider, sim: Sim, receiver: Receiver
) -> None:
    receiver.fail = True
    sim.configure(callback_retries=1)
    await provider.start(request(callback=receiver.callback("mus_cb6", "tok-6")))
    await receiver.wait_for(6)  # 3 callbacks x (1 try + 1 retry)
    await eventually(lambda: sim.stats()["callbacks_failed"] >= 3, what="3 failures counted")
    assert sim.stats()["callbacks_sent"] == 0


async def test_no_callback_without_reply_url(
    provider: tempolor.TemPolorProvider, sim: Sim, receiver: Receiver
) -> None:
    req = request()
    sub = await provider.start(req)
    assert "replyUrl" not in sim.creates()[0]["body"]
    # A barrier instead of a pause: a job with a reply URL, created after this one on the
    # same timeline, has sent all its callbacks; this one would have sent its own first.
    await provider.start(request(callback=receiver.callback("mus_cb7", "tok-7")))
    await receiver.wait_for(3)
    await eventually(lambda: sim.stats()["jobs"] == {"completed": 2}, what="both jobs done")
    await eventually(lambda: sim.stats()["callbacks_sent"] >= 3, what="3 callbacks counted")
    assert {path for path, _ in receiver.bodies} == {"/v1/callbacks/tempolor/mus_cb7/tok-7"}
    assert len(receiver.bodies) == 3 and sim.stats()["callbacks_sent"] == 3
    assert sub.snapshot.status == "queued"
