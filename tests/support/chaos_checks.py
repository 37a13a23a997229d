"""What a chaos test checks once everything has settled, and the figures it prints.

Usage::

    problems = webhook_problems(load.orders, jobs, recorder)   # [] when all delivered
    problems = audio_problems(load, jobs, tmp_path)             # [] when all serve audio
    numbers = figures(load, jobs, doors, doomed, died, cut, redis_down)
"""

from __future__ import annotations

import collections
import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

from gateway.infra.audio import probe
from tests.support.chaos_load import FINAL, Load, Order
from tests.support.door import Door
from tests.support.receiver import Recorder

__all__ = ["audio_problems", "figures", "unhandled_errors", "webhook_delays", "webhook_problems"]

Jobs = dict[str, dict[str, Any] | None]
_RANK = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2}


def webhook_problems(orders: list[Order], jobs: Jobs, recorder: Recorder) -> list[str]:
    """Every delivery's ``webhook-id`` is ``{job id}.{status}`` of the job it carries (one
    id per change, the same on every retry); every accepted job's final status, and any
    other status a client saw after its create (but ``queued``), was delivered."""
    problems, delivered = [], set()
    with recorder.lock:
        calls = list(recorder.calls)
    for headers, body in calls:
        data = json.loads(body)  # the job object
        wid = headers.get("webhook-id")
        if wid != f"{data['id']}.{data['status']}":
            problems.append(f"webhook-id {wid} carries {data['id']} {data['status']}")
        if not headers.get("webhook-signature", "").startswith("v1,"):
            problems.append(f"{wid}: unsigned")
        delivered.add(wid)
    for order in orders:
        job = jobs.get(order.job_id or "")
        if job is None:
            continue
        wanted = {s for s in order.statuses[1:] if s != "queued"} | {job["status"]}
        problems += [f"{job['id']}.{s} never delivered" for s in wanted if s != "queued"
                     and f"{job['id']}.{s}" not in delivered]  # fmt: skip
    return problems


def webhook_delays(orders: list[Order], jobs: Jobs, recorder: Recorder) -> list[float]:
    """Seconds from each job's final change (its ``updated_at``) to the first delivery of
    its final webhook (a claim held by a process that died comes back after the
    outbox's claim time)."""
    first: dict[str, float] = {}
    with recorder.lock:
        for (headers, _), at in zip(recorder.calls, recorder.times, strict=True):
            first.setdefault(headers.get("webhook-id", ""), at)
    delays = []
    for order in orders:
        job = jobs.get(order.job_id or "")
        at = first.get(f"{job['id']}.{job['status']}") if job is not None else None
        if job is not None and at is not None:
            delays.append(max(0.0, at - job["updated_at"]))
    return delays


#: A redis-py 8.1.0 race: a connection torn down (a node restarting) while a command is
#: written to it raises AttributeError/TypeError instead of ConnectionError, so the
#: gateway answers 500 instead of 503 (redis/redis-py#4287; fixed by #4288, unreleased).
_REDIS_PY_WRITER_RACE = re.compile(r"redis/asyncio/connection\.py.*(writelines|_write_ready)", re.S)


def unhandled_errors(logs: list[Path]) -> dict[str, Any]:
    """The gateways' ``unhandled_error`` log lines (each a 500): the known redis-py race,
    and any other (with the first few)."""
    known, other = 0, []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if '"unhandled_error"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            trace = str(event.get("exception", ""))
            if _REDIS_PY_WRITER_RACE.search(trace):
                known += 1
            else:
                other.append(f"{event.get('error')}: {trace[-400:]}")
    return {"redis_py_writer_race": known, "other": len(other), "other_samples": other[:3]}


def audio_problems(load: Load, jobs: Jobs, tmp: Path) -> tuple[int, list[str]]:
    """Every completed job, read afresh: a top-level ``audio_url``, and each output's
    ``audio_url`` answers 200 with an audio type and bytes that decode to sound.
    Answers how many outputs served audio, and the problems."""
    problems, served = [], 0
    folder = tmp / "audio"
    folder.mkdir(exist_ok=True)
    for job_id, last in jobs.items():
        if last is None or last["status"] != "completed":
            continue
        job = load.get(job_id)
        assert job is not None
        if not job["output"] or not job.get("audio_url"):
            problems.append(f"{job_id}: completed without audio_url")
        for out in job["output"]:
            url = out.get("audio_url")
            resp = load.http.get(url, follow_redirects=True) if url else None
            kind = resp.headers.get("content-type", "") if resp is not None else ""
            if resp is None or resp.status_code != 200 or not kind.startswith("audio/"):
                status = resp.status_code if resp is not None else None
                problems.append(f"{job_id}[{out['index']}] {url}: {status} {kind}")
                continue
            path = folder / f"{job_id}-{out['index']}"
            path.write_bytes(resp.content)
            try:
                seconds = probe(path)[2]
            except Exception as exc:  # undecodable: reported
                problems.append(f"{job_id}[{out['index']}] {kind}: {exc}")
                continue
            if seconds <= 0:
                problems.append(f"{job_id}[{out['index']}]: no sound")
            else:
                served += 1
    return served, problems


