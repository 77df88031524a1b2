"""The membership engine: one person at a time, in one transaction.

For each change the profile service announces, the engine — holding the person's row lock,
so no other replica works on the same person at the same time —

1. applies it to the projection: merges first (the absorbed person's data moves to the
   kept one, their memberships end), then traits, then the new events (with their hits,
   day buckets and email facts; an event already held is skipped, so a redelivered message
   changes nothing);
2. loads the person's state for the segments the change can affect (all of them for a new
   or merged person) and evaluates them in dependency order with the incremental
   evaluator; a membership that changes brings the segments that refer to it along;
3. records each transition (membership row, log row — the outbox and the history) and
   reschedules each evaluated segment's timer at its next change by time alone.

Timers, recompute slices and erasures go through the same steps. Every method is
synchronous and runs on the database's thread pool; `app.py` publishes what they logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from mailwright.rules import ast
from mailwright.rules.proto import from_proto
from mailwright.segment.v1 import rule_pb2
from mailwright_segment.facts import ProfileChange, ProfileErasure
from mailwright_segment.incremental import next_change
from mailwright_segment.index import IndexedSegment, RuleIndex
from mailwright_segment.specs import Spec
from mailwright_segment.state import PersonState
from mailwright_segment.store import memberships as membership_store
from mailwright_segment.store import projection
from mailwright_segment.store import segments as segment_store
from mailwright_segment.store.compile import Scope, members_query
from mailwright_segment.store.memberships import JobRow
from mailwright_segment.store.projection import observe, trait_kind
from mailwright_segment.values import MICROS_PER_DAY, day_of, micros_of

log = logging.getLogger(__name__)

Clock = Callable[[], int]
"""Now, in microseconds since the epoch."""


def wall_clock() -> int:
    return time.time_ns() // 1000


@dataclass
class Outcome:
    """What a unit of work logged (to publish) and the earliest timer it set."""

    log_ids: list[int] = field(default_factory=list)
    earliest_due: int | None = None

    def due(self, at: int | None) -> None:
        if at is not None and (self.earliest_due is None or at < self.earliest_due):
            self.earliest_due = at

    def extend(self, other: Outcome) -> None:
        self.log_ids.extend(other.log_ids)
        self.due(other.earliest_due)


@dataclass(frozen=True)
class SliceResult:
    done: int
    entered: int
    exited: int
    finished: bool
    disagreements: int = 0
    outcome: Outcome = field(default_factory=Outcome)


class _Unit:
    """One transaction's applies: the workspace rows it read and the types it observed."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._workspaces: dict[str, projection.WorkspaceRow] = {}
        self._observed: dict[str, dict[tuple[str, str, str], None]] = {}
        self._specs: dict[str, dict[str, list[Spec]]] = {}

    def workspace(self, ws: str) -> projection.WorkspaceRow:
        row = self._workspaces.get(ws)
        if row is None:
            row = self._workspaces[ws] = projection.workspace(self.conn, ws)
        return row

    def specs(self, ws: str, names: set[str]) -> dict[str, list[Spec]]:
        """The materialised specs of these event names (held for the transaction: the
        workspace row's share lock keeps specs from being added or dropped meanwhile)."""
        known = self._specs.setdefault(ws, {})
        missing = [n for n in names if n not in known]
        if missing:
            found = projection.specs_for_events(self.conn, ws, missing)
            for name in missing:
                known[name] = found.get(name, [])
        return {n: known[n] for n in names if known[n]}

    def observe(self, ws: str, rows: Iterable[tuple[str, str, str]]) -> None:
        self._observed.setdefault(ws, {}).update(dict.fromkeys(rows))

    def flush(self) -> None:
        for ws, rows in self._observed.items():
            observe(self.conn, ws, rows)
        self._observed.clear()


