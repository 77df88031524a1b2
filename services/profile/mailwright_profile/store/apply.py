"""Applying a batch of events in one transaction.

For each event, in order: skip it if its id is already in the history (the bus delivers
at least once); decide with `identity.plan_links` which profile it belongs to, which
profiles it merges and which merges the policy refuses; fold it into that profile's
projections. Then write everything with a handful of bulk statements: the history rows,
new identities and profiles, the profiles' new projections, merges and refusals, and one
`profiles.changed` message per changed profile into the outbox — in the same
transaction, so a change is announced if and only if it was stored.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from mailwright.common.v1 import event_pb2
from mailwright_profile.events import IncomingEvent
from mailwright_profile.identity import (
    Identity,
    IdentityView,
    LinkPlan,
    MergePolicy,
    plan_links,
    strongest,
)
from mailwright_profile.profile_state import Change, ProfileState
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.bulk import Bulk, Send, pipelined, pipelines
from mailwright_profile.store.cache import StateCache
from mailwright_profile.store.outbox import Outgoing
from mailwright_profile.store.writes import HISTORY, history_rows, write_batch
from mailwright_profile.views import MergeReason, MergeView

log = logging.getLogger(__name__)

HISTORY_CHUNK = 2048
"""History rows sent at a time while a batch is applied (`BatchApply.stream_history`)."""

_MERGE_REASONS: dict[int, MergeReason] = {
    event_pb2.EVENT_TYPE_IDENTIFY: MergeReason.IDENTIFY,
    event_pb2.EVENT_TYPE_ALIAS: MergeReason.ALIAS,
}


class ChangeEncoder(Protocol):
    """Builds the `profiles.changed` payload of one profile's change."""

    def __call__(
        self,
        state: ProfileState,
        change: Change,
        computed: Mapping[str, Any],
        removed_computed: Sequence[str],
        now: datetime,
        unmerged_from: str = "",
    ) -> bytes: ...


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    dropped: int = 0
    outgoing: list[Outgoing] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)  # message id → profile
    merges: list[MergeView] = field(default_factory=list)
    trait_keys: set[tuple[str, str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class MergeDetails:
    """Why a merge happens, for its record."""

    reason: MergeReason
    shared: Sequence[Identity] = ()
    evidence: Sequence[Mapping[str, Any]] = ()
    score: float = 1.0
    message_id: str = ""
    actor: str = ""


class _View(IdentityView):
    """What `plan_links` asks, answered from the batch's memory and the database."""

    def __init__(self, batch: BatchApply, workspace: str, policy: MergePolicy) -> None:
        self.batch = batch
        self.workspace = workspace
        self.policy = policy

    def owner(self, identity: Identity) -> tuple[str, str] | None:
        found = self.batch.owners.get((self.workspace, identity))
        if found is None:
            return None
        return self.batch.root(self.workspace, found[0]), found[1]

    def unique_values(self, profile: str) -> Mapping[str, Iterable[str]]:
        return self.batch.unique_of(self.workspace, profile, self.policy)

    def separated(self, first: str, second: str) -> bool:
        # Most workspaces never had an unmerge: then no pair is separated, and the three
        # queries of `r.separated` are saved for each merge planned.
        return self.batch.any_unmerged(self.workspace) and r.separated(
            self.batch.conn, self.workspace, first, second
        )

    def older(self, first: str, second: str) -> tuple[str, str]:
        return self.batch.older(self.workspace, first, second)


class BatchApply:
    """One transaction's worth of events (see the module docstring)."""

    def __init__(
        self,
        conn: sa.Connection,
        now: datetime,
        policy_of: Callable[[sa.Connection, str], MergePolicy],
        encode: ChangeEncoder,
        known_trait_keys: set[tuple[str, str, str]],
        cache: StateCache | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        self._conn = conn
        self._pipeline = ExitStack()  # open while statements go out (`send`)
        self._send: Send | None = None
        self.pipelining = pipelines(conn)  # whether `send` returns before the database
        self.streamed = 0  # history rows sent so far (`stream_history`)
        self.meanwhile = meanwhile  # called while the database stores the batch's rows
        self.cache = cache
        self.now = now
        self.policy_of = policy_of
        self.encode = encode
        self.known_trait_keys = known_trait_keys
        self.owners: dict[tuple[str, Identity], tuple[str, str]] = {}
        self.states: dict[tuple[str, str], ProfileState] = {}
        self.changes: dict[tuple[str, str], Change] = {}
        self.absorbed: dict[tuple[str, str], str] = {}  # merged away in this batch → kept
        self.unique: dict[tuple[str, str], dict[str, set[str]]] = {}
        # history and identity rows, as `writes.write_batch` takes them (plain tuples)
        self.event_rows: list[tuple[Any, ...]] = []
        self.identity_rows: list[tuple[Any, ...]] = []
        self.merge_rows: list[dict[str, Any]] = []
        self.refusal_rows: list[dict[str, Any]] = []
        self.conflicts: list[tuple[str, str, str, str, str]] = []
        self.hints: dict[tuple[str, str], str] = {}
        self.erased: set[tuple[str, str]] = set()
        self.policies: dict[str, MergePolicy] = {}
        self.unmerged: dict[str, bool] = {}  # by workspace: `r.any_unmerged`, read once
        self.result = BatchResult()

    # -- the connection ----------------------------------------------------------------

    @property
    def conn(self) -> sa.Connection:
        """The batch's connection; using it ends the pipeline (`end_pipeline`), since
        pipeline mode defers the results that SQLAlchemy reads at once."""
        self.end_pipeline()
        return self._conn

    def end_pipeline(self) -> None:
        """Wait for the statements sent so far: their outcome, an error included, comes
        here."""
        if self._send is not None:
            self._send = None
            self._pipeline.close()

    def send(self, bulk: Bulk, rows: Sequence[Sequence[Any]]) -> None:
        """Send a bulk statement in the batch's pipeline (`bulk.pipelined`), opened here
        when it is not."""
        if self._send is None:
            self._send = self._pipeline.enter_context(pipelined(self._conn))
        self._send(bulk, rows)

    def stream_history(self) -> None:
        """Send the history rows made since the last call, each with its profile as it
        stands now (`write_batch` moves those of profiles merged away later)."""
        rows = history_rows(self, self.event_rows[self.streamed :])
        if rows:
            self.send(HISTORY, rows)
            self.streamed = len(self.event_rows)

    # -- state of the batch ----------------------------------------------------------

    def root(self, workspace: str, profile: str) -> str:
        while (workspace, profile) in self.absorbed:
            profile = self.absorbed[(workspace, profile)]
        return profile

    def any_unmerged(self, workspace: str) -> bool:
        """Whether the workspace had an unmerge, read once per batch (an unmerge is a
        transaction of its own, never part of a batch)."""
        found = self.unmerged.get(workspace)
        if found is None:
            found = self.unmerged[workspace] = r.any_unmerged(self.conn, workspace)
        return found

    def state(self, workspace: str, profile: str) -> ProfileState:
        key = (workspace, profile)
        if key not in self.states:
            self.states.update(
                {(workspace, p): s for p, s in self.load_states(workspace, [profile]).items()}
            )
        return self.states[key]

    def load_states(self, workspace: str, profiles: Iterable[str]) -> dict[str, ProfileState]:
        """Profiles' states, rows locked: kept ones from the cache when their version is
        still the stored one, the others read."""
        if self.cache is None:
            return r.load_states(self.conn, workspace, profiles)
        found: dict[str, ProfileState] = {}
        missing: list[str] = []
        for profile, (version, live) in r.lock_versions(self.conn, workspace, profiles).items():
            kept = self.cache.take(workspace, profile, version) if live else None
            if kept is None:
                missing.append(profile)
            else:
                found[profile] = kept
        if missing:
            found.update(r.load_states(self.conn, workspace, missing))
        return found

    def committed(self) -> list[ProfileState]:
        """The live profiles' states as this batch stored them (once it committed)."""
        kept = []
        for key, state in self.states.items():
            if key in self.absorbed:
                continue
            state.new = False  # stored now
            state.traits.dirty = False
            kept.append(state)
        return kept

    def older(self, workspace: str, first: str, second: str) -> tuple[str, str]:
        """(kept, absorbed): a stored profile before one made in this batch, then the one
        created first."""
        a, b = self.state(workspace, first), self.state(workspace, second)
        if (a.new, a.created_at, a.profile_id) <= (b.new, b.created_at, b.profile_id):
            return first, second
        return second, first

    def change(self, workspace: str, profile: str) -> Change:
        held = self.changes.get((workspace, profile))
        if held is None:
            held = self.changes[(workspace, profile)] = Change()
        return held

    def unique_of(self, workspace: str, profile: str, policy: MergePolicy) -> dict[str, set[str]]:
        key = (workspace, profile)
        if key not in self.unique:
            if self.state(workspace, profile).new:
                self.unique[key] = {}
            else:
                self.unique[key] = r.unique_values(
                    self.conn, workspace, profile, policy.unique_identity_types
                )
        return self.unique[key]

    # -- the batch -------------------------------------------------------------------

    def run(self, incoming: Sequence[IncomingEvent]) -> BatchResult:
        """Apply the events in order and write everything. On PostgreSQL the history
        goes out every `HISTORY_CHUNK` events, so that the server stores it while the next
        events are applied here (an error of it fails the batch when the pipeline ends,
        at the latest once everything is written). SQLite writes it all at the end: its
        work is this thread's either way, and interleaved with the events it was slower
        (5 to 10 % of the consumer)."""
        chunk = HISTORY_CHUNK if self.pipelining else len(incoming) + 1
        with self._pipeline:
            for event in self.prepare(incoming):
                self.apply_one(event)
                if len(self.event_rows) - self.streamed >= chunk:
                    self.stream_history()
            result = self.finish()
            self.end_pipeline()
        return result

    def prepare(self, incoming: Sequence[IncomingEvent]) -> list[IncomingEvent]:
        """Drop the events already applied; load, in bulk, what the others need."""
        with r.custom_plans(self.conn):
            fresh = self._new_events(incoming)
            self._load_owners(fresh)
            self.hints.update(self._load_hints(fresh))
            self._load_hinted_states()
            self._load_erased(fresh)
        return fresh

    def _load_hinted_states(self) -> None:
        """The states of the live profiles events are addressed to, all at once."""
        wanted: dict[str, set[str]] = {}
        for (ws, _), root in self.hints.items():
            if root and (ws, root) not in self.states:
                wanted.setdefault(ws, set()).add(root)
        for ws, roots in wanted.items():
            for profile, state in self.load_states(ws, roots).items():
                self.states[(ws, profile)] = state

    def _load_erased(self, fresh: Sequence[IncomingEvent]) -> None:
        """Which of these events belonged to a profile erased since (late redeliveries)."""
        digests: dict[str, dict[str, str]] = {}
        erased = t.erased_events.c
        for ws in sorted({event.workspace for event in fresh}):
            # Erasures are rare: a workspace that has none needs no hashing nor lookups.
            query = sa.select(erased.message_hash).where(erased.workspace == ws).limit(1)
            if self.conn.execute(query).first() is not None:
                digests[ws] = {}
        for event in fresh:
            if event.workspace in digests:
                digest = hashlib.sha256(event.message_id.encode()).hexdigest()
                digests[event.workspace][digest] = event.message_id
        for ws, wanted in digests.items():
            query = sa.select(t.erased_events.c.message_hash).where(
                t.erased_events.c.workspace == ws
            )
            column = [t.erased_events.c.message_hash]
            for statement in r.keyed_selects(self.conn, query, column, [(d,) for d in wanted]):
                rows = self.conn.execute(statement)
                self.erased.update((ws, wanted[row.message_hash]) for row in rows)

    def policy(self, workspace: str) -> MergePolicy:
        if workspace not in self.policies:
            self.policies[workspace] = self.policy_of(self.conn, workspace)
        return self.policies[workspace]

    def finish(self) -> BatchResult:
        write_batch(self)
        return self.result

    def _new_events(self, incoming: Sequence[IncomingEvent]) -> list[IncomingEvent]:
        by_workspace: dict[str, list[str]] = {}
        for event in incoming:
            by_workspace.setdefault(event.workspace, []).append(event.message_id)
        seen: set[tuple[str, str]] = set()
        e = t.events.c
        for ws, ids in by_workspace.items():
            # The primary key first, which its index answers alone (asking for the profile
            # at once lets SQLite prefer an index that scans the whole workspace); then the
            # profiles of the (rare) events already held, by their whole primary key.
            query = sa.select(e.message_id, e.occurred_at).where(e.workspace == ws)
            held: list[tuple[str, Any]] = []
            for statement in r.keyed_selects(self.conn, query, [e.message_id], [(i,) for i in ids]):
                held += [(row.message_id, row.occurred_at) for row in self.conn.execute(statement)]
            query = sa.select(e.message_id, e.profile_id).where(e.workspace == ws)
            for statement in r.keyed_selects(self.conn, query, [e.message_id, e.occurred_at], held):
                for row in self.conn.execute(statement):
                    seen.add((ws, row.message_id))
                    self.result.profiles[row.message_id] = row.profile_id
        fresh = []
        for event in incoming:
            key = (event.workspace, event.message_id)
            if key in seen:
                self.result.duplicates += 1
                continue
            seen.add(key)
            fresh.append(event)
        return fresh

    def _lookups(self, event: IncomingEvent) -> list[Identity]:
        found = list(event.identities)
        if event.type == event_pb2.EVENT_TYPE_ALIAS and event.previous_id:
            found.append(Identity("user_id", event.previous_id.strip()))
        return found

    def _load_owners(self, fresh: Sequence[IncomingEvent]) -> None:
        wanted: dict[str, set[Identity]] = {}
        for event in fresh:
            wanted.setdefault(event.workspace, set()).update(self._lookups(event))
        owners: dict[str, set[str]] = {}
        columns = [t.identities.c.type, t.identities.c.value]
        for ws, identities in wanted.items():
            query = sa.select(
                t.identities.c.type,
                t.identities.c.value,
                t.identities.c.profile_id,
                t.identities.c.home_id,
            ).where(t.identities.c.workspace == ws)
            keys = [(i.type, i.value) for i in identities]
            for statement in r.keyed_selects(self.conn, query, columns, keys):
                for row in self.conn.execute(statement):
                    self.owners[(ws, Identity(row.type, row.value))] = (row.profile_id, row.home_id)
                    owners.setdefault(ws, set()).add(row.profile_id)
        for ws, profiles in owners.items():
            for profile, state in self.load_states(ws, profiles).items():
                self.states[(ws, profile)] = state
            kinds = self.policy(ws).unique_identity_types
            held = r.unique_values_of(self.conn, ws, sorted(profiles), kinds)
            for profile in profiles:
                self.unique.setdefault((ws, profile), held.get(profile, {}))

    def _load_hints(self, fresh: Sequence[IncomingEvent]) -> dict[tuple[str, str], str]:
        """Events addressed to a profile id (delivery's email events): id → its root."""
        wanted: dict[str, set[str]] = {}
        for event in fresh:
            if event.profile_hint:
                wanted.setdefault(event.workspace, set()).add(event.profile_hint)
        roots: dict[tuple[str, str], str] = {}
        for ws, ids in wanted.items():
            keys = [(i,) for i in ids]
            query = sa.select(t.profiles.c.profile_id, t.profiles.c.root_id).where(
                t.profiles.c.workspace == ws
            )
            for statement in r.keyed_selects(self.conn, query, [t.profiles.c.profile_id], keys):
                for row in self.conn.execute(statement):
                    roots[(ws, row.profile_id)] = row.root_id
            query = sa.select(t.erasures.c.profile_id).where(t.erasures.c.workspace == ws)
            for statement in r.keyed_selects(self.conn, query, [t.erasures.c.profile_id], keys):
                for row in self.conn.execute(statement):
                    roots[(ws, row.profile_id)] = ""
        return roots

    def apply_one(self, event: IncomingEvent) -> str | None:
        """Apply one prepared event; the profile it now belongs to (None: dropped)."""
        ws = event.workspace
        policy = self.policy(ws)
        routed = self._route(event, ws, policy)
        if routed is None:
            return None
        target, home, links = routed
        state = self.state(ws, target)
        change = self.change(ws, target)
        for identity in links:
            self._link(ws, identity, target, home, event, policy)
            change.identities.append(identity)
        state.apply(event, policy, change)
        if change.conflicts:
            for key, held_source, new_source in change.conflicts:
                self.conflicts.append((ws, target, key, held_source, new_source))
            change.conflicts.clear()
        self.event_rows.append(
            (
                ws,
                event.message_id,
                event.timestamp,
                target,
                home,
                event.type,
                event.name,
                event.source,
                event.payload,
            )
        )
        self.result.applied += 1
        self.result.profiles[event.message_id] = target
        return target

    def _route(
        self, event: IncomingEvent, ws: str, policy: MergePolicy
    ) -> tuple[str, str, Sequence[Identity]] | None:
        """Where an event goes: (the profile it belongs to, the home of the identity that
        routed it, the identities to link), the merges and refusals on the way made;
        None when it is dropped."""
        hinted = self.hints.get((ws, event.profile_hint)) if event.profile_hint else None
        if hinted == "":
            self.result.dropped += 1
            log.info("event %s addressed to an erased profile; dropped", event.message_id)
            return None
        view = _View(self, ws, policy)
        if hinted is not None:
            plan = LinkPlan(target=self.root(ws, hinted), home=event.profile_hint)
            plan.links = [i for i in event.identities if view.owner(i) is None]
        else:
            identities = self._resolved_identities(event, view)
            if not identities:
                self.result.dropped += 1
                log.info("event %s carries no identity; dropped", event.message_id)
                return None
            held = self._held_by_one(ws, identities)
            if held is not None:  # most events: nothing to link, merge or refuse
                return held[0], held[1] or held[0], ()
            plan = plan_links(identities, view, policy)
            if plan.target is None and self._erased(ws, event.message_id):
                self.result.dropped += 1
                return None
        target = plan.target or self._new_profile(ws)
        home = plan.home or target
        if plan.merges:
            reason = _MERGE_REASONS.get(int(event.type), MergeReason.SHARED_IDENTITY)
        for merge in plan.merges:
            target = self.merge(
                ws,
                merge.kept,
                merge.absorbed,
                MergeDetails(
                    reason, merge.shared, (), 1.0, event.message_id, f"event:{event.source}"
                ),
            )
        for refusal in plan.refusals:
            self.refusal_rows.append(
                {
                    "workspace": ws,
                    "refusal_id": str(uuid.uuid4()),
                    "profile_id": refusal.profile,
                    "other_id": refusal.other or target,
                    "identity_type": refusal.identity_type,
                    "reason": refusal.reason,
                    "message_id": event.message_id,
                    "created_at": self.now,
                }
            )
        return target, home, plan.links

    def _held_by_one(
        self, workspace: str, identities: tuple[Identity, ...]
    ) -> tuple[str, str] | None:
        """(target, home) of an event whose identities one live profile holds already
        (most events: a known person again), as `plan_links` would plan it — that
        profile, the home of the strongest identity, nothing to link, merge or refuse;
        None otherwise."""
        owners = self.owners
        absorbed = self.absorbed  # (none in most batches: then every owner is a root)
        target = None
        for identity in identities:
            found = owners.get((workspace, identity))
            if found is None:
                return None
            root = self.root(workspace, found[0]) if absorbed else found[0]
            if target is None:
                target = root
            elif root != target:
                return None
        if target is None:
            return None
        first = identities[0] if len(identities) == 1 else strongest(identities)
        return target, owners[(workspace, first)][1]

    def _resolved_identities(self, event: IncomingEvent, view: _View) -> tuple[Identity, ...]:
        """The event's identities; an alias's previous id is a user id when one is known."""
        identities = event.identities
        if event.type == event_pb2.EVENT_TYPE_ALIAS and event.previous_id:
            as_user = Identity("user_id", event.previous_id.strip())
            as_anonymous = Identity("anonymous_id", event.previous_id.strip())
            if view.owner(as_user) is not None and view.owner(as_anonymous) is None:
                identities = tuple(as_user if i == as_anonymous else i for i in identities)
        return identities

    def _erased(self, workspace: str, message_id: str) -> bool:
        """Whether this event belonged to a profile erased since (a late redelivery)."""
        if (workspace, message_id) in self.erased:
            log.info("event %s belonged to an erased profile; dropped", message_id)
            return True
        return False

    def _new_profile(self, workspace: str) -> str:
        profile = str(uuid.uuid4())
        state = ProfileState(workspace, profile, created_at=self.now, new=True)
        self.states[(workspace, profile)] = state
        return profile

    def _link(
        self,
        workspace: str,
        identity: Identity,
        target: str,
        home: str,
        event: IncomingEvent,
        policy: MergePolicy,
    ) -> None:
        self.owners[(workspace, identity)] = (target, home)
        if identity.type in policy.unique_identity_types:
            self.unique_of(workspace, target, policy).setdefault(identity.type, set()).add(
                identity.value
            )
        self.identity_rows.append(
            (
                workspace,
                identity.type,
                identity.value,
                target,
                home,
                event.source,
                event.timestamp,
                event.message_id,
            )
        )

    def merge(self, workspace: str, kept: str, absorbed: str, details: MergeDetails) -> str:
        """Merge one live profile into another within the batch; returns `kept`."""
        policy = self.policy(workspace)
        kept_state = self.state(workspace, kept)
        absorbed_state = self.state(workspace, absorbed)
        change = self.change(workspace, kept)
        kept_state.absorb(absorbed_state, policy, change)
        absorbed_change = self.changes.pop((workspace, absorbed), None)
        if absorbed_change is not None:
            change.events.extend(absorbed_change.events)
            change.identities.extend(absorbed_change.identities)
            change.merged.extend(absorbed_change.merged)
        absorbed_state.clear()
        self.absorbed[(workspace, absorbed)] = kept
        held = self.unique_of(workspace, kept, policy)
        for kind, values in self.unique_of(workspace, absorbed, policy).items():
            held.setdefault(kind, set()).update(values)
        if not absorbed_state.new:
            r.move_rows(self.conn, workspace, absorbed, kept)
        view = MergeView(
            workspace=workspace,
            merge_id=str(uuid.uuid4()),
            kept_id=kept,
            absorbed_id=absorbed,
            reason=details.reason,
            shared=tuple(details.shared),
            evidence=tuple(details.evidence),
            score=details.score,
            message_id=details.message_id,
            actor=details.actor,
            created_at=self.now,
        )
        self.merge_rows.append(r.merge_row(view))
        self.result.merges.append(view)
        log.info("profile %s merged into %s (%s)", absorbed, kept, details.reason.name)
        return kept
