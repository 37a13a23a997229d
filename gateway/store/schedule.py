"""The refresh schedule (the sorted set ``due``: in-flight job id -> when the background
refresher looks at it again), and how a job's writes that span Redis Cluster slots are
ordered. ``Schedule`` is one part of ``Store`` (``store.schedule``).

A job's record, the schedule ``due`` and its owner's in-flight slots live in three slots
of a cluster, so a create and a job's updates are several steps. They run in order
through ``in_order`` (one pipelined round trip on one server, which runs a pipeline in
order; one by one on a cluster), and that order makes a process dying between two of
them leave nothing that stays wrong:

* ``open_job``: the job goes on the schedule, then its record is written, then its owner
  admits it (slot, Idempotency-Key; one script). Died after the first step: the
  refresher finds no record and drops the id. After the second: a job nobody was told
  of; the refresher fails it after ``GATEWAY_UNKNOWN_OUTCOME_SECONDS`` (it holds no slot).
  Not admitted: the record goes, then its schedule.
* ``update_job`` / ``put_job``: the record is written (compare-and-set), then the
  sorted-set changes ``follow`` names, in its order: a final job frees its slot and
  then leaves the schedule, so while it is still scheduled the refresher finds it final
  and does both (``JobCore.release``). A job still in flight is only due again: that
  change goes with the compare-and-set, harmless if the write loses (the job was on the
  schedule already; one final meanwhile is released by the refresher). A failed
  sorted-set step is logged and never undoes the record: the schedule repairs it.
* ``begin_refresh``: the lease and a fresh read (one script, the job's slot), then the
  provider's budget (its own slot), only when the lease was taken: a process that dies
  in between leaves a lease that expires and nothing spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import structlog
from redis.exceptions import RedisError

from gateway.store.redis_pool import RedisClient, in_order
from gateway.store.scripts import CLAIM_DUE, ZOp

log = structlog.get_logger("gateway.store")


class Claimed(NamedTuple):
    """What ``claim_due`` took: the job ids, and when the next job left on the schedule
    is due (epoch seconds; None when none is)."""

    ids: list[str]
    next_due: float | None


def zop_commands(ops: Sequence[ZOp]) -> list[tuple[str, ...]]:
    """The Redis commands of sorted-set changes (for ``in_order``)."""
    return [
        ("ZREM", key, member) if score is None else ("ZADD", key, repr(float(score)), member)
        for key, member, score in ops
    ]


class Schedule:
    """The sorted set ``due_key`` and ordered sorted-set changes."""

    def __init__(self, redis: RedisClient, due_key: str) -> None:
        self.redis = redis
        self.due_key = due_key
        self._claim_due = redis.register_script(CLAIM_DUE)

    async def apply_zops(self, ops: Sequence[ZOp]) -> bool:
        """Apply sorted-set changes in order (``in_order``: one round trip on one server).
        A failure is logged; the record they follow stands and the schedule repairs
        them (see above). False then."""
        try:
            replies = await in_order(self.redis, zop_commands(ops))
        except RedisError as exc:
            replies = [exc]
        failed = next((r for r in replies if isinstance(r, Exception)), None)
        if failed is not None:
            log.warning("sorted_set_change_failed", error=type(failed).__name__)
            return False
        return True

    async def add(self, job_id: str, at: float) -> None:
        """The background refresher should look at ``job_id`` at ``at`` (epoch seconds)."""
        await self.redis.zadd(self.due_key, {job_id: at})

    async def remove(self, job_id: str) -> None:
        await self.redis.zrem(self.due_key, job_id)

    async def claim_due(self, limit: int, claim_seconds: float, now: float) -> Claimed:
        """Take up to ``limit`` due job ids; each is pushed ``claim_seconds`` ahead so no
        other process takes it meanwhile (and it comes back if this one dies)."""
        ids, first = await self._claim_due(keys=[self.due_key], args=[now, limit, claim_seconds])
        return Claimed(
            [i.decode() if isinstance(i, bytes) else i for i in ids],
            None if first is None else float(first),
        )