class MembershipEngine:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock = wall_clock,
        retention: timedelta = timedelta(days=400),
        timer_lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.engine = engine
        # Reads that need no lock: on SQLite their transactions begin deferred.
        self.reader = engine.execution_options(sqlite_deferred=True)
        self.clock = clock
        self.retention = retention
        self.timer_lease = micros_of(timer_lease)
        self._indexes: dict[str, RuleIndex] = {}
        self._rules: dict[tuple[int, int], ast.Rule] = {}
        self._lock = threading.Lock()

    # -- the rule index ------------------------------------------------------------------
    def rule_of(self, pk: int, version: int, data: bytes) -> ast.Rule:
        key = (pk, version)
        rule = self._rules.get(key)
        if rule is None:
            rule = from_proto(rule_pb2.Rule.FromString(data))
            with self._lock:
                if len(self._rules) > 50_000:
                    self._rules.clear()
                self._rules[key] = rule
        return rule

    def index(self, conn: sa.Connection, ws: str, epoch: int) -> RuleIndex:
        cached = self._indexes.get(ws)
        if cached is not None and cached.epoch == epoch:
            return cached
        rows = segment_store.all_segments(conn, ws)
        index = RuleIndex(
            (
                IndexedSegment.of(
                    r.pk, r.segment_id, r.version, self.rule_of(r.pk, r.version, r.rule)
                )
                for r in rows
            ),
            epoch,
        )
        with self._lock:
            self._indexes[ws] = index
        return index

    # -- changes -------------------------------------------------------------------------
    def apply(self, change: ProfileChange) -> Outcome:
        """Apply one `ProfileChanged` and bring the person's memberships up to date."""
        return self.apply_many([change])

    def apply_many(self, changes: Sequence[ProfileChange]) -> Outcome:
        """Apply changes in order in one transaction (group commit): the same as `apply`
        of each in turn, but all of them or none; a person's row lock is held from their
        first change to the commit.

        The workspace row is read (and share-locked) once per workspace of the batch, and
        the types observed are recorded once for the whole batch."""
        outcome = Outcome()
        with self.engine.begin() as conn:
            unit = _Unit(conn)
            for change in changes:
                outcome.extend(self._apply(unit, change))
            unit.flush()
        return outcome

    def _apply(self, unit: _Unit, change: ProfileChange) -> Outcome:
        conn = unit.conn
        ws, profile_id = change.workspace, change.profile_id
        outcome = Outcome()
        row = unit.workspace(ws)
        index = self.index(conn, ws, row.segments_epoch)
        found = projection.lock_profile_row(conn, ws, profile_id)
        known = found is not None
        # Read the clock once the person is ours: no change can commit behind it.
        now = self.clock()
        if found is None:
            pk, stored_version = projection.profile_pk(conn, ws, profile_id, now), 0
        else:
            pk, stored_version = found
        merged = self._merge(conn, ws, pk, change, index, now, row.pruned_before, outcome)
        if merged:
            stored_version = projection.profile_version(conn, pk)
        fresh_traits = not (change.version and change.version < stored_version)
        if fresh_traits:
            projection.set_traits(conn, ws, pk, change.traits, change.removed_traits)
            unit.observe(ws, (("", k, trait_kind(v)) for k, v in change.traits.items()))
        by_event = unit.specs(ws, {e.name for e in change.events})
        fresh = projection.add_events(conn, ws, pk, change.events, by_event)
        held = {e.message_id for e in change.events}
        new_ids = {e.message_id for e in fresh}
        emails = [e for e in change.emails if e.message_id in new_ids or e.message_id not in held]
        projection.add_emails(conn, ws, pk, emails)
        unit.observe(
            ws,
            (
                (e.name, k, trait_kind(v) if not isinstance(v, str) else "string")
                for e in fresh
                for k, v in e.properties.items()
            ),
        )
        projection.touch_profile(conn, pk, max(change.version, stored_version), now)
        if merged or not known:
            start: Iterable[str] = index.segments
        else:
            start = index.affected(
                change.trait_keys if fresh_traits else (),
                {e.name for e in fresh},
                bool(emails),
            )
        cause = "merge" if merged else ("event" if fresh else "trait")
        outcome.extend(
            self._evaluate(conn, ws, pk, profile_id, index, start, now, cause, row.pruned_before)
        )
        return outcome

    def _merge(
        self,
        conn: sa.Connection,
        ws: str,
        pk: int,
        change: ProfileChange,
        index: RuleIndex,
        now: int,
        coverage: int | None,
        outcome: Outcome,
    ) -> bool:
        merged = False
        for absorbed_id in change.merged_profile_ids:
            if absorbed_id == change.profile_id:
                continue
            absorbed = projection.lock_profile(conn, ws, absorbed_id)
            if absorbed is None:
                continue
            outcome.log_ids.extend(
                self._exit_all(conn, ws, absorbed, absorbed_id, index, now, "merge", erase=False)
            )
            projection.move_profile(conn, ws, absorbed, pk)
            merged = True
        if change.unmerged_from:
            sources = projection.take_events(conn, ws, [e.message_id for e in change.events], pk)
            for source in sources:
                projection.rebuild_derived(conn, ws, source, coverage)
                source_id = projection.profile_id_of(conn, source)
                if source_id is not None:
                    outcome.extend(
                        self._evaluate(
                            conn,
                            ws,
                            source,
                            source_id,
                            index,
                            index.segments,
                            now,
                            "merge",
                            coverage,
                        )
                    )
            if sources:
                projection.rebuild_derived(conn, ws, pk, coverage)
            merged = True
        return merged

    def _exit_all(
        self,
        conn: sa.Connection,
        ws: str,
        pk: int,
        profile_id: str,
        index: RuleIndex,
        now: int,
        cause: str,
        *,
        erase: bool,
    ) -> list[int]:
        logged = []
        by_pk = {s.pk: s for s in index.segments.values()}
        for segment_pk, member in membership_store.member_flags(conn, pk).items():
            segment = by_pk.get(segment_pk)
            if not member or segment is None:
                continue
            logged.append(
                membership_store.log_transition(
                    conn,
                    ws=ws,
                    segment_id=segment.segment_id,
                    profile_id=profile_id,
                    entered=False,
                    at=now,
                    rule_version=segment.version,
                    cause=cause,
                    erase=erase,
                )
            )
        return logged

    def _evaluate(
        self,
        conn: sa.Connection,
        ws: str,
        pk: int,
        profile_id: str,
        index: RuleIndex,
        start: Iterable[str],
        now: int,
        cause: str,
        coverage: int | None,
    ) -> Outcome:
        """Evaluate the segments `start` (and, as memberships change, their dependents)
        for one person; record transitions and timers."""
        outcome = Outcome()
        round_ = index.rounds(start)
        reachable = _reachable(index, round_.queued)
        if not reachable:
            return outcome
        segments = [index.segments[s] for s in reachable]
        state = projection.load_state(
            conn,
            ws,
            pk,
            {spec for s in segments for spec in s.plan.spec_ids},
            emails=any(s.emails for s in segments),
            coverage=coverage,
        )
        flags = membership_store.member_flags(conn, pk, [s.pk for s in segments])
        due: dict[tuple[int, int], int | None] = {}
        for segment in round_:
            value = segment.plan.evaluate(state, now)
            if value != flags.get(segment.pk, False):
                membership_store.set_member(conn, segment.pk, pk, value, now, segment.version)
                outcome.log_ids.append(
                    membership_store.log_transition(
                        conn,
                        ws=ws,
                        segment_id=segment.segment_id,
                        profile_id=profile_id,
                        entered=value,
                        at=now,
                        rule_version=segment.version,
                        cause=cause,
                    )
                )
                if value:
                    state.segments.add(segment.segment_id)
                else:
                    state.segments.discard(segment.segment_id)
                round_.changed(segment.segment_id)
            at = next_change(segment.plan, state, now)
            due[(segment.pk, pk)] = at
            outcome.due(at)
        membership_store.set_timers(conn, due)
        return outcome

    # -- erasure -------------------------------------------------------------------------
    def erase(self, erasure: ProfileErasure) -> Outcome:
        """Erase the person (and the profiles merged into them) from the projection, the
        memberships and the history; their exits are published, then deleted too."""
        ws = erasure.workspace
        outcome = Outcome()
        with self.engine.begin() as conn:
            row = projection.workspace(conn, ws)
            now = self.clock()
            index = self.index(conn, ws, row.segments_epoch)
            ids = list(dict.fromkeys((erasure.profile_id, *erasure.merged_profile_ids)))
            membership_store.erase_history(conn, ws, ids)
            for profile_id in ids:
                pk = projection.lock_profile(conn, ws, profile_id)
                if pk is None:
                    continue
                outcome.log_ids.extend(
                    self._exit_all(conn, ws, pk, profile_id, index, now, "deletion", erase=True)
                )
                projection.erase_profile(conn, ws, pk)
        return outcome

    # -- timers --------------------------------------------------------------------------
    def claim_timers(self, owner: str, limit: int) -> list[tuple[int, int]]:
        now = self.clock()
        with self.engine.begin() as conn:
            return membership_store.claim_timers(conn, owner, now, now + self.timer_lease, limit)

    def fire_timer(self, owner: str, segment_pk: int, profile_pk: int) -> Outcome:
        """Re-evaluate one segment for one person whose timer came due (cause "time")."""
        with self.engine.begin() as conn:
            segment = segment_store.get_segment_by_pk(conn, segment_pk)
            profile_id = projection.profile_id_of(conn, profile_pk)
            if segment is None or profile_id is None:
                membership_store.set_timers(conn, {(segment_pk, profile_pk): None})
                return Outcome()
            row = projection.workspace(conn, segment.ws)
            projection.lock_profile(conn, segment.ws, profile_id)
            if not membership_store.timer_claimed(conn, segment_pk, profile_pk, owner):
                return Outcome()  # an event re-evaluated the person and rescheduled it
            now = self.clock()
            index = self.index(conn, segment.ws, row.segments_epoch)
            return self._evaluate(
                conn,
                segment.ws,
                profile_pk,
                profile_id,
                index,
                [segment.segment_id],
                now,
                "time",
                row.pruned_before,
            )

    def next_due(self) -> int | None:
        with self.reader.connect() as conn:
            return membership_store.next_due(conn)

    # -- recompute -----------------------------------------------------------------------
    def recompute_slice(self, job: JobRow, size: int) -> SliceResult:
        """Recompute one slice of the workspace's people for the job's segment: the
        compiled SQL decides membership; timers come from the incremental evaluator."""
        ws = job.ws
        with self.engine.begin() as conn:
            row = projection.workspace(conn, ws)
            index = self.index(conn, ws, row.segments_epoch)
            segment = index.segments.get(job.segment_id)
            if segment is None:
                raise LookupError(f'segment "{job.segment_id}" was deleted')
            people = projection.next_slice(conn, ws, job.cursor, size)
            if not people:
                return SliceResult(0, 0, 0, True)
            pks = [pk for pk, _ in people]
            ids = dict(people)
            projection.lock_profiles(conn, pks)
            now = self.clock()
            low, high = pks[0], pks[-1]
            query = members_query(segment.rule, Scope(ws, now, low, high), conn.dialect.name)
            members = {int(r.pk) for r in conn.execute(query)}
            current = membership_store.members_in_range(conn, segment.pk, low, high)
            states = projection.load_states(
                conn,
                ws,
                pks,
                segment.plan.spec_ids,
                emails=segment.emails,
                coverage=row.pruned_before,
                trait_keys=segment.traits,
            )
            entered, exited, disagreements = 0, 0, 0
            outcome = Outcome()
            due: dict[tuple[int, int], int | None] = {}
            for pk in pks:
                state = states[pk]
                member = pk in members
                if segment.plan.evaluate(state, now) != member:
                    disagreements += 1
                if member != (pk in current):
                    entered += member
                    exited += not member
                    outcome.log_ids.append(
                        self._record(conn, ws, segment, pk, ids[pk], member, now, job.cause, state)
                    )
                    outcome.extend(
                        self._cascade(conn, ws, pk, ids[pk], index, segment, now, job.cause, row)
                    )
                due[(segment.pk, pk)] = next_change(segment.plan, state, now)
                outcome.due(due[(segment.pk, pk)])
            membership_store.set_timers(conn, due)
            membership_store.advance_job(
                conn,
                job,
                cursor=high,
                done=len(pks),
                entered=entered,
                exited=exited,
                lease_until=now + self.timer_lease,
            )
        if disagreements:
            log.error(
                "segment %s: batch and incremental evaluators disagree for %d people",
                job.segment_id,
                disagreements,
            )
        return SliceResult(len(pks), entered, exited, len(pks) < size, disagreements, outcome)

    def _record(
        self,
        conn: sa.Connection,
        ws: str,
        segment: IndexedSegment,
        pk: int,
        profile_id: str,
        member: bool,
        now: int,
        cause: str,
        state: PersonState,
    ) -> int:
        membership_store.set_member(conn, segment.pk, pk, member, now, segment.version)
        logged = membership_store.log_transition(
            conn,
            ws=ws,
            segment_id=segment.segment_id,
            profile_id=profile_id,
            entered=member,
            at=now,
            rule_version=segment.version,
            cause=cause,
        )
        if member:
            state.segments.add(segment.segment_id)
        else:
            state.segments.discard(segment.segment_id)
        return logged

    def _cascade(
        self,
        conn: sa.Connection,
        ws: str,
        pk: int,
        profile_id: str,
        index: RuleIndex,
        segment: IndexedSegment,
        now: int,
        cause: str,
        row: projection.WorkspaceRow,
    ) -> Outcome:
        dependents = index.dependents(segment.segment_id)
        if not dependents:
            return Outcome()
        return self._evaluate(
            conn, ws, pk, profile_id, index, dependents, now, cause, row.pruned_before
        )

    # -- housekeeping --------------------------------------------------------------------
    def prune(self, spec_grace: timedelta = timedelta(hours=1)) -> int:
        """Drop events, hits and email actions older than the retention (whole days), and
        specs no segment reads any more. Returns the rows deleted."""
        now = self.clock()
        cutoff = day_of(now - micros_of(self.retention)) * MICROS_PER_DAY
        deleted = 0
        with self.reader.connect() as conn:
            names = projection.workspace_names(conn)
        for ws in names:
            with self.engine.begin() as conn:
                projection.workspace(conn, ws, exclusive=True)
                deleted += projection.prune_before(conn, ws, cutoff)
                rules = [
                    self.rule_of(r.pk, r.version, r.rule)
                    for r in segment_store.all_segments(conn, ws)
                ]
                deleted += projection.drop_unused_specs(
                    conn, ws, rules, now - micros_of(spec_grace)
                )
        return deleted

    def prune_history(self, keep: timedelta) -> int:
        with self.engine.begin() as conn:
            return membership_store.prune_history(conn, self.clock() - micros_of(keep))


def _reachable(index: RuleIndex, start: Iterable[str]) -> list[str]:
    found: list[str] = []
    seen: set[str] = set()
    pending = list(start)
    while pending:
        segment_id = pending.pop()
        if segment_id in seen or segment_id not in index.segments:
            continue
        seen.add(segment_id)
        found.append(segment_id)
        pending.extend(index.dependents(segment_id))
    return found
