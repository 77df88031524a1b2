"""Dedup by message id per workspace, in the key-value store, safe across failed publishes.

A message id is claimed *before* its event is published (so two replicas cannot both
publish it) and the claim only counts once the publish succeeded:

1. `claim` sets every key `dedup:{workspace}:{message_id}` that is absent to this
   batch's token (`{unix ms}:{random}`), with the dedup window as TTL, in one round trip.
2. The events are published.
3. `commit` writes one key, `dedup-ok:{token}` — the batch's keys are now real
   duplicates for the window. `release` (after a failed publish) deletes the keys this
   batch set, so the client's retry is accepted, not reported as a duplicate.

A key held by another batch is a duplicate when that batch committed; still in flight
(younger than `in_flight`) the whole call is told to retry (ABORTED) rather than guess;
older and never committed (its replica died between claim and publish) it is taken
over, so a crash loses nothing. Under normal retries nothing is published twice and
nothing is lost; only a crash between publish and commit, followed by a retry more than
`in_flight` later, can publish an event twice — consumers are idempotent on message id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from mailwright.runtime.kv import KeyValueStore

IN_FLIGHT = timedelta(seconds=30)


class InFlight(Exception):
    """Another call is publishing one of these message ids right now; retry shortly."""

    def __init__(self, message_ids: Sequence[str]) -> None:
        super().__init__(f"{len(message_ids)} message ids are being ingested by another call")
        self.message_ids = tuple(message_ids)


@dataclass
class Claim:
    """The outcome of claiming a batch's message ids."""

    token: str
    window: timedelta
    fresh: list[bool]
    """Per message id, in order: True when this batch holds it and must publish it."""
    keys: list[str] = field(default_factory=list)
    """The keys this batch set (to release if the publish fails)."""


def dedup_key(workspace: str, message_id: str) -> str:
    return f"ingest:dedup:{workspace}:{message_id}"


def _commit_key(token: str) -> str:
    return f"ingest:dedup-ok:{token}"


class Dedup:
    def __init__(self, kv: KeyValueStore, in_flight: timedelta = IN_FLIGHT) -> None:
        self.kv = kv
        self.in_flight = in_flight

    async def claim(self, workspace: str, message_ids: Sequence[str], window: timedelta) -> Claim:
        """Claim the message ids; raise `InFlight` (having released its own claims) when
        another call is publishing one of them."""
        token = f"{int(time.time() * 1000)}:{uuid.uuid4().hex[:16]}"
        claim = Claim(token, window, [False] * len(message_ids))
        if not message_ids:
            return claim
        keys = [dedup_key(workspace, m) for m in message_ids]
        value = token.encode()
        set_now = await self.kv.set_many_if_absent(keys, value, ttl=window)
        held: dict[int, str] = {}
        for index, (key, was_set) in enumerate(zip(keys, set_now, strict=True)):
            if was_set:
                claim.fresh[index] = True
                claim.keys.append(key)
            else:
                held[index] = key
        if held:
            await self._settle(claim, held, value, message_ids)
        return claim

    async def _settle(
        self, claim: Claim, held: dict[int, str], mine: bytes, message_ids: Sequence[str]
    ) -> None:
        """Decide, for keys this batch could not set, duplicate, in flight or abandoned."""
        indexes = list(held)
        owners = await self.kv.get_many([held[i] for i in indexes])
        others = {o for o in owners if o is not None and o != mine}
        committed: set[bytes] = set()
        if others:
            ordered = sorted(others)
            answers = await self.kv.get_many([_commit_key(o.decode()) for o in ordered])
            committed = {o for o, ok in zip(ordered, answers, strict=True) if ok is not None}
        now_ms = time.time() * 1000
        busy: list[str] = []
        for index, owner in zip(indexes, owners, strict=True):
            key = held[index]
            if owner == mine or owner in committed:
                continue  # a repeat within this batch, or a real duplicate
            if owner is None or now_ms - _token_time(owner) > self.in_flight.total_seconds() * 1000:
                # Expired between the two calls, or abandoned by a crashed call: take over.
                await self.kv.set(key, mine, ttl=claim.window)
                claim.fresh[index] = True
                claim.keys.append(key)
            else:
                busy.append(message_ids[index])
        if busy:
            await self.release(claim)
            raise InFlight(busy)

    async def commit(self, claim: Claim) -> None:
        """The batch is on the bus: its keys are duplicates from now on."""
        if claim.keys:
            await self.kv.set(_commit_key(claim.token), b"1", ttl=claim.window)

    async def release(self, claim: Claim) -> None:
        """The batch was not published: forget the keys it set."""
        if claim.keys:
            await self.kv.delete(*claim.keys)
            claim.keys.clear()


def _token_time(token: bytes) -> float:
    try:
        return float(token.split(b":", 1)[0])
    except ValueError:
        return 0.0
