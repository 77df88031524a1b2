"""`ProfileStore`: every operation of the store, each one transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mailwright.errors import NotFound
from mailwright.runtime.db import Database, snapshot_reads
from mailwright_profile.events import IncomingEvent
from mailwright_profile.filters import Comparison
from mailwright_profile.identity import Identity, MergePolicy
from mailwright_profile.imports import Candidate, Decisions, RecordsInput
from mailwright_profile.matching.model import MatchModel
from mailwright_profile.store import identities as ids
from mailwright_profile.store import imports as imp
from mailwright_profile.store import privacy, reads, upkeep
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.apply import BatchApply, BatchResult, ChangeEncoder
from mailwright_profile.store.cache import StateCache
from mailwright_profile.store.outbox import Outgoing, delete_outbox
from mailwright_profile.views import CandidateView, EventRow, Explanation, ProfileView

POLICY_TTL = 2.0


@dataclass(frozen=True)
class ImportContext:
    owned: dict[str, str]
    candidates: list[Candidate]
    model: tuple[MatchModel, int] | None
    profiles: int
    policy: MergePolicy


class ProfileStore:
    """The profile service's database (see the package docstring)."""

    def __init__(
        self,
        db: Database,
        encode_changed: ChangeEncoder,
        encode_deleted: Callable[[str, str, list[str], list[str], datetime], bytes],
        email_hashes: Callable[[list[Identity], list[Any]], list[str]],
    ) -> None:
        self.db = db
        # Reads that build a profile from several statements (its row, merged ids,
        # identities): one snapshot, so a batch committed between two of them shows whole
        # or not at all (READ COMMITTED showed a sign-up's email identity without its
        # traits, and a delivery greeted "Welcome," instead of "Welcome, Ada").
        self.snapshot = snapshot_reads(db.reader)
        self.encode_changed = encode_changed
        self.encode_deleted = encode_deleted
        self.email_hashes = email_hashes
        self._policies: dict[str, tuple[float, MergePolicy]] = {}
        self._lock = threading.Lock()
        self.known_trait_keys: set[tuple[str, str, str]] = set()
        # states the event batches wrote, for the next ones (see store/cache.py)
        self.states = StateCache()

    # -- policy ------------------------------------------------------------------------

    def policy_of(self, conn: sa.Connection, workspace: str) -> MergePolicy:
        """The workspace's merge policy, cached for a couple of seconds."""
        with self._lock:
            held = self._policies.get(workspace)
        if held is not None and time.monotonic() - held[0] < POLICY_TTL:
            return held[1]
        policy = r.load_policy(conn, workspace)
        with self._lock:
            self._policies[workspace] = (time.monotonic(), policy)
        return policy

    def get_policy(self, workspace: str) -> MergePolicy:
        with self.db.reader.connect() as conn:
            return r.load_policy(conn, workspace)

    def put_policy(self, workspace: str, policy: MergePolicy, now: datetime) -> MergePolicy:
        values = {
            "unique_identity_types": list(policy.unique_identity_types),
            "source_priority": list(policy.source_priority),
            "auto_merge_threshold": policy.auto_merge_threshold,
            "review_threshold": policy.review_threshold,
            "updated_at": now,
        }
        with self.db.engine.begin() as conn:
            done = conn.execute(
                t.policies.update().where(t.policies.c.workspace == workspace).values(**values)
            )
            if not done.rowcount:
                conn.execute(t.policies.insert().values(workspace=workspace, **values))
        with self._lock:
            self._policies.pop(workspace, None)
        return policy

    # -- applying events ---------------------------------------------------------------

    def _batch(self, conn: sa.Connection, now: datetime) -> BatchApply:
        return BatchApply(conn, now, self.policy_of, self.encode_changed, self.known_trait_keys)

    def apply_batch(
        self,
        events: Sequence[IncomingEvent],
        now: datetime,
        published: Sequence[str] = (),
        *,
        meanwhile: Callable[[], None] | None = None,
    ) -> BatchResult:
        """Apply events in one transaction; also forget outbox rows already published.

        `meanwhile` is called once the batch's rows are sent, while the database stores
        them (PostgreSQL, see `bulk.pipelined`; not called elsewhere): work of the
        caller's that would otherwise wait for the database (the consumer reads its next
        batch)."""
        with self.db.engine.begin() as conn:
            if published:
                delete_outbox(conn, published)
            batch = BatchApply(
                conn,
                now,
                self.policy_of,
                self.encode_changed,
                self.known_trait_keys,
                self.states,
                meanwhile,
            )
            result = batch.run(events)
        self.states.put(batch.committed())
        self.known_trait_keys |= result.trait_keys
        return result

    # -- reads -------------------------------------------------------------------------

    def get(self, workspace: str, profile_id: str) -> ProfileView | None:
        """A profile by id; a merged-away id gives the profile it belongs to."""
        with self.snapshot.connect() as conn:
            return reads.get_profile(conn, workspace, profile_id)

    def get_many(self, workspace: str, profile_ids: Sequence[str]) -> dict[str, ProfileView]:
        with self.snapshot.connect() as conn:
            return r.profile_views(conn, workspace, profile_ids)

    def lookup(self, workspace: str, identity: Identity) -> ProfileView | None:
        with self.snapshot.connect() as conn:
            profile_id = reads.lookup(conn, workspace, identity)
            return None if profile_id is None else r.profile_view(conn, workspace, profile_id)

    def list_profiles(
        self,
        workspace: str,
        order_by: str,
        pushed: Sequence[Comparison],
        after: tuple[datetime | None, str] | None,
        limit: int,
    ) -> list[reads.ProfileRow]:
        with self.db.reader.connect() as conn:
            return reads.list_profiles(conn, workspace, order_by, pushed, after, limit)

    def views(self, workspace: str, profile_ids: Sequence[str]) -> list[ProfileView]:
        """The live profiles of `profile_ids`, in that order (ids merged away or gone are
        left out), read four queries a chunk rather than three per profile."""
        with self.snapshot.connect() as conn:
            found = r.profile_views(conn, workspace, profile_ids)
        return [found[p] for p in profile_ids if p in found and found[p].profile_id == p]

    def list_events(
        self,
        workspace: str,
        profile_id: str,
        names: Sequence[str],
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[EventRow]:
        with self.db.reader.connect() as conn:
            return reads.list_events(conn, workspace, profile_id, names, start, end, after, limit)

    def trait_keys(self, workspace: str) -> list[tuple[str, str]]:
        with self.db.reader.connect() as conn:
            return reads.trait_keys(conn, workspace)

    def list_candidates(
        self, workspace: str, after: tuple[datetime, str, str] | None, limit: int
    ) -> tuple[list[CandidateView], tuple[datetime, str, str] | None, bool]:
        with self.db.reader.connect() as conn:
            return reads.list_candidates(conn, workspace, after, limit)

    # -- identities --------------------------------------------------------------------

    def merge(
        self,
        workspace: str,
        target: str,
        sources: Sequence[str],
        actor: str,
        note: str,
        now: datetime,
    ) -> ids.MergeOutcome | ids.Refused:
        with self.db.engine.begin() as conn:
            return ids.merge_profiles(
                self._batch(conn, now), workspace, target, sources, actor, note
            )

    def roots(self, workspace: str, profile_ids: Sequence[str]) -> dict[str, str]:
        """id → its live profile, for the ids that exist."""
        with self.db.reader.connect() as conn:
            return r.roots_of(conn, workspace, profile_ids)

    def unmerge(
        self, workspace: str, merge_id: str, actor: str, now: datetime
    ) -> ids.UnmergeOutcome:
        with self.db.engine.begin() as conn:
            policy = r.load_policy(conn, workspace)
            return ids.unmerge(conn, workspace, merge_id, actor, now, policy, self.encode_changed)

    def explain(
        self, workspace: str, root: str, left: Identity | None, right: Identity | None
    ) -> Explanation:
        with self.db.reader.connect() as conn:
            return ids.explain(conn, workspace, root, left, right)

    def owner(self, workspace: str, identity: Identity) -> str | None:
        with self.db.reader.connect() as conn:
            return reads.lookup(conn, workspace, identity)

    # -- imports -----------------------------------------------------------------------

    def import_context(
        self, workspace: str, batch: RecordsInput, keys: Sequence[tuple[int, str]]
    ) -> ImportContext:
        """What deciding an import needs: owners of the records' identities, candidate
        profiles, the workspace's fitted model and how many profiles it has."""
        with self.db.reader.connect() as conn:
            owned = imp.owners(conn, workspace, batch.records)
            found = imp.candidates(conn, workspace, keys, sorted(set(owned.values())))
            return ImportContext(
                owned,
                found,
                imp.stored_model(conn, workspace),
                imp.live_profiles(conn, workspace),
                r.load_policy(conn, workspace),
            )

    def apply_import(
        self,
        workspace: str,
        decisions: Decisions,
        events: dict[str, IncomingEvent],
        actor: str,
        now: datetime,
        fitted: tuple[MatchModel, int] | None,
    ) -> imp.Applied:
        with self.db.engine.begin() as conn:
            applied = imp.apply_decisions(
                self._batch(conn, now), workspace, decisions, events, actor
            )
            if fitted is not None:
                imp.store_model(conn, workspace, fitted[0], fitted[1], now)
        return applied

    # -- privacy -----------------------------------------------------------------------

    def erase(self, workspace: str, profile_id: str, now: datetime) -> privacy.Erased:
        with self.db.engine.begin() as conn:
            root = r.root_of(conn, workspace, profile_id)
            if root is None:
                raise NotFound(f"profile workspaces/{workspace}/profiles/{profile_id} not found")
            r.load_states(conn, workspace, [root])
            return privacy.erase(conn, workspace, root, now, self.encode_deleted, self.email_hashes)

    def export(self, workspace: str, profile_id: str) -> privacy.ExportData | None:
        with self.snapshot.connect() as conn:
            view = reads.get_profile(conn, workspace, profile_id)
            return None if view is None else privacy.export_data(conn, workspace, view)

    # -- upkeep ------------------------------------------------------------------------

    def ensure_partitions(self, first: date, last: date) -> list[str]:
        with self.db.engine.begin() as conn:
            return upkeep.ensure_partitions(conn, first, last)

    def partitions(self) -> list[str]:
        with self.db.reader.connect() as conn:
            return upkeep.partitions(conn)

    def refresh_due(self, now: datetime, limit: int) -> tuple[int, list[Outgoing]]:
        with self.db.engine.begin() as conn:
            return upkeep.refresh_due(conn, now, limit, self.encode_changed)

    def pending_outbox(self, before: datetime, skip: Sequence[str], limit: int) -> list[Outgoing]:
        with self.db.reader.connect() as conn:
            return upkeep.pending_outbox(conn, before, skip, limit)

    def delete_outbox(self, published: Sequence[str]) -> None:
        with self.db.engine.begin() as conn:
            delete_outbox(conn, published)

    def prune(self, now: datetime, erased_events_for: timedelta) -> int:
        with self.db.engine.begin() as conn:
            return upkeep.prune(conn, now, erased_events_for)

    def audit_rows(self, workspace: str) -> Iterator[Any]:
        with self.db.reader.connect() as conn:
            yield from upkeep.audit_profiles(conn, workspace)

    def audit_summary(self, workspace: str) -> tuple[dict[str, tuple[int, int]], list[Any], int]:
        with self.snapshot.begin() as conn:  # one report, one snapshot
            return (
                upkeep.events_per_source(conn, workspace),
                upkeep.conflict_rows(conn, workspace),
                upkeep.open_candidates(conn, workspace),
            )

    def workspaces(self) -> list[str]:
        with self.db.reader.connect() as conn:
            return upkeep.workspaces(conn)
