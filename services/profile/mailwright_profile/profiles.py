"""What the API asks of the service, in the domain's terms: the store's transactions,
the outbox, the filters and pages, the clock. The servicer (`api.py`) translates protobuf
to these calls and back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import struct_pb2

from mailwright.common.v1 import event_pb2
from mailwright.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from mailwright.runtime.auth import current_principal
from mailwright_profile.computed.registry import REGISTRY, TraitRegistry
from mailwright_profile.convert import timestamp
from mailwright_profile.events import CONSENT_EVENT, read_event
from mailwright_profile.explain import summary
from mailwright_profile.export import export_document
from mailwright_profile.filters import matches, parse_filter, pushdown
from mailwright_profile.identity import Identity, MergePolicy
from mailwright_profile.imports import (
    Decisions,
    ImportRecord,
    RecordsInput,
    ResolveOutcome,
    decide,
    outcome,
)
from mailwright_profile.matching.default_model import default_model
from mailwright_profile.matching.incremental import blocking_keys
from mailwright_profile.matching.resolve import ResolutionSettings
from mailwright_profile.outbox import Outbox
from mailwright_profile.paging import binding, make_token, page_size, read_token
from mailwright_profile.store import ProfileStore
from mailwright_profile.store.facade import ImportContext
from mailwright_profile.store.identities import Refused
from mailwright_profile.store.reads import ORDERS
from mailwright_profile.views import CandidateView, EventRow, Explanation, MergeView, ProfileView

__all__ = ["Profiles", "TraitInfo", "import_event"]

SCAN_BUDGET = 5000
FIT_MIN_RECORDS = 2000
DEFAULT_MODEL_RECORDS = 20_000
MAX_EXPORT_BYTES = 7 * 1024 * 1024


@dataclass(frozen=True)
class TraitInfo:
    key: str
    type: str
    description: str
    computed: bool
    source: str


def _now() -> datetime:
    return datetime.now(UTC)


def _bad_token() -> InvalidArgument:
    return InvalidArgument.field("page_token", "is not a token this service issued")


def _import_actor() -> str:
    principal = current_principal.get()
    return f"import:{principal.subject}" if principal is not None else "import"


def import_event(workspace: str, record: ImportRecord, now: datetime) -> event_pb2.Event:
    """The identify event an imported record becomes."""
    traits = struct_pb2.Struct()
    traits.update({k: v for k, v in record.fields.items() if k != "user_id"})
    event = event_pb2.Event(
        workspace=workspace,
        message_id=record.message_id(),
        type=event_pb2.EVENT_TYPE_IDENTIFY,
        user_id=record.fields.get("user_id", ""),
        traits=traits,
        source=record.source,
        timestamp=timestamp(now),
        received_at=timestamp(now),
    )
    return event


class Profiles:
    def __init__(
        self,
        store: ProfileStore,
        outbox: Outbox,
        clock: Callable[[], datetime] = _now,
        registry: TraitRegistry = REGISTRY,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self.registry = registry

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.store.db.run(fn, *args)

    # -- reading -----------------------------------------------------------------------

    async def get(self, workspace: str, profile_id: str) -> ProfileView:
        view: ProfileView | None = await self._run(self.store.get, workspace, profile_id)
        if view is None:
            raise NotFound(f"profile workspaces/{workspace}/profiles/{profile_id} not found")
        return view

    async def get_many(self, workspace: str, ids: Sequence[str]) -> dict[str, ProfileView]:
        found: dict[str, ProfileView] = await self._run(self.store.get_many, workspace, ids)
        return found

    async def lookup(self, workspace: str, identity: Identity) -> ProfileView:
        view: ProfileView | None = await self._run(self.store.lookup, workspace, identity)
        if view is None:
            raise NotFound(f"no profile holds that {identity.type}")
        return view

    async def list_profiles(
        self, workspace: str, filter_text: str, order_by: str, size: int, token: str
    ) -> tuple[list[ProfileView], str]:
        order = (order_by or "update_time desc").strip().lower()
        order = " ".join(order.split())
        if order not in ORDERS:
            raise InvalidArgument.field("order_by", f"must be one of: {', '.join(sorted(ORDERS))}")
        tree = parse_filter(filter_text)
        limit = page_size(size)
        bound = binding("profiles", workspace, filter_text, order)
        position = read_token(token, bound)
        after = None
        if position is not None:
            try:
                moment = datetime.fromisoformat(position[0]) if position[0] else None
                after = (moment, str(position[1]))
            except (ValueError, IndexError, TypeError) as error:
                raise InvalidArgument.field(
                    "page_token", "is not a token this service issued"
                ) from error
        pushed = pushdown(tree)
        needs_computed = "computed_traits." in filter_text
        now = self.clock()
        chosen: list[str] = []
        scanned = 0
        more = False
        while len(chosen) < limit:
            chunk = min(max(limit * 2, 100), 1000)
            rows = await self._run(self.store.list_profiles, workspace, order, pushed, after, chunk)
            computed: dict[str, dict[str, Any]] = {}
            if needs_computed and rows:
                loaded: list[ProfileView] = await self._run(
                    self.store.views, workspace, [row.profile_id for row in rows]
                )
                computed = {v.profile_id: v.computed_traits(now, self.registry) for v in loaded}
            for row in rows:
                scanned += 1
                after = (row.sort_value, row.profile_id)
                if matches(tree, row.traits, computed.get(row.profile_id, {}), row.times):
                    chosen.append(row.profile_id)
                if len(chosen) >= limit:
                    more = True
                    break
            if len(rows) < chunk and len(chosen) < limit:
                more = False
                break
            if scanned >= SCAN_BUDGET:
                more = True
                break
        views: list[ProfileView] = await self._run(self.store.views, workspace, chosen)
        next_token = ""
        if more and after is not None:
            next_token = make_token(bound, [after[0].isoformat() if after[0] else "", after[1]])
        return views, next_token

    async def events(
        self,
        workspace: str,
        profile_id: str,
        names: Sequence[str],
        start: datetime | None,
        end: datetime | None,
        size: int,
        token: str,
    ) -> tuple[str, list[EventRow], str]:
        view = await self.get(workspace, profile_id)
        limit = page_size(size)
        bound = binding(
            "events",
            workspace,
            profile_id,
            sorted(names),
            start.isoformat() if start else "",
            end.isoformat() if end else "",
        )
        position = read_token(token, bound)
        after = None
        if position is not None:
            try:
                after = (datetime.fromisoformat(position[0]), str(position[1]))
            except (ValueError, IndexError, TypeError) as error:
                raise InvalidArgument.field(
                    "page_token", "is not a token this service issued"
                ) from error
        rows: list[EventRow] = await self._run(
            self.store.list_events, workspace, view.profile_id, names, start, end, after, limit + 1
        )
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_token = make_token(bound, [last.occurred_at.isoformat(), last.message_id])
        return view.profile_id, rows, next_token

    async def schema(self, workspace: str) -> list[TraitInfo]:
        observed: list[tuple[str, str]] = await self._run(self.store.trait_keys, workspace)
        found = [
            TraitInfo(key, kind, "Observed in traits written by events and imports.", False, "")
            for key, kind in observed
        ]
        found += [TraitInfo(t.key, t.type, t.description, True, t.source) for t in self.registry]
        return found

    # -- identities --------------------------------------------------------------------

    async def merge(
        self, workspace: str, target: str, sources: Sequence[str], actor: str, note: str
    ) -> tuple[ProfileView, list[MergeView]]:
        wanted = [target, *sources]
        roots: dict[str, str] = await self._run(self.store.roots, workspace, wanted)
        for index, profile in enumerate(wanted):
            if profile not in roots:
                field = "target" if index == 0 else f"sources[{index - 1}]"
                raise NotFound(
                    f"{field}: profile workspaces/{workspace}/profiles/{profile} not found"
                )
        root = roots[target]
        chosen: list[str] = []
        for index, source in enumerate(sources):
            if roots[source] == root:
                raise InvalidArgument.field(
                    f"sources[{index}]", "is already part of the target profile"
                )
            if roots[source] not in chosen:
                chosen.append(roots[source])
        outcome = await self._run(
            self.store.merge, workspace, root, chosen, actor, note, self.clock()
        )
        if isinstance(outcome, Refused):
            raise FailedPrecondition(
                "the merge policy refuses this merge: " + "; ".join(outcome.reasons)
            )
        await self.outbox.publish(outcome.outgoing)
        return await self.get(workspace, root), list(outcome.merges)

    async def unmerge(
        self, workspace: str, merge_id: str, actor: str
    ) -> tuple[ProfileView, ProfileView]:
        outcome = await self._run(self.store.unmerge, workspace, merge_id, actor, self.clock())
        await self.outbox.publish(outcome.outgoing)
        return await self.get(workspace, outcome.kept_id), await self.get(
            workspace, outcome.restored_id
        )

    async def explain_profile(
        self, workspace: str, profile_id: str
    ) -> tuple[ProfileView, Explanation, str]:
        view = await self.get(workspace, profile_id)
        explanation: Explanation = await self._run(
            self.store.explain, workspace, view.profile_id, None, None
        )
        return view, explanation, summary(explanation)

    async def explain_identities(
        self, workspace: str, left: Identity, right: Identity
    ) -> tuple[ProfileView, Explanation, str]:
        first = await self._run(self.store.owner, workspace, left)
        second = await self._run(self.store.owner, workspace, right)
        if first is None and second is None:
            raise NotFound("no profile holds either identity")
        anchor = first or second
        view = await self.get(workspace, anchor)
        if first is not None and first == second:
            explanation: Explanation = await self._run(
                self.store.explain, workspace, first, left, right
            )
            return view, explanation, summary(explanation, left, right)
        explanation = await self._run(self.store.explain, workspace, anchor, None, None)
        other = second if anchor == first else first
        explanation.same_profile = False
        explanation.merges = []
        explanation.links = [x for x in explanation.links if x.identity in (left, right)]
        explanation.refusals = [
            x
            for x in explanation.refusals
            if other is not None and other in (x.profile_id, x.other_id)
        ]
        if anchor == first:
            text = summary(explanation, left, right, second)
        else:
            text = summary(explanation, right, left, first)
        return view, explanation, text

    async def resolve_records(
        self, workspace: str, batch: RecordsInput, apply: bool
    ) -> ResolveOutcome:
        """Match a batch of records against each other and the stored profiles; with
        `apply`, store them (see `imports` and `store.imports`)."""
        matchable = [record.match_record() for record in batch.records]
        keys = await self._run(blocking_keys, matchable)
        flat = sorted({key for found in keys for key in found})
        context: ImportContext = await self._run(self.store.import_context, workspace, batch, flat)
        policy = context.policy
        settings = ResolutionSettings(
            threshold=policy.auto_merge_threshold, review_threshold=policy.review_threshold
        )
        population = max(context.profiles, len(batch.records) + len(context.candidates), 1)
        total = len(batch.records) + len(context.candidates)
        model = None
        if total < FIT_MIN_RECORDS:
            fitted_on, records = context.model or (default_model(), DEFAULT_MODEL_RECORDS)
            prior = min(fitted_on.prior * records / population, 0.5)
            model = replace(fitted_on, prior=prior)
        decisions: Decisions = await self._run(
            decide, batch, context.candidates, context.owned, settings, model
        )
        if not apply:
            return outcome(decisions, {})
        fitted = None
        if model is None and decisions.resolution.model is not None:
            fitted = (decisions.resolution.model, total)
        now = self.clock()
        events = {
            record.record_id: read_event(import_event(workspace, record, now))
            for record in batch.records
        }
        applied = await self._run(
            self.store.apply_import, workspace, decisions, events, _import_actor(), now, fitted
        )
        await self.outbox.publish(applied.outgoing)
        return outcome(decisions, applied.profiles)

    async def candidates(
        self, workspace: str, size: int, token: str
    ) -> tuple[list[CandidateView], str]:
        limit = page_size(size)
        bound = binding("candidates", workspace)
        position = read_token(token, bound)
        after = None
        if position is not None:
            try:
                after = (datetime.fromisoformat(position[0]), str(position[1]), str(position[2]))
            except (ValueError, IndexError, TypeError) as error:
                raise InvalidArgument.field(
                    "page_token", "is not a token this service issued"
                ) from error
        found, last, more = await self._run(self.store.list_candidates, workspace, after, limit)
        next_token = ""
        if more and last is not None:
            next_token = make_token(bound, [last[0].isoformat(), last[1], last[2]])
        return found, next_token

    async def policy(self, workspace: str) -> MergePolicy:
        policy: MergePolicy = await self._run(self.store.get_policy, workspace)
        return policy

    async def update_policy(self, workspace: str, policy: MergePolicy) -> MergePolicy:
        saved: MergePolicy = await self._run(self.store.put_policy, workspace, policy, self.clock())
        return saved

    # -- consent and privacy -----------------------------------------------------------

    async def update_consent(
        self,
        workspace: str,
        profile_id: str,
        status: str,
        source: str,
        when: datetime | None,
        proof: dict[str, str],
    ) -> ProfileView:
        view = await self.get(workspace, profile_id)
        now = self.clock()
        moment = when or now
        if moment > now + timedelta(minutes=5):
            raise InvalidArgument.field("consent.update_time", "is in the future")
        properties = struct_pb2.Struct()
        properties.update(
            {
                "channel": "email",
                "status": status,
                "source": source,
                "proof": {k: v for k, v in proof.items() if v},
            }
        )
        event = event_pb2.Event(
            workspace=workspace,
            message_id=f"consent-{uuid.uuid4()}",
            type=event_pb2.EVENT_TYPE_TRACK,
            event=CONSENT_EVENT,
            profile_id=view.profile_id,
            properties=properties,
            source="api",
            timestamp=timestamp(moment),
            received_at=timestamp(now),
        )
        event.context.ip = proof.get("ip", "")
        event.context.user_agent = proof.get("user_agent", "")
        result = await self._run(self.store.apply_batch, [read_event(event)], now)
        await self.outbox.publish(result.outgoing)
        return await self.get(workspace, view.profile_id)

    async def delete(self, workspace: str, profile_id: str) -> tuple[int, int]:
        erased = await self._run(self.store.erase, workspace, profile_id, self.clock())
        await self.outbox.publish(erased.outgoing)
        return erased.identities, erased.events

    async def export(self, workspace: str, profile_id: str) -> bytes:
        data = await self._run(self.store.export, workspace, profile_id)
        if data is None:
            raise NotFound(f"profile workspaces/{workspace}/profiles/{profile_id} not found")
        document = export_document(data, self.clock())
        if len(document) > MAX_EXPORT_BYTES:
            raise ResourceExhausted(
                f"the export is {len(document) // 1024 // 1024} MiB, over the "
                f"{MAX_EXPORT_BYTES // 1024 // 1024} MiB a response may carry; export the "
                "history page by page with ListProfileEvents"
            )
        return document