def _regressed(order: Order) -> bool:
    ranks = [_RANK[s] for s in order.statuses]
    return any(b < a for a, b in itertools.pairwise(ranks))


def figures(
    load: Load,
    jobs: Jobs,
    doors: dict[str, tuple[str, Door]],
    doomed: Order,
    died: float,
    cut: list[str],
    redis_down: float,
) -> dict[str, Any]:
    """The run in numbers (the test asserts on them; a person reads them)."""
    orders = list(load.orders)
    accepted = [o for o in orders if o.accepted]
    last = {o.job_id: jobs.get(o.job_id or "") for o in accepted}
    final = [o for o in accepted if (j := last[o.job_id]) is not None and j["status"] in FINAL]
    failed = [j for o in final if (j := last[o.job_id]) is not None and j["status"] == "failed"]
    refused = collections.Counter(
        f"{o.provider} {o.answer} {o.error}" for o in orders if not o.accepted
    )
    by_marker = {o.marker: o for o in orders}
    cut_wrong = []
    for mark in cut:
        order = by_marker.get(mark)
        job = last.get(order.job_id) if order is not None and order.accepted else None
        if job is not None and (job["status"], (job.get("error") or {}).get("code")) != (
            "failed",
            "upstream_outcome_unknown",
        ):
            cut_wrong.append(mark)
    per_provider: dict[str, dict[str, int]] = {}
    codes: dict[str, dict[str, int]] = {}
    for o in accepted:
        row = per_provider.setdefault(o.provider, collections.Counter())
        row["accepted"] += 1
        job = last[o.job_id]
        row[job["status"] if job is not None else "lost"] += 1
        if job is not None and job["status"] == "failed":
            codes.setdefault(o.provider, collections.Counter())[job["error"]["code"]] += 1
    doubled = {name: door.doubled() for name, (_, door) in doors.items()}
    sends = {name: sum(door.sends().values()) for name, (_, door) in doors.items()}
    sent = {m for _, door in doors.values() for m in door.sends()}
    unsent_unknown = [  # "outcome unknown" although nothing ever reached the provider
        o.marker
        for o in accepted
        if (j := last[o.job_id]) is not None
        and (j.get("error") or {}).get("code") == "upstream_outcome_unknown"
        and o.marker not in sent
    ]
    return {
        "accepted": len(accepted),
        "final": len(final),
        "lost": sum(j is None for j in last.values()),
        "doubled": sum(len(d) for d in doubled.values()),
        "stuck": len(accepted) - len(final) - sum(j is None for j in last.values()),
        "longest_409_window": round(max((o.window_409 for o in orders), default=0.0), 2),
        "dead_key_409_after_death": round((doomed.after_409 or time.monotonic()) - died, 2),
        "keys_with_409": sum(o.first_409 is not None for o in orders),
        "creates_tried": len(orders),
        "refused": dict(refused),
        "internal_errors": load.internal_errors,
        "failed_without_reason": sum(
            not (j.get("error") or {}).get("code") or not (j.get("error") or {}).get("message")
            for j in failed
        ),
        "per_provider": {k: dict(v) for k, v in sorted(per_provider.items())},
        "failure_codes": {k: dict(v) for k, v in sorted(codes.items())},
        "unknown_outcome_never_sent": len(unsent_unknown),
        "store_unavailable_answers": load.store_unavailable,
        "upstream_creates": sends,
        "doubled_markers": {k: v for k, v in doubled.items() if v},
        "cut_generations": len(cut),
        "cut_generations_not_unknown": len(cut_wrong),
        "status_regressions_seen": sum(_regressed(o) for o in accepted),
        "redis_down_seconds": round(redis_down, 2),
    }
